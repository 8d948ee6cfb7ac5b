#!/usr/bin/env python3
"""Times TA-Lib's C functions (through the ta-lib wheel) on the series in argv[1], one
call per request: reads an indicator name per line on stdin, answers the call's
duration in nanoseconds on stdout (`-` for an unknown name). Driven by
benches/indicators.rs, which interleaves these calls with its own so both sides see the
same machine at the same moment."""
import json
import sys
import time

import numpy as np
import talib

data = json.load(open(sys.argv[1]))
h, l, c, v = (np.array(data[k], dtype=np.float64) for k in ("high", "low", "close", "volume"))

cases = {
    "sma(20)": lambda: talib.SMA(c, 20),
    "ema(20)": lambda: talib.EMA(c, 20),
    "wma(20)": lambda: talib.WMA(c, 20),
    "rsi(14)": lambda: talib.RSI(c, 14),
    "macd(12,26,9)": lambda: talib.MACD(c, 12, 26, 9),
    "bbands(20,2)": lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0),
    "atr(14)": lambda: talib.ATR(h, l, c, 14),
    "stoch(14,3,3)": lambda: talib.STOCH(h, l, c, 14, 3, 0, 3, 0),
    "volume_sma(20)": lambda: talib.SMA(v, 20),
}
for fn in cases.values():
    fn()
print("ready", flush=True)
for line in sys.stdin:
    fn = cases.get(line.strip())
    if fn is None:
        print("-", flush=True)
        continue
    started = time.perf_counter_ns()
    fn()
    print(time.perf_counter_ns() - started, flush=True)
