#!/usr/bin/env python3
"""Generate tests/golden/backtest_rsi.json: when RSI(14) crossed below 30 on the
market simulator's BTCUSDT 1h candles, computed by TA-Lib itself.

    cargo build -p market-sim
    pip install ta-lib numpy
    python3 scripts/golden/generate_backtest.py

The candles follow a seeded random walk (hourly points, a scripted path the simulator
replays: the JSON carries it, and the test gives the simulator the same script). It
starts the simulator frozen at NOW_MS, reads its 1h klines over the span (and the
warm-up before it) the way Binance serves them, and for each 1h close in [FROM, TO)
computes TA-Lib's RSI on the service's fixed window ending at that bar (the last
`candles_needed` = 116 closed candles: what a batch at that close computes) and takes
the last two values. A close where the value before is at or above 30 and the value
is below it is a fire of `crosses_below 30` in `once_per_bar_close` mode. The Rust test
(tests/it/backtest/) backtests the same span against the same simulator and must find
exactly these fires, with these values; it never calls Python.
"""
import json
import math
import pathlib
import random
import socket
import subprocess
import time
import urllib.request

import numpy as np
import talib

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "backtest_rsi.json"
HOUR = 3_600_000
DAY = 24 * HOUR
# 1.8e12 ms is an hour boundary (2027-01-15T08:00:00Z); the test support's hour(n).
NOW_MS = 1_800_000_000_000 + 90 * DAY + 30_000
TO_MS = NOW_MS
FROM_MS = NOW_MS - 60 * DAY - 30_000 + HOUR  # an hour boundary
WINDOW = 116  # IndicatorSpec::Rsi { period: 14 }.candles_needed()
PERIOD = 14
LEVEL = 30.0


def random_walk_script():
    """Hourly prices from before the warm-up to after the span: 1.2 % an hour."""
    rng = random.Random(20261207)
    start = FROM_MS - (WINDOW + 3) * HOUR
    price, points = 65_000.0, []
    for _ in range((TO_MS - start) // HOUR + 3):
        points.append(round(price, 2))
        price *= math.exp(rng.gauss(0, 0.012))
    return {"paths": [{"source": "binance", "symbol": "BTCUSDT", "start_ms": start,
                       "step_ms": HOUR, "points": points}]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def klines(base, start, end):
    rows = []
    while start < end:
        url = f"{base}/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime={start}&limit=1000"
        page = json.load(urllib.request.urlopen(url))
        if not page:
            break
        rows += [r for r in page if r[0] < end and r[0] + HOUR <= NOW_MS]
        start = page[-1][0] + HOUR
        if len(page) < 1000:
            break
    return rows


def main():
    ports = [free_port() for _ in range(3)]
    script = random_walk_script()
    script_file = pathlib.Path("/tmp/backtest_golden_script.json")
    script_file.write_text(json.dumps(script))
    sim = subprocess.Popen([
        str(ROOT / "target" / "debug" / "market-sim"),
        "--start-ms", str(NOW_MS), "--speed", "0", "--script", str(script_file),
        "--binance-port", str(ports[0]), "--coingecko-port", str(ports[1]),
        "--ethereum-port", str(ports[2]),
    ], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{ports[0]}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/api/v3/ping")
                break
            except OSError:
                time.sleep(0.1)
        rows = klines(base, FROM_MS - (WINDOW + 1) * HOUR, TO_MS)
    finally:
        sim.terminate()
        sim.wait()
    opens = [r[0] for r in rows]
    closes = np.array([float(r[4]) for r in rows])
    fires = []
    for k, open_time in enumerate(opens):
        close_time = open_time + HOUR
        if not FROM_MS <= close_time < TO_MS:
            continue
        window = closes[max(0, k + 1 - WINDOW): k + 1]
        rsi = talib.RSI(window, timeperiod=PERIOD)
        previous, last = rsi[-2], rsi[-1]
        if previous >= LEVEL and last < LEVEL:
            fires.append({"at": close_time, "bar_open_time": open_time,
                          "value": last, "previous": previous})
    OUT.write_text(json.dumps({
        "talib": talib.__version__,
        "symbol": "BTCUSDT", "interval": "1h", "now_ms": NOW_MS,
        "from_ms": FROM_MS, "to_ms": TO_MS, "window": WINDOW,
        "script": script,
        "closes": [[o, c] for o, c in zip(opens, closes.tolist())],
        "fires": fires,
    }, indent=1) + "\n")
    print(f"{len(rows)} candles, {len(fires)} fires -> {OUT}")


if __name__ == "__main__":
    main()
