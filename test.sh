#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (nextest, in parallel),
# then the end-to-end suite that drives the real binary with the official
# Python SDKs, then the admin UI's browser tests (tests/browser/run.sh:
# headless Chromium). Works on a fresh machine: it installs cargo-nextest and a
# Python virtual environment with tests/e2e/requirements.txt when missing.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferrolite-target}"

command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
VENV="${FERROLITE_VENV:-/var/tmp/ferrolite-venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt

cargo nextest run --workspace --profile ci
cargo build --quiet -p ferrolite-server --bin ferrolite
FERROLITE_BIN="$CARGO_TARGET_DIR/debug/ferrolite" "$VENV/bin/python" -m pytest tests/e2e -q
tests/browser/run.sh "$CARGO_TARGET_DIR/debug/ferrolite"
