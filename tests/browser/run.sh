#!/usr/bin/env bash
# Browser tests of the admin UI (/ui): the ferrolite binary, Debian's headless
# Chromium, and playwright-core (pinned in package-lock.json) from npm.
# Installs Chromium with apt when missing and running as root (as in CI);
# elsewhere, without Chromium, says so and skips unless CI is set.
# Usage: tests/browser/run.sh [path/to/ferrolite]
set -euo pipefail
cd "$(dirname "$0")"
BIN="${1:-${FERROLITE_BIN:-${CARGO_TARGET_DIR:-/var/tmp/ferrolite-target}/debug/ferrolite}}"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser tests: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif [ -n "${CI:-}" ]; then
    echo "browser tests: chromium is missing and cannot be installed" >&2
    exit 1
  else
    echo "browser tests: SKIPPED (install Debian's chromium to run them)"
    exit 0
  fi
fi
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p artifacts
FERROLITE_BIN="$BIN" CHROMIUM="$(command -v chromium)" node --test --test-concurrency=1 ui.test.mjs
echo "browser tests: screenshots in tests/browser/artifacts/"
