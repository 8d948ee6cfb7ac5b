#!/usr/bin/env bash
# Engine ticks under load with wrk (Debian's package), side by side with Prometheus
# Alertmanager (Debian's prometheus-alertmanager, in memory) taking one alert per
# request on POST /api/v2/alerts:
#   1. paced: 10 connections, 20 ms between requests each (≈ 500 ticks/s from 50
#      engines) for 60 s — the latency a steady fleet sees;
#   2. flat out: 10 connections for 30 s — the throughput ceiling;
#   3. posted alerts (issue 33): POST /api/v2/alerts with batches of 100 alerts on both,
#      flat out for 30 s — every alert stored (one statement per batch) before the
#      answer on our side, in memory on Alertmanager's.
# `run.sh ticks` runs 1 and 2 only, `run.sh alerts` 3 only; no argument: all.
# Every tick is committed to Postgres (and judged) before its answer. The rules' own
# time per tick is read from monitoring_ops_rule_evaluation_seconds afterwards. wrk,
# the service, Postgres and Alertmanager share this machine's cores.
#
# Called by `scripts/bench.sh ticks` (which starts Postgres and Redis).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BENCH_POSTGRES_URL:?run scripts/bench.sh ticks}"
source scripts/services.sh
command -v wrk >/dev/null || apt_install wrk
command -v prometheus-alertmanager >/dev/null || apt_install prometheus-alertmanager
psql="$(pg_bindir)/psql"
work=target/bench-ticks
rm -rf "$work" && mkdir -p "$work"

cargo build --release --locked --bin monitoring-service
database=bench_ticks
admin="${BENCH_POSTGRES_URL%/*}/postgres"
"$psql" "$admin" -q -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
export POSTGRES_URL="${BENCH_POSTGRES_URL%/*}/$database" REDIS_URL=${BENCH_REDIS_URL:-}
port=$(free_port 59700)
export BENCH_KEY=bench-key-0123456789abcdef
export MONITORING_API_KEY=$BENCH_KEY MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port
export LOG_FORMAT=json RUST_LOG=warn ENABLE_WEBSOCKETS=false ENABLE_SCHEDULER=false
export BINANCE_BASE_URL=http://127.0.0.1:9 COINGECKO_BASE_URL=http://127.0.0.1:9
export ENGINE_TICKS_RATE_LIMIT_PER_MINUTE=0 ALERT_INGEST_RATE_LIMIT_PER_MINUTE=0 ALERT_LOG_DIR= METRICS_SNAPSHOT_DIR= HEALTH_CHECK_INTERVAL=0
target/release/monitoring-service migrate
serve_until_ready target/release/monitoring-service "$work/service.log"

am_port=$(free_port 59800)
cat > "$work/alertmanager.yml" <<'YAML'
route:
  receiver: "null"
receivers:
  - name: "null"
YAML
prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
  --log.level=warn >"$work/alertmanager.log" 2>&1 &
am_pid=$!
trap 'kill $am_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$am_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

report() { grep -E "Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors"; }
ticks="http://127.0.0.1:$port/internal/engine/ticks"
alerts="http://127.0.0.1:$am_port/api/v2/alerts"
part=${1:-all}

if [ "$part" = all ] || [ "$part" = alerts ]; then
  echo "==> posted alerts, batches of 100, flat out for 30 s: wrk -t2 -c10 -d30s --latency"
  echo "--- monitoring-service POST /api/v2/alerts"
  BENCH_BEARER=$BENCH_KEY wrk -t2 -c10 -d30s --latency -s benches/ticks/alert_batch.lua \
    "http://127.0.0.1:$port/api/v2/alerts" | report
  echo "--- alertmanager POST /api/v2/alerts"
  wrk -t2 -c10 -d30s --latency -s benches/ticks/alert_batch.lua "$alerts" | report
  "$psql" "$POSTGRES_URL" -Atc "SELECT count(*) || ' episodes, ' || sum((last_seen_at > started_at)::int) || ' seen again' FROM ops_alerts WHERE rule = 'BenchAlert'"
  "$psql" "$POSTGRES_URL" -Atc "SELECT count(*) || ' raised events' FROM ops_alert_events WHERE event = 'raised'"
  [ "$part" = alerts ] && exit 0
fi

echo "==> paced ≈ 500/s for 60 s: wrk -t2 -c10 -d60s --latency (WRK_DELAY_MS=20)"
echo "--- monitoring-service POST /internal/engine/ticks"
WRK_DELAY_MS=20 wrk -t2 -c10 -d60s --latency -s benches/ticks/tick.lua "$ticks" | report
echo "--- alertmanager POST /api/v2/alerts"
WRK_DELAY_MS=20 wrk -t2 -c10 -d60s --latency -s benches/ticks/alertmanager.lua "$alerts" | report
echo "==> flat out for 30 s: wrk -t2 -c10 -d30s --latency"
echo "--- monitoring-service POST /internal/engine/ticks"
wrk -t2 -c10 -d30s --latency -s benches/ticks/tick.lua "$ticks" | report
echo "--- alertmanager POST /api/v2/alerts"
wrk -t2 -c10 -d30s --latency -s benches/ticks/alertmanager.lua "$alerts" | report

echo "==> stored and judged"
"$psql" "$POSTGRES_URL" -Atc "SELECT count(*) || ' ticks in engine_metrics' FROM engine_metrics"
curl -fsS "http://127.0.0.1:$port/metrics" | awk '
  /^monitoring_ops_rule_evaluation_seconds_sum/ {sum=$2}
  /^monitoring_ops_rule_evaluation_seconds_count/ {count=$2}
  /^monitoring_engine_tick_batch_size_sum/ {bsum=$2}
  /^monitoring_engine_tick_batch_size_count/ {bcount=$2}
  END {
    printf "rules: %.2f µs per tick on average over %d ticks\n", sum / count * 1e6, count
    printf "ticks per commit: %.1f on average over %d commits\n", bsum / bcount, bcount
  }'
