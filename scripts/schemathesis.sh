#!/usr/bin/env bash
# Fuzzes the real server from its own OpenAPI document with schemathesis, in positive and in
# negative mode, ST_EXAMPLES examples per operation and mode (default 100). Fails on any 5xx, any
# answer that does not match the document (status, content type, headers, schema), any
# schema-violating request the server accepts, or when no record was created.
#
# Loopback only: the server listens on a free port of 127.0.0.1, on a fresh SQLite database with
# the synthetic demo data (`seed-demo`), and is stopped at the end.
#
# Environment: ST_EXAMPLES (per operation and mode), ST_SEED (generation seed), ST_CACHE (where the
# schemathesis virtualenv is kept), CARGO_TARGET_DIR as for cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
# Examples per operation and mode, generated deterministically from the seed with one worker:
# the same run every time, so a CI result can be reproduced (a time budget made each run differ).
ST_EXAMPLES="${ST_EXAMPLES:-100}"
ST_SEED="${ST_SEED:-20261203}"
CACHE="${ST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tsunagu}"
VENV="$CACHE/schemathesis-$ST_VERSION"

if [ ! -x "$VENV/bin/st" ]; then
    echo "== installing schemathesis $ST_VERSION into $VENV"
    mkdir -p "$CACHE"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

echo "== building tsunagu-server"
cargo build -q -p tsunagu-server --locked
BIN="${CARGO_TARGET_DIR:-target}/debug/tsunagu-server"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
DB="$WORK/fuzz.sqlite"
# Cheap password hashing: every generated login request hashes once, and the point here is the
# wire, not Argon2's cost. The per-address rate limits are off: the fuzzer sends everything from
# one address as fast as it can (their 429 is documented and tested in login_races.rs).
cat > "$WORK/config.toml" <<EOF
listen = "127.0.0.1:$PORT"
database_url = "sqlite://$DB"

[auth]
argon2_memory_kib = 256
argon2_iterations = 1
totp_key_file = "$WORK/totp.key"

[limits]
login_per_minute = 0
api_per_second = 0
EOF

export TSUNAGU_LOG="${TSUNAGU_LOG:-warn}"
"$BIN" --config "$WORK/config.toml" seed-demo --records 200 > "$WORK/seed.log"
PASSWORD=$(sed -n 's/^パスワード（全アカウント共通）: //p' "$WORK/seed.log")
[ -n "$PASSWORD" ] || { echo "seed-demo printed no password" >&2; cat "$WORK/seed.log" >&2; exit 1; }

"$BIN" --config "$WORK/config.toml" serve > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done

count_records() {
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM records").fetchone()[0])' "$DB"
}
BEFORE=$(count_records)

# A demo CGC account: it may create records, so POST /records can succeed.
OTP=$("$BIN" --config "$WORK/config.toml" demo-code demo-cgc)
TOKEN=$(curl -fsS -H 'content-type: application/json' \
    -d "{\"login\":\"demo-cgc\",\"password\":\"$PASSWORD\",\"otp\":\"$OTP\"}" \
    "$BASE/api/v1/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# Left out, and why: logout ends the session every later request uses; the event stream answers
# 200 with a body that never ends. Both are covered by the Rust tests.
status=0
for mode in positive negative; do
    echo "== schemathesis, $mode mode, $ST_EXAMPLES examples per operation"
    # From the scratch directory: schemathesis keeps a cache in its working directory.
    (cd "$WORK" && "$VENV/bin/st" run "$BASE/api/v1/openapi.json" \
        --header "Authorization: Bearer $TOKEN" \
        --mode "$mode" \
        --checks all \
        --exclude-checks positive_data_acceptance \
        --exclude-path /api/v1/auth/logout \
        --exclude-path /api/v1/notifications/stream \
        --max-examples "$ST_EXAMPLES" \
        --seed "$ST_SEED" \
        --generation-deterministic \
        --workers 1 \
        --request-timeout 30 \
        --no-color \
        --report junit --report-dir "$WORK/report-$mode") \
        || status=1
done

AFTER=$(count_records)
echo "== records: $BEFORE before, $AFTER after the run"
if [ "$AFTER" -le "$BEFORE" ]; then
    echo "FAIL: no record was created by the fuzzer" >&2
    status=1
fi
if grep -q "internal error" "$WORK/server.log"; then
    echo "FAIL: the server logged internal errors:" >&2
    grep "internal error" "$WORK/server.log" | head -20 >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "schemathesis: FAILED" >&2
else
    echo "schemathesis: passed (no 5xx, every answer as documented, $((AFTER - BEFORE)) records created)"
fi
exit "$status"
