#!/usr/bin/env bash
# The test command: provisions a throwaway PostgreSQL and Redis and the SMTP server the
# email tests start (installing them with apt-get when missing and running as root),
# runs the whole test suite against them, and tears everything down, even on failure.
#
#   scripts/test.sh                 format check, clippy, the deploy checks, every test
#                                   under line coverage with its floor
#                                   (scripts/coverage.sh), the alerting rules' tests
#                                   and a schemathesis run of the API
#   scripts/test.sh -- <filter>     extra arguments go to `cargo test`
#   scripts/test.sh --long [...]    also the long rolling-deploy test: the scaling and
#                                   rolling replacement repeated 5 times (ROLLING_ROUNDS)
set -euo pipefail
if [ "${1:-}" = "--long" ]; then
  shift
  export ROLLING_ROUNDS=${ROLLING_ROUNDS:-5}
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

trap services_stop EXIT INT TERM
test_services_start "$PWD/target/test-services"

if [ "${1:-}" = "--" ]; then shift; fi

if [ $# -eq 0 ]; then
  echo "==> layout: the wings, no import cycle in any folder, fan-out, each table's SQL in one module"
  python3 scripts/check_layers.py
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  echo "==> deploy: Dockerfile replay, manifests validated and linted"
  scripts/check_deploy.sh
fi
if [ $# -eq 0 ] && scripts/coverage.sh --install-only; then
  # Every test once, instrumented: the suite and its coverage floor in one run.
  echo "==> cargo llvm-cov: every test, line coverage per module, the floor"
  scripts/coverage.sh
  # The schemathesis run below uses the binary that run built.
  export MONITORING_BIN=target/llvm-cov-target/debug/monitoring-service
else
  if [ $# -eq 0 ]; then
    echo "warning: the coverage tools (rustup's llvm-tools, cargo-llvm-cov) could not be" \
      "installed: the tests run without coverage, and its floor is not checked" >&2
  fi
  echo "==> cargo test"
  cargo test --workspace --locked -- "$@"
fi

if [ $# -eq 0 ]; then
  echo "==> promtool: the alerting rules and their unit tests"
  promtool check rules deploy/prometheus/monitoring-service.rules.yml
  promtool test rules deploy/prometheus/monitoring-service.rules.test.yml
  echo "==> schemathesis against /internal/openapi.json"
  SERVICES_PG_BINDIR=$SERVICES_PG_BINDIR scripts/api_fuzz.sh
fi
