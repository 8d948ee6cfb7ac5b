#!/usr/bin/env python3
"""Generate tests/golden/indicators.json with TA-Lib itself.

    pip install ta-lib numpy      # binary wheels from PyPI; they bundle TA-Lib's C code
    python3 scripts/golden/generate_indicators.py

The Rust test (tests/it/indicators_golden.rs) reads the JSON and never calls Python.
Each case holds TA-Lib's output on the whole series (`outputs`: the functions' parity)
and, per bar, its value on the service's fixed window ending at that bar (`windowed`,
with the window's length: what every batch, replica and simulation computes).
Series are deterministic (seeded), and include flat stretches and gaps so that the
zero-division and epsilon branches of TA-Lib are exercised.
"""
import json
import math
import pathlib
import random

import numpy as np
import talib
from talib import abstract

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "indicators.json"


def candles_from_closes(closes, rng, spread):
    opens, highs, lows, volumes = [], [], [], []
    previous = closes[0]
    for close in closes:
        open_ = previous
        top = max(open_, close)
        bottom = min(open_, close)
        highs.append(top + abs(rng.gauss(0, spread)))
        lows.append(bottom - abs(rng.gauss(0, spread)))
        opens.append(open_)
        volumes.append(round(abs(rng.gauss(1000, 300)) + 1, 6))
        previous = close
    return opens, highs, lows, closes, volumes


def random_walk(seed, n, start, volatility):
    rng = random.Random(seed)
    closes, price = [], start
    for _ in range(n):
        price *= math.exp(rng.gauss(0, volatility))
        closes.append(round(price, 8))
    return candles_from_closes(closes, rng, start * volatility * 0.5)


def with_flat_stretch(seed, n):
    rng = random.Random(seed)
    closes, price = [], 100.0
    for i in range(n):
        if 60 <= i < 110:
            pass  # flat: the range is zero, gains and losses are zero
        elif i == 140:
            price *= 1.3  # a spike
        else:
            price += rng.gauss(0, 0.8)
        closes.append(round(price, 6))
    opens, highs, lows, closes, volumes = candles_from_closes(closes, rng, 0.3)
    for i in range(60, 110):  # truly flat candles
        opens[i] = highs[i] = lows[i] = closes[i]
    return opens, highs, lows, closes, volumes


def trend_with_cycles(n):
    rng = random.Random(7)
    closes = [round(2000 + 3 * i + 150 * math.sin(i / 9.0) + rng.gauss(0, 5), 4) for i in range(n)]
    return candles_from_closes(closes, rng, 4.0)


SERIES = {
    "btc_random_walk_600": random_walk(1, 600, 60000.0, 0.004),
    "alt_random_walk_300": random_walk(2, 300, 0.5, 0.02),
    "flat_stretch_220": with_flat_stretch(3, 220),
    "trend_cycles_400": trend_with_cycles(400),
}

CASES = [
    ("sma", {"period": 5}), ("sma", {"period": 20}), ("sma", {"period": 200}),
    ("ema", {"period": 9}), ("ema", {"period": 20}), ("ema", {"period": 50}), ("ema", {"period": 200}),
    ("wma", {"period": 10}), ("wma", {"period": 30}),
    ("rsi", {"period": 2}), ("rsi", {"period": 14}), ("rsi", {"period": 30}),
    ("macd", {"fast": 12, "slow": 26, "signal": 9}), ("macd", {"fast": 5, "slow": 35, "signal": 5}),
    ("bbands", {"period": 20, "stddev": 2.0}), ("bbands", {"period": 10, "stddev": 1.5}),
    ("bbands", {"period": 20, "stddev": 1.0}),
    ("atr", {"period": 1}), ("atr", {"period": 14}), ("atr", {"period": 30}),
    ("stoch", {"period": 14, "k_smoothing": 3, "d_period": 3}),
    ("stoch", {"period": 5, "k_smoothing": 3, "d_period": 3}),
    ("stoch", {"period": 5, "k_smoothing": 1, "d_period": 1}),
    ("volume_sma", {"period": 20}),
]


