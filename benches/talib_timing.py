#!/usr/bin/env python3
"""Times TA-Lib's C functions (through the ta-lib wheel) on the series in argv[1];
prints {"indicator": median_seconds, ...} as JSON. Called by benches/indicators.rs so
both sides run on the same data in the same run."""
import json
import sys
import timeit

import numpy as np
import talib

data = json.load(open(sys.argv[1]))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
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
result = {}
for name, fn in cases.items():
    fn()
    times = timeit.repeat(fn, number=1, repeat=rounds)
    times.sort()
    result[name] = times[len(times) // 2]
print(json.dumps(result))
