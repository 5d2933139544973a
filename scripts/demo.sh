#!/usr/bin/env bash
# The main job: set up, build connlog, simulate 30 days of a Coder deployment into
# ./connlog-data (replacing what an earlier demo left there), then query it as different
# users. Extra arguments go to `connlog simulate` (e.g. --seed 7 --events 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p connlog
connlog="${CARGO_TARGET_DIR:-target}/release/connlog"
export CONNLOG_DATA=./connlog-data

step() { printf '\n== %s\n$ %s\n' "$1" "$2" >&2; }

step "simulate a deployment and its traffic" "connlog simulate --reset $*"
"$connlog" simulate --reset "$@"

step "the two newest rows the site auditor sees (Coder's GET /api/v2/connectionlog body)" \
    "connlog query --as auditor --limit 2"
"$connlog" query --as auditor --limit 2

step "ongoing SSH-family sessions, as the owner" \
    "connlog query --as admin -q 'method:ssh status:ongoing' --limit 1"
"$connlog" query --as admin -q 'method:ssh status:ongoing' --limit 1

step "an organization auditor sees only their organization: its tunnel authorisations" \
    "connlog export --format human --as research-auditor -q 'method:tunnel' | head -n 3"
"$connlog" export --format human --as research-auditor -q 'method:tunnel' | head -n 3

cat >&2 <<'MSG'

Next: `connlog serve`, then with a token from connlog-data/tokens.json:
  curl -H "Coder-Session-Token: <token>" 'http://127.0.0.1:3000/api/v2/connectionlog?q=method:ssh&limit=5'
MSG
