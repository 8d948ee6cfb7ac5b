#!/usr/bin/env bash
# The run command: a throwaway PostgreSQL (and Redis when available) under target/,
# migrations, a few demo strategies, the market simulator (offline Binance, CoinGecko
# and Ethereum RPC), and the service on 127.0.0.1:9000 pointed at it, with readable
# logs. Ctrl-C stops everything and removes the throwaway data.
#
# Override anything with the environment, e.g. MONITORING_PORT=9100 scripts/dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

sim_pid=""
stop_all() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; fi
  services_stop
}
trap stop_all EXIT INT TERM
services_start "$PWD/target/dev-services"

cargo build --locked --bin monitoring-service
cargo build --locked -p market-sim --bin market-sim
binance_port=$(free_port "${SIM_BINANCE_PORT:-59101}")
coingecko_port=$(free_port $((binance_port + 1)))
ethereum_port=$(free_port $((coingecko_port + 1)))
llm_port=$(free_port $((ethereum_port + 1)))
inbox_port=$(free_port $((llm_port + 1)))
# Real time, so the service's clock and the simulated market agree. The inbox prints
# every alert it receives ("inbox: telegram 123456 ← …"): the demo's Telegram API and
# its webhooks.
target/debug/market-sim --binance-port "$binance_port" --coingecko-port "$coingecko_port" \
  --ethereum-port "$ethereum_port" --llm-port "$llm_port" --inbox-port "$inbox_port" \
  ${SIM_SCRIPT:+--script "$SIM_SCRIPT"} &
sim_pid=$!
# The demo signal (scripts/seed.sql) is re-analysed at each 1m close: the simulated
# llm-proxy says continue, continue, then enter.
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$llm_port/__sim/llm/script" \
    -H 'content-type: application/json' \
    -d '{"00000000-0000-4000-8000-0000000005a1": [{"decision": "continue", "confidence": 0.55, "reasoning": "no breakout yet"}, {"decision": "continue", "confidence": 0.6, "reasoning": "volume building"}, {"decision": "enter", "confidence": 0.82, "reasoning": "breakout confirmed"}]}' \
    && break
  sleep 0.2
