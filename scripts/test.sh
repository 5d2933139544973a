#!/usr/bin/env bash
# Every test: set-up, then the whole workspace's tests (the SDK and the plugins natively, the
# host, and the integration tests that load the freshly built components).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo test --workspace --locked "$@"
