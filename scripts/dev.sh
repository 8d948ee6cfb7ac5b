#!/usr/bin/env bash
# The run command: a throwaway PostgreSQL (and Redis when available) under target/,
# migrations, a few demo strategies, and the service on 127.0.0.1:9000 with readable
# logs. Ctrl-C stops the service and removes the throwaway data.
#
# Override anything with the environment, e.g. MONITORING_PORT=9100 scripts/dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

trap services_stop EXIT INT TERM
services_start "$PWD/target/dev-services"

export POSTGRES_URL=$SERVICES_POSTGRES_URL
export REDIS_URL=$SERVICES_REDIS_URL
export MONITORING_HOST=${MONITORING_HOST:-127.0.0.1}
export MONITORING_API_KEY=${MONITORING_API_KEY:-dev-key-change-me-0123456789}
export LOG_FORMAT=${LOG_FORMAT:-pretty}

cargo build --locked --bin monitoring-service
target/debug/monitoring-service migrate
"$SERVICES_PG_BINDIR/psql" "$POSTGRES_URL" -v ON_ERROR_STOP=1 -q -f scripts/seed.sql

cat >&2 <<INFO

  monitoring-service on http://$MONITORING_HOST:${MONITORING_PORT:-9000}
    curl http://$MONITORING_HOST:${MONITORING_PORT:-9000}/ready
    curl -H 'X-MONITORING-KEY: $MONITORING_API_KEY' http://$MONITORING_HOST:${MONITORING_PORT:-9000}/internal/status
  Postgres: $POSTGRES_URL   Redis: ${REDIS_URL:-none (in-process)}
  Ctrl-C to stop.

INFO
target/debug/monitoring-service serve
