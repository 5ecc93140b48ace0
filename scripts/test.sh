#!/usr/bin/env bash
# Runs every test of the workspace. Tests that need PostgreSQL run when TEST_DATABASE_URL names
# a server; if it is unset and a PostgreSQL server answers on 127.0.0.1:5432 as user postgres,
# that one is used. Otherwise those tests are skipped, and this script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
    && pg_isready -q -h 127.0.0.1 -p 5432 -U postgres; then
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    echo "== tests on SQLite and PostgreSQL (${TEST_DATABASE_URL%%@*}@…)"
else
    echo "== tests on SQLite only: PostgreSQL tests are SKIPPED (set TEST_DATABASE_URL to run them)"
fi

cargo test --workspace --locked "$@"

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    echo "NOTE: the PostgreSQL half of the storage and API suites was SKIPPED (no TEST_DATABASE_URL)."
fi
