#!/usr/bin/env python3
"""The floor for benches/backtest.rs: the same signals (RSI(14) below 30, EMA(20)
crossing above EMA(50), MACD(12,26,9) histogram above 0) over the closes in argv[1],
by TA-Lib's C functions on the whole series and numpy comparisons. Prints the median
of argv[2] runs in milliseconds."""
import json
import sys
import time

import numpy as np
import talib

closes = np.array(json.load(open(sys.argv[1])), dtype=np.float64)
runs = int(sys.argv[2])


def signals():
    rsi = talib.RSI(closes, 14)
    fast, slow = talib.EMA(closes, 20), talib.EMA(closes, 50)
    _, _, histogram = talib.MACD(closes, 12, 26, 9)
    crossed = np.zeros(len(closes), dtype=bool)
    crossed[1:] = (fast[:-1] <= slow[:-1]) & (fast[1:] > slow[1:])
    return (rsi < 30) | crossed | (histogram > 0)


times = []
for _ in range(runs):
    started = time.perf_counter()
    signals()
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.3f}")
