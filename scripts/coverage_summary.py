#!/usr/bin/env python3
"""Line coverage per top-level module of src/ from an lcov file, and the floor check.

    coverage_summary.py LCOV_FILE [FLOOR]

Prints one row per module (`src/<module>/…` or `src/<module>.rs`) and the overall
figure; exits 1 when the overall line coverage is under FLOOR percent.
"""
import collections
import sys


def per_module(path):
    lines = collections.defaultdict(lambda: [0, 0])
    module = None
    with open(path) as lcov:
        for raw in lcov:
            raw = raw.strip()
            if raw.startswith("SF:"):
                source = raw[3:]
                module = None
                if "/src/" in source and "/market-sim/" not in source:
                    relative = source.split("/src/", 1)[1]
                    module = relative.split("/", 1)[0].removesuffix(".rs")
            elif raw.startswith("DA:") and module:
                hits = int(raw[3:].split(",")[1])
                lines[module][0] += hits > 0
                lines[module][1] += 1
    return lines


def main():
    lines = per_module(sys.argv[1])
    floor = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    covered = sum(hit for hit, _ in lines.values())
    total = sum(count for _, count in lines.values())
    if total == 0:
        sys.exit("no line of src/ in the coverage report")
    print(f"{'module':<16} {'lines':>7} {'covered':>8}")
    for module, (hit, count) in sorted(lines.items()):
        print(f"{module:<16} {count:>7} {100 * hit / count:>7.1f}%")
    overall = 100 * covered / total
    print(f"{'overall':<16} {total:>7} {overall:>7.1f}%")
    if overall < floor:
        sys.exit(f"line coverage {overall:.1f}% is under the floor of {floor:g}%")


if __name__ == "__main__":
    main()
