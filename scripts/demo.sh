#!/usr/bin/env bash
# The main job: set up, build connlog, simulate 30 days of a Coder deployment into
# ./connlog-data (replacing what an earlier demo left there), query it as different
# users, and end with the auditor's page: its address and a token, then (on a terminal)
# `connlog serve` until Ctrl-C. Extra arguments go to `connlog simulate` (e.g. --seed 7
# --events 100000); CONNLOG_DEMO_LISTEN sets the address, CONNLOG_DEMO_SERVE=0 skips serving.
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

step "the site auditor's five newest rows in the terminal, as Coder's CLI tables them" \
    "connlog query --as auditor -o table --limit 5"
"$connlog" query --as auditor -o table --limit 5

# The site auditor's token, from the file simulate wrote (no jq needed).
token=$(sed -n 's/^ *"auditor": *"\([^"]*\)".*/\1/p' "$CONNLOG_DATA/tokens.json")
listen=${CONNLOG_DEMO_LISTEN:-127.0.0.1:3000}
cat >&2 <<MSG

== the auditor's page
Open http://$listen/connectionlog and sign in with the site auditor's token:
  $token
(every user's token is in $CONNLOG_DATA/tokens.json: admin, <org>-auditor, members…)
MSG
if [ -t 0 ] && [ -t 1 ] && [ "${CONNLOG_DEMO_SERVE:-1}" != 0 ]; then
    printf '$ connlog serve --listen %s    (Ctrl-C stops it)\n' "$listen" >&2
    exec "$connlog" serve --listen "$listen"
fi
printf 'Start the server with:\n  %s serve --listen %s\n' "$connlog" "$listen" >&2
