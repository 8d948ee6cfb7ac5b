#!/usr/bin/env bash
# /health and /metrics under load with wrk (Debian's package), against the release
# binary on a scratch database with the demo strategies and a few batches run (so
# /metrics carries real series). Two runs per route: flat out, and paced to about
# 10,000 requests/s. wrk and the service share this machine's cores.
#
# Called by `scripts/bench.sh http` (which starts Postgres and Redis).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BENCH_POSTGRES_URL:?run scripts/bench.sh http}"
source scripts/services.sh
command -v wrk >/dev/null || apt_install wrk
psql="$(pg_bindir)/psql"

cargo build --release --locked --bin monitoring-service
database=bench_http
admin="${BENCH_POSTGRES_URL%/*}/postgres"
"$psql" "$admin" -q -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
export POSTGRES_URL="${BENCH_POSTGRES_URL%/*}/$database" REDIS_URL=${BENCH_REDIS_URL:-}
port=$(free_port 59600)
key=bench-key-0123456789abcdef
export MONITORING_API_KEY=$key MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port
export LOG_FORMAT=json RUST_LOG=warn ENABLE_WEBSOCKETS=false ENABLE_SCHEDULER=false
export BINANCE_BASE_URL=http://127.0.0.1:9 COINGECKO_BASE_URL=http://127.0.0.1:9
export UPSTREAM_MAX_RETRIES=0
target/release/monitoring-service migrate
"$psql" "$POSTGRES_URL" -q -v ON_ERROR_STOP=1 -v inbox=http://127.0.0.1:9 -f scripts/seed.sql
serve_until_ready target/release/monitoring-service target/bench-http-service.log
for frequency in 1m 5m 1m 5m; do
  curl -fsS -X POST -H "X-MONITORING-KEY: $key" "http://127.0.0.1:$port/internal/run/$frequency" >/dev/null
done
echo "/metrics is $(curl -fsS "http://127.0.0.1:$port/metrics" | wc -c) bytes, $(curl -fsS "http://127.0.0.1:$port/metrics" | grep -vc '^#') series"

for route in /health /metrics; do
  echo "==> $route flat out: wrk -t2 -c32 -d15s --latency"
  wrk -t2 -c32 -d15s --latency "http://127.0.0.1:$port$route" | grep -E "Requests/sec|^ +(50|90|99)%|Latency  "
  echo "==> $route paced (14 connections, 1 ms between requests each): wrk -t2 -c14 -d15s --latency -s benches/http/paced.lua"
  WRK_DELAY_MS=1 wrk -t2 -c14 -d15s --latency -s benches/http/paced.lua "http://127.0.0.1:$port$route" \
    | grep -E "Requests/sec|^ +(50|90|99)%|Latency  "
done
