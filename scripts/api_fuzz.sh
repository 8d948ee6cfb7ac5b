#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: schemathesis (PyPI, pinned, in a venv under
# target/) generates requests from /internal/openapi.json — valid and invalid bodies,
# ids, frequencies — against the real service on a scratch database, and fails on any
# 5xx, any status or content type the document does not list, and any response that
# does not match its schema. Then the same for /api/v2 from Alertmanager 0.25's own
# api/v2/openapi.yaml (tests/alertmanager/), so our answers are what its clients parse.
#
# Needs the services of scripts/services.sh running (scripts/test.sh calls this with
# them) and the debug binary built. Bounded: FUZZ_MAX_EXAMPLES per operation (25).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SERVICES_POSTGRES_ADMIN_URL:?start the services first (scripts/test.sh does)}"
# shellcheck source=scripts/services.sh
source scripts/services.sh
psql="${SERVICES_PG_BINDIR:-$(pg_bindir)}/psql"

SCHEMATHESIS_VERSION=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

database=api_fuzz
"$psql" "$SERVICES_POSTGRES_ADMIN_URL" -q -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
url="${SERVICES_POSTGRES_ADMIN_URL%/*}/$database"
# Below the ephemeral range (32768-60999): an outgoing connection cannot take it
# between the check and the bind.
port=$(free_port 29500)
key=fuzz-key-0123456789abcdef
out=target/api-fuzz
mkdir -p "$out"
log=$out/service.log

export POSTGRES_URL=$url REDIS_URL=${SERVICES_REDIS_URL:-} MONITORING_API_KEY=$key
export MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port LOG_FORMAT=json RUST_LOG=warn
# Market data goes nowhere: simulate records unknowns, never waits on the internet.
export ENABLE_WEBSOCKETS=false ENABLE_SCHEDULER=false UPSTREAM_MAX_RETRIES=0
export BINANCE_BASE_URL=http://127.0.0.1:9 BINANCE_WS_URL=ws://127.0.0.1:9
export COINGECKO_BASE_URL=http://127.0.0.1:9
# The fuzzer sends thousands of requests; the rate limits are tested elsewhere.
export INTERNAL_RATE_LIMIT_PER_MINUTE=0 ALERT_INGEST_RATE_LIMIT_PER_MINUTE=0
# The alert stream ends after a second, so each fuzzed request to it completes.
export ALERT_STREAM_MAX_SECONDS=1 ALERT_STREAM_KEEPALIVE_SECONDS=1
export METRICS_SNAPSHOT_DIR= ALERT_LOG_DIR=

# The debug binary, or the one named by MONITORING_BIN (scripts/test.sh: the
# instrumented build of its coverage run, whose profile goes under $out).
bin=${MONITORING_BIN:-target/debug/monitoring-service}
export LLVM_PROFILE_FILE=$PWD/$out/profile-%p.profraw
"$bin" migrate
"$psql" "$url" -q -v ON_ERROR_STOP=1 -v inbox=http://127.0.0.1:9 -f scripts/seed.sql
serve_until_ready "$bin" "$log"
curl -fsS -H "X-MONITORING-KEY: $key" "http://127.0.0.1:$port/internal/openapi.json" \
  -o "$out/openapi.json"

# The Alertmanager API (/api/v2) is held to Alertmanager 0.25's own document.
cp tests/alertmanager/openapi.yaml "$out/alertmanager-openapi.yaml"

status=0
# fuzz <configuration> <document> <base URL> <auth header> [options…]: one schemathesis
# run. From $out, so schemathesis' own cache (.schemathesis/) stays under target/.
fuzz() {
  local config=$1 document=$2 url=$3 auth=$4
  shift 4
  (cd "$out" && "$OLDPWD/$venv/bin/schemathesis" --config-file "$OLDPWD/scripts/$config" run "$document" \
    --url "$url" \
    --header "$auth" \
    --max-examples "${FUZZ_MAX_EXAMPLES:-25}" \
    --seed 20261123 \
    --generation-database none \
    --no-color "$@")
}
fuzz schemathesis.toml openapi.json "http://127.0.0.1:$port" "X-MONITORING-KEY: $key" --workers 2 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection \
  || status=$?
echo "==> the Alertmanager API against Alertmanager 0.25's openapi.yaml"
# One worker: hypothesis' lambda descriptions are not thread-safe on this Python
# ("AST constructor recursion depth mismatch" seen with two).
fuzz schemathesis-alertmanager.toml alertmanager-openapi.yaml "http://127.0.0.1:$port/api/v2" \
  "Authorization: Bearer $key" --workers 1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "==> service log (last 50 lines)" >&2
  tail -n 50 "$log" >&2
  echo "==> any panic?" >&2
  grep -c '"panicked' "$log" >&2 || true
fi
exit "$status"
