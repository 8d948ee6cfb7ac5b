#!/usr/bin/env bash
# Side-by-side benchmarks: the evaluation, loader and pipeline benchmarks of an older
# commit and of the work tree, release builds of both, run interleaved (old, new, old,
# new) on one throwaway PostgreSQL and Redis, so the machine's noise falls on both.
#
#   scripts/bench_compare.sh <old-rev> [rounds]     e.g. scripts/bench_compare.sh cc76ca2 2
set -euo pipefail
cd "$(dirname "$0")/.."
old_rev=${1:?usage: scripts/bench_compare.sh <old-rev> [rounds]}
rounds=${2:-2}
benches=(evaluation loader pipeline)
work=$PWD/target/bench-compare
rm -rf "$work" && mkdir -p "$work/old" "$work/new"

# Builds the benches in $1 (a checkout) and copies the binaries to $2.
build() {
  (cd "$1" && CARGO_TARGET_DIR=$PWD/target cargo bench --locked --no-run \
     $(printf -- '--bench %s ' "${benches[@]}") 2>&1) |
    grep -o 'target/release/deps/[a-z_]*-[0-9a-f]*' | while read -r exe; do
      cp "$1/$exe" "$2/$(basename "$exe" | cut -d- -f1)"
    done
}
git worktree add --detach "$work/src-old" "$old_rev" >/dev/null
trap 'git worktree remove --force "$work/src-old"' EXIT
# The old checkout shares this tree's target directory so dependencies build once.
ln -s "$PWD/target" "$work/src-old/target"
build "$work/src-old" "$work/old"
build "$PWD" "$work/new"

# shellcheck source=scripts/services.sh
source scripts/services.sh
trap 'services_stop; git worktree remove --force "$work/src-old"' EXIT
services_start "$work/services"
export BENCH_POSTGRES_URL=$SERVICES_POSTGRES_URL BENCH_REDIS_URL=$SERVICES_REDIS_URL
for round in $(seq "$rounds"); do
  for bench in "${benches[@]}"; do
    for side in old new; do
      echo "=== round $round $bench $side"
      if [ "$bench" = evaluation ]; then "$work/$side/$bench" --bench; else "$work/$side/$bench"; fi
    done
  done
done
