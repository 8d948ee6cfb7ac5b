#!/usr/bin/env bash
# The benchmarks, with the throwaway PostgreSQL the loader benchmark needs.
#
#   scripts/bench.sh               every benchmark
#   scripts/bench.sh evaluation    one of: evaluation, loader, indicators, prefetch, pipeline, reload
#
# Figures and how to read them: BENCHMARKS.md. The indicators benchmark compares with
# TA-Lib when its Python wheel is installed (pip install ta-lib numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

benches=("${@:-evaluation loader indicators prefetch pipeline reload}")
trap services_stop EXIT INT TERM
services_start "$PWD/target/bench-services"
export BENCH_POSTGRES_URL=$SERVICES_POSTGRES_URL
export BENCH_REDIS_URL=$SERVICES_REDIS_URL

for bench in ${benches[*]}; do
  echo "==> cargo bench --bench $bench"
  cargo bench --locked --bench "$bench"
done
