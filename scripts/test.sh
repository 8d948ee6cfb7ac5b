#!/usr/bin/env bash
# The test command: provisions a throwaway PostgreSQL and Redis and the SMTP server the
# email tests start (installing them with apt-get when missing and running as root),
# runs the whole test suite against them, and tears everything down, even on failure.
#
#   scripts/test.sh                 format check, clippy, every test, the alerting
#                                   rules' tests and a schemathesis run of the API
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
REQUIRE_REDIS=1 services_start "$PWD/target/test-services"

# sqlx::test creates one database per test through DATABASE_URL.
export DATABASE_URL=$SERVICES_POSTGRES_URL
export TEST_POSTGRES_URL=$SERVICES_POSTGRES_URL
export TEST_PG_BINDIR=$SERVICES_PG_BINDIR
export TEST_REDIS_URL=$SERVICES_REDIS_URL

# The email tests talk to a real SMTP server: aiosmtpd, run by Debian's Python.
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
  apt_install python3-aiosmtpd
fi
export TEST_SMTP_PYTHON=/usr/bin/python3

# The metrics tests check a scrape with promtool, from Debian's prometheus package.
if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
fi

if [ "${1:-}" = "--" ]; then shift; fi

if [ $# -eq 0 ]; then
  echo "==> layout: no import cycle among src/'s modules, each table's SQL in one module"
  python3 scripts/check_layers.py
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  echo "==> deploy: Dockerfile replay, manifests validated and linted"
  scripts/check_deploy.sh
fi
echo "==> cargo test"
cargo test --workspace --locked -- "$@"

if [ $# -eq 0 ]; then
  echo "==> promtool: the alerting rules and their unit tests"
  promtool check rules deploy/prometheus/monitoring-service.rules.yml
  promtool test rules deploy/prometheus/monitoring-service.rules.test.yml
  echo "==> schemathesis against /internal/openapi.json"
  SERVICES_PG_BINDIR=$SERVICES_PG_BINDIR scripts/api_fuzz.sh
fi
