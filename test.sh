#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (nextest, in parallel),
# then the end-to-end suite that drives the real binary with the official
# Python SDKs. Needs a Python with the packages in tests/e2e/requirements.txt
# (.ci/run sets one up).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferrolite-target}"

cargo nextest run --workspace --profile ci
cargo build -p ferrolite-server --bin ferrolite
FERROLITE_BIN="$CARGO_TARGET_DIR/debug/ferrolite" python3 -m pytest tests/e2e -q
