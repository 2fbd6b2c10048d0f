#!/usr/bin/env bash
# The whole suite: lint, types, then every test of every marker. A skipped test fails the run
# (SUTURE_FORBID_SKIPS=1): nothing that CI is meant to run may quietly not run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff"
$BIN/ruff check .
echo "== mypy (strict, host/)"
$BIN/mypy

pgdir=$(mktemp -d /tmp/suture-pg.XXXXXX)
cleanup() { tools/postgres-test-server.sh stop "$pgdir"; rm -rf "$pgdir"; }
trap cleanup EXIT
echo "== starting PostgreSQL for the tests marked postgres"
SUTURE_TEST_POSTGRES_URL=$(tools/postgres-test-server.sh start "$pgdir")
export SUTURE_TEST_POSTGRES_URL

# One worker a core, at most four (SUTURE_TEST_WORKERS overrides); each test file runs whole
# in one worker, so a module's servers and devices are made once.
cores=$(nproc)
workers=${SUTURE_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
echo "== pytest (all markers; $workers workers)"
export SUTURE_FORBID_SKIPS=1
$BIN/pytest -n "$workers" --dist loadfile --durations=30 "$@"
