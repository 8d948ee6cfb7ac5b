#!/usr/bin/env bash
# Line coverage of the unit and integration tests (cargo-llvm-cov), against the real
# Postgres, Redis and SMTP server the test command uses: runs every test once,
# instrumented, prints the figure per top-level module of src/ and overall, writes
# target/coverage/lcov.info, and fails when overall line coverage is under
# COVERAGE_FLOOR percent. Installs what is missing: rustup's llvm-tools and
# cargo-llvm-cov from crates.io.
#
#   scripts/coverage.sh                    starts its own Postgres and Redis
#   COVERAGE_FLOOR=0 scripts/coverage.sh   report only
#   scripts/coverage.sh --install-only     only install the tools (fails if it cannot)
#
# `scripts/test.sh` runs the tests through this script (with its services already up),
# so the floor holds in CI. Child processes the tests start (the binary, the CLI) count
# too: the tests pass LLVM_PROFILE_FILE through their cleared environments. The
# simulator (a test tool), the benches and the fuzz targets are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

# The floor: the overall figure reached (see docs/development.md, "Coverage"), rounded down.
COVERAGE_FLOOR=${COVERAGE_FLOOR:-94}
CARGO_LLVM_COV_VERSION=0.9.1

if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
  rustup component add llvm-tools-preview
fi
if ! cargo llvm-cov --version 2>/dev/null | grep -q "$CARGO_LLVM_COV_VERSION"; then
  cargo install cargo-llvm-cov --locked --version "$CARGO_LLVM_COV_VERSION"
fi
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

# Run from scripts/test.sh, the services are up already.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  trap services_stop EXIT INT TERM
  test_services_start "$PWD/target/coverage-services"
fi

mkdir -p target/coverage
cargo llvm-cov clean --workspace
cargo llvm-cov --workspace --locked --no-report
cargo llvm-cov report --lcov --output-path target/coverage/lcov.info \
  --ignore-filename-regex '(market-sim|benches|fuzz)/'
python3 scripts/coverage_summary.py target/coverage/lcov.info "$COVERAGE_FLOOR" \
  | tee target/coverage/summary.txt
