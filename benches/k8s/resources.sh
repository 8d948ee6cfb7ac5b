#!/usr/bin/env bash
# What one replica needs (the Deployment's requests and limits): the release binary in
# SHARD_COUNT=auto with STRATEGIES strategies (default 10,000: an RSI(14) on a 1m series,
# over 100 simulated symbols, 1m batches), the market simulator in real time, Postgres
# and Redis from scripts/services.sh. Samples the process every 5 s for DURATION seconds
# (default 180) from /proc: CPU (utime + stime) and resident memory (VmRSS, VmHWM).
#
#   benches/k8s/resources.sh                  build the release binary if missing
#   STRATEGIES=0 benches/k8s/resources.sh     idle
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/services.sh
source scripts/services.sh
STRATEGIES=${STRATEGIES:-10000}
DURATION=${DURATION:-180}

sim_pid="" svc_pid=""
stop_all() {
  for pid in $svc_pid $sim_pid; do kill "$pid" 2>/dev/null || true; done
  services_stop
}
trap stop_all EXIT INT TERM
REQUIRE_REDIS=1 services_start "$PWD/target/resources-services"
[ -x target/release/monitoring-service ] || cargo build --release --locked --bin monitoring-service
[ -x target/debug/market-sim ] || cargo build --locked -p market-sim --bin market-sim

symbols=$(for i in $(seq 1 100); do printf 'LOAD%03dUSDT,' "$i"; done)
binance_port=$(free_port 59301)
target/debug/market-sim --binance-port "$binance_port" --coingecko-port "$(free_port 59302)" \
  --ethereum-port "$(free_port 59303)" --symbols "${symbols%,}" >/dev/null 2>&1 &
sim_pid=$!

psql="$SERVICES_PG_BINDIR/psql"
database=resources
"$psql" "$SERVICES_POSTGRES_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
export POSTGRES_URL="${SERVICES_POSTGRES_ADMIN_URL%/*}/$database"
target/release/monitoring-service migrate >/dev/null
"$psql" "$POSTGRES_URL" -q -v ON_ERROR_STOP=1 <<SQL
WITH s AS (SELECT gen_random_uuid() AS id, gen_random_uuid() AS cid, n
             FROM generate_series(1, $STRATEGIES) AS n),
     ins AS (INSERT INTO strategies (id, user_id, name, logic_tree, frequency, cooldown_seconds)
             SELECT id, gen_random_uuid(), 'load ' || n,
                    jsonb_build_object('and', jsonb_build_array(jsonb_build_object('condition', cid))),
                    '1m', 3600 FROM s RETURNING id)
INSERT INTO strategy_conditions (id, strategy_id, kind, params)
SELECT cid, id, 'technical_indicator',
       jsonb_build_object('source', 'binance', 'symbol', format('LOAD%sUSDT', lpad((1 + n % 100)::text, 3, '0')),
                          'interval', '1m', 'indicator', 'rsi', 'period', 14, 'operator', 'below', 'value', 30)
  FROM s;
SQL

port=$(free_port 59310)
REDIS_URL=$SERVICES_REDIS_URL MONITORING_HOST=127.0.0.1 MONITORING_PORT=$port \
  MONITORING_API_KEY=resources-key-0123456789 SHARD_COUNT=${SHARD_COUNT:-auto} LOG_FORMAT=json RUST_LOG=warn \
  BINANCE_BASE_URL=http://127.0.0.1:$binance_port BINANCE_WS_URL=ws://127.0.0.1:$binance_port \
  ALERT_LOG_DIR=target/resources-alerts METRICS_SNAPSHOT_DIR=target/resources-metrics \
  HEALTH_CHECK_INTERVAL=0 target/release/monitoring-service serve >target/resources.log 2>&1 &
svc_pid=$!
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" && break
  sleep 0.1
done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$svc_pid/stat"; }
start_cpu=$(cpu) start=$(date +%s.%N)
echo "strategies=$STRATEGIES duration=${DURATION}s"
for _ in $(seq 1 $((DURATION / 5))); do
  sleep 5
  now_cpu=$(cpu) now=$(date +%s.%N)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$svc_pid/status")
  echo "t=$(printf '%.0f' "$(echo "$now - $start" | bc)")s cpu_cores=$(echo "scale=3; ($now_cpu - $start_cpu) / $ticks / ($now - $start)" | bc) rss_mib=$((rss / 1024))"
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$svc_pid/status")
echo "average cpu_cores=$(echo "scale=3; ($(cpu) - $start_cpu) / $ticks / ($(date +%s.%N) - $start)" | bc) peak_rss_mib=$((hwm / 1024))"
"$psql" "$POSTGRES_URL" -At -c "SELECT 'batches ' || count(*) || ', evaluated per batch ' || coalesce(max(evaluated), 0) || ', median ' || coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::numeric, 1), 0) || ' ms' FROM monitor_ledger WHERE name = 'batch:1m'"
curl -fsS -H "X-MONITORING-KEY: resources-key-0123456789" "http://127.0.0.1:$port/internal/status" \
  | python3 -c 'import json,sys; s=json.load(sys.stdin); print("loaded", s["strategies"]["loaded"], "shards held", len(s["shard"].get("held", [])))'