done
export ANALYSIS_URL=${ANALYSIS_URL:-http://127.0.0.1:$llm_port/v1/analyze}
export ANALYSIS_API_KEY=${ANALYSIS_API_KEY:-demo-llm-proxy-key}
export BINANCE_BASE_URL=${BINANCE_BASE_URL:-http://127.0.0.1:$binance_port}
export BINANCE_WS_URL=${BINANCE_WS_URL:-ws://127.0.0.1:$binance_port}
export COINGECKO_BASE_URL=${COINGECKO_BASE_URL:-http://127.0.0.1:$coingecko_port}
export ETH_RPC_URL=${ETH_RPC_URL:-http://127.0.0.1:$ethereum_port}
inbox=http://127.0.0.1:$inbox_port
export TELEGRAM_API_URL=${TELEGRAM_API_URL:-$inbox}
export TELEGRAM_BOT_TOKEN=${TELEGRAM_BOT_TOKEN:-demo-bot-token}
# The demo's webhooks go to the inbox on loopback, which the SSRF guard refuses unless
# private networks are allowed (an operator's choice, made here for the demo only).
export NOTIFY_ALLOW_PRIVATE_NETWORKS=${NOTIFY_ALLOW_PRIVATE_NETWORKS:-true}
# Operational alerts go to a Telegram chat of the inbox too.
export OPS_ALERT_ROUTES=${OPS_ALERT_ROUTES:-'{"WARNING": [{"type": "telegram", "chat_id": "-100777"}], "CRITICAL": [{"type": "telegram", "chat_id": "-100777"}]}'}
export OPS_ALERT_GROUP_WAIT_SECONDS=${OPS_ALERT_GROUP_WAIT_SECONDS:-5}

export POSTGRES_URL=$SERVICES_POSTGRES_URL
export REDIS_URL=$SERVICES_REDIS_URL
# Platform health demo: the simulator stands for a healthy service, and port 9 of
# loopback (nothing listens there) for one that is down.
export HEALTH_TARGETS=${HEALTH_TARGETS:-"[{\"name\":\"market-sim\",\"url\":\"$BINANCE_BASE_URL/api/v3/ping\",\"critical\":true},{\"name\":\"reports\",\"url\":\"http://127.0.0.1:9/health\"}]"}
export HEALTH_CHECK_INTERVAL=${HEALTH_CHECK_INTERVAL:-10}
export MONITORING_HOST=${MONITORING_HOST:-127.0.0.1}
export MONITORING_API_KEY=${MONITORING_API_KEY:-dev-key-change-me-0123456789}
export LOG_FORMAT=${LOG_FORMAT:-pretty}
# Candle closes from the market stream show at debug level.
export RUST_LOG=${RUST_LOG:-info,sqlx=warn,monitoring_service::market::candle_feed=debug}

target/debug/monitoring-service migrate
"$SERVICES_PG_BINDIR/psql" "$POSTGRES_URL" -v ON_ERROR_STOP=1 -v inbox="$inbox" -q -f scripts/seed.sql

cat >&2 <<INFO

  monitoring-service on http://$MONITORING_HOST:${MONITORING_PORT:-9000}
    curl http://$MONITORING_HOST:${MONITORING_PORT:-9000}/ready
    curl -H 'X-MONITORING-KEY: $MONITORING_API_KEY' http://$MONITORING_HOST:${MONITORING_PORT:-9000}/internal/status
    curl -H 'X-MONITORING-KEY: $MONITORING_API_KEY' http://$MONITORING_HOST:${MONITORING_PORT:-9000}/internal/health/system
  Postgres: $POSTGRES_URL   Redis: ${REDIS_URL:-none (in-process)}
  Market simulator: Binance $BINANCE_BASE_URL, CoinGecko $COINGECKO_BASE_URL, RPC $ETH_RPC_URL
  Simulated llm-proxy: $ANALYSIS_URL (the demo signal is analysed at each 1m close)
  Inbox: $inbox — Telegram (TELEGRAM_API_URL) and webhooks; every alert it receives is
    printed here as "inbox: …". One of the SOL strategies fires at each 1m close.
    curl -H 'X-MONITORING-KEY: $MONITORING_API_KEY' http://$MONITORING_HOST:${MONITORING_PORT:-9000}/internal/workflows/00000000-0000-4000-8000-0000000005c1
    curl '$BINANCE_BASE_URL/api/v3/ticker/price?symbol=BTCUSDT'
    curl -X POST $BINANCE_BASE_URL/__sim/faults -d '{"provider":"binance","kind":"status","status":503}' -H 'content-type: application/json'
    curl $BINANCE_BASE_URL/__sim/requests
  Ctrl-C to stop.

INFO
# Once the service is ready, a trading engine's tick trips its circuit breaker: an
# operational alert (CRITICAL) raised, and its message in the inbox seconds later.
base=http://$MONITORING_HOST:${MONITORING_PORT:-9000}
(
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$base/ready" 2>/dev/null && break
    sleep 0.2
  done
  curl -fsS -o /dev/null -X POST "$base/internal/engine/ticks" \
    -H "X-MONITORING-KEY: ${MONITORING_API_KEY%%,*}" -H 'content-type: application/json' \
    -d "{\"engine_id\": \"demo-1\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",
         \"risk\": {\"circuit_breaker_active\": true, \"daily_loss_pct\": -0.25}}" || true
  # When would the ETH trend flip have fired over the last 30 days? A backtest: its 4h
  # candles fetched from the simulator once and stored, the strategy walked through
  # every 5m moment by the batches' own evaluation.
  echo "backtest of the ETH trend flip over the last 30 days:" >&2
  target/debug/monitoring-service backtest 00000000-0000-4000-8000-000000000002 \
    --url "$base" >&2 || true
) &
target/debug/monitoring-service serve
