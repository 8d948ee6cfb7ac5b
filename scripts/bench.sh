#!/usr/bin/env bash
# The benchmarks, with the throwaway PostgreSQL the loader benchmark needs.
#
#   scripts/bench.sh               every benchmark
#   scripts/bench.sh evaluation    one of: evaluation, loader, indicators, prefetch, pipeline, reload, rules, health_cycle, analysis, backtest, http, ticks, alerts
#
# Figures and how to read them: BENCHMARKS.md. The indicators benchmark compares with
# TA-Lib when its Python wheel is installed (pip install ta-lib numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

benches=("${@:-evaluation loader indicators prefetch pipeline reload rules health_cycle analysis backtest http ticks alerts}")
trap services_stop EXIT INT TERM
services_start "$PWD/target/bench-services"
export BENCH_POSTGRES_URL=$SERVICES_POSTGRES_URL
export BENCH_REDIS_URL=$SERVICES_REDIS_URL

for bench in ${benches[*]}; do
  if [ "$bench" = ticks ]; then
    echo "==> benches/ticks/run.sh ticks (wrk on engine ticks, side by side with Alertmanager)"
    benches/ticks/run.sh ticks
    continue
  fi
  if [ "$bench" = alerts ]; then
    echo "==> benches/ticks/run.sh alerts (wrk posting alerts, side by side with Alertmanager)"
    benches/ticks/run.sh alerts
    continue
  fi
  if [ "$bench" = http ]; then
    echo "==> benches/http/run.sh (wrk on /health and /metrics)"
    benches/http/run.sh
    continue
  fi
  echo "==> cargo bench --bench $bench"
  cargo bench --locked --bench "$bench"
done