def compute(name, params, o, h, l, c, v):
    if name == "sma":
        return {"value": talib.SMA(c, timeperiod=params["period"])}
    if name == "ema":
        return {"value": talib.EMA(c, timeperiod=params["period"])}
    if name == "wma":
        return {"value": talib.WMA(c, timeperiod=params["period"])}
    if name == "rsi":
        return {"value": talib.RSI(c, timeperiod=params["period"])}
    if name == "macd":
        macd, signal, hist = talib.MACD(c, fastperiod=params["fast"], slowperiod=params["slow"],
                                        signalperiod=params["signal"])
        return {"macd": macd, "signal": signal, "histogram": hist}
    if name == "bbands":
        upper, middle, lower = talib.BBANDS(c, timeperiod=params["period"], nbdevup=params["stddev"],
                                            nbdevdn=params["stddev"], matype=0)
        return {"upper": upper, "middle": middle, "lower": lower}
    if name == "atr":
        return {"value": talib.ATR(h, l, c, timeperiod=params["period"])}
    if name == "stoch":
        k, d = talib.STOCH(h, l, c, fastk_period=params["period"], slowk_period=params["k_smoothing"],
                           slowk_matype=0, slowd_period=params["d_period"], slowd_matype=0)
        return {"k": k, "d": d}
    if name == "volume_sma":
        return {"value": talib.SMA(v, timeperiod=params["period"])}
    raise ValueError(name)


LOOKBACK_FUNCTION = {
    "sma": ("SMA", lambda p: {"timeperiod": p["period"]}),
    "ema": ("EMA", lambda p: {"timeperiod": p["period"]}),
    "wma": ("WMA", lambda p: {"timeperiod": p["period"]}),
    "rsi": ("RSI", lambda p: {"timeperiod": p["period"]}),
    "macd": ("MACD", lambda p: {"fastperiod": p["fast"], "slowperiod": p["slow"],
                                "signalperiod": p["signal"]}),
    "bbands": ("BBANDS", lambda p: {"timeperiod": p["period"]}),
    "atr": ("ATR", lambda p: {"timeperiod": p["period"]}),
    "stoch": ("STOCH", lambda p: {"fastk_period": p["period"], "slowk_period": p["k_smoothing"],
                                  "slowd_period": p["d_period"]}),
    "volume_sma": ("SMA", lambda p: {"timeperiod": p["period"]}),
}
RECURSIVE = {"ema", "rsi", "atr", "macd"}


def window(name, params):
    """The service's fixed window for this indicator (IndicatorSpec::candles_needed):
    TA-Lib's lookback, two values for crosses, and for recursive indicators a
    convergence tail of max(4 x lookback, 100); at most 1000. The Rust test checks
    that both agree."""
    function, arguments = LOOKBACK_FUNCTION[name]
    lookback = abstract.Function(function, **arguments(params)).lookback
    tail = max(4 * lookback, 100) if name in RECURSIVE else 0
    return min(lookback + 2 + tail, 1000)


def windowed(name, params, arrays, size):
    """Each bar's value as the service computes it: on the `size` candles ending at
    that bar (all of them when fewer exist)."""
    outputs = None
    for i in range(len(arrays[0])):
        start = max(0, i + 1 - size)
        values = compute(name, params, *(a[start:i + 1] for a in arrays))
        if outputs is None:
            outputs = {key: [] for key in values}
        for key, series in values.items():
            outputs[key].append(series[-1])
    return outputs


def as_list(array):
    return [None if math.isnan(x) else float(x) for x in array]


def main():
    document = {
        "generator": "scripts/golden/generate_indicators.py",
        "talib_python": talib.__version__,
        "talib_c": talib.__ta_version__.decode(),
        "series": [],
    }
    for name, (o, h, l, c, v) in SERIES.items():
        arrays = [np.array(x, dtype=np.float64) for x in (o, h, l, c, v)]
        entry = {"name": name, "open": o, "high": h, "low": l, "close": c, "volume": v, "cases": []}
        for indicator, params in CASES:
            outputs = compute(indicator, params, *arrays)
            size = window(indicator, params)
            entry["cases"].append({
                "indicator": indicator,
                "params": params,
                "outputs": {key: as_list(values) for key, values in outputs.items()},
                "window": size,
                "windowed": {key: as_list(values)
                             for key, values in windowed(indicator, params, arrays, size).items()},
            })
        document["series"].append(entry)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
