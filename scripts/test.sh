#!/usr/bin/env bash
# Every test: set-up, then the whole workspace's tests (guest logic natively, the host,
# and the integration tests that load the freshly built component), then the guest's
# fault hooks, which exist only with the `fault-injection` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
cargo test --locked -p connlog-guest --features fault-injection --test faults "$@"
