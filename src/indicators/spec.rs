//! A parametrised indicator (`rsi(14)`, `macd(12,26,9)`) and which of its outputs a
//! condition reads: the unit of "compute once per batch".

use serde::Serialize;

use crate::market::CandleSeries;

/// An indicator with its parameters. Periods are bounded by validation (≤ 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorSpec {
    Sma {
        period: u16,
    },
    Ema {
        period: u16,
    },
    Wma {
        period: u16,
    },
    Rsi {
        period: u16,
    },
    Macd {
        fast: u16,
        slow: u16,
        signal: u16,
    },
    /// `stddev_bits` is the multiplier's `f64::to_bits`, so the spec can be hashed.
    Bbands {
        period: u16,
        stddev_bits: u64,
    },
    Atr {
        period: u16,
    },
    Stoch {
        period: u16,
        k_smoothing: u16,
        d_period: u16,
    },
    VolumeSma {
        period: u16,
    },
}

/// One output of an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    Value,
    Macd,
    Signal,
    Histogram,
    Upper,
    Middle,
    Lower,
    K,
    D,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Value => "value",
            Output::Macd => "macd",
            Output::Signal => "signal",
            Output::Histogram => "histogram",
            Output::Upper => "upper",
            Output::Middle => "middle",
            Output::Lower => "lower",
            Output::K => "k",
            Output::D => "d",
        }
    }
}

/// What an indicator's values measure; only like can be compared with like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// In the symbol's price: moving averages and Bollinger bands.
    Price,
    /// 0–100: RSI and the stochastic.
    Oscillator,
    /// A difference of averages: MACD.
    Momentum,
    /// A price range: ATR.
    Range,
    /// Traded volume.
    Volume,
}

impl Scale {
    pub fn describe(self) -> &'static str {
        match self {
            Scale::Price => "price scale",
            Scale::Oscillator => "a 0–100 oscillator",
            Scale::Momentum => "a momentum difference",
            Scale::Range => "a price range",
            Scale::Volume => "volume",
        }
    }
}

/// The last two values of each output: what conditions compare (now and the candle
/// before, for crosses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastTwo {
    pub last: f64,
    pub previous: f64,
}

impl LastTwo {
    pub const UNKNOWN: LastTwo = LastTwo {
        last: f64::NAN,
        previous: f64::NAN,
    };

    fn of(values: &[f64]) -> Self {
        let n = values.len();
        LastTwo {
            last: if n >= 1 { values[n - 1] } else { f64::NAN },
            previous: if n >= 2 { values[n - 2] } else { f64::NAN },
        }
    }
}

/// An indicator's outputs on one series, reduced to their last two values. At most
/// three outputs, held inline: a backtest makes one per indicator and moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndicatorValues {
    outputs: [(Output, LastTwo); 3],
    len: usize,
}

impl IndicatorValues {
    pub fn get(&self, output: Output) -> LastTwo {
        self.outputs[..self.len]
            .iter()
            .find(|(o, _)| *o == output)
            .map_or(LastTwo::UNKNOWN, |(_, v)| *v)
    }

    fn of(outputs: &[(Output, Vec<f64>)]) -> Self {
        let mut values = Self {
            outputs: [(Output::Value, LastTwo::UNKNOWN); 3],
            len: outputs.len().min(3),
        };
        for (slot, (output, series)) in values.outputs.iter_mut().zip(outputs) {
            *slot = (*output, LastTwo::of(series));
        }
        values
    }
}

impl IndicatorSpec {
    pub fn name(self) -> &'static str {
        match self {
            IndicatorSpec::Sma { .. } => "sma",
            IndicatorSpec::Ema { .. } => "ema",
            IndicatorSpec::Wma { .. } => "wma",
            IndicatorSpec::Rsi { .. } => "rsi",
            IndicatorSpec::Macd { .. } => "macd",
            IndicatorSpec::Bbands { .. } => "bbands",
            IndicatorSpec::Atr { .. } => "atr",
            IndicatorSpec::Stoch { .. } => "stoch",
            IndicatorSpec::VolumeSma { .. } => "volume_sma",
        }
    }

    /// The outputs this indicator has; the first is the one used when it has only one.
    pub fn outputs(self) -> &'static [Output] {
        match self {
            IndicatorSpec::Macd { .. } => &[Output::Macd, Output::Signal, Output::Histogram],
            IndicatorSpec::Bbands { .. } => &[Output::Upper, Output::Middle, Output::Lower],
            IndicatorSpec::Stoch { .. } => &[Output::K, Output::D],
            _ => &[Output::Value],
        }
    }

    pub fn scale(self) -> Scale {
        match self {
            IndicatorSpec::Sma { .. }
            | IndicatorSpec::Ema { .. }
            | IndicatorSpec::Wma { .. }
            | IndicatorSpec::Bbands { .. } => Scale::Price,
            IndicatorSpec::Rsi { .. } | IndicatorSpec::Stoch { .. } => Scale::Oscillator,
            IndicatorSpec::Macd { .. } => Scale::Momentum,
            IndicatorSpec::Atr { .. } => Scale::Range,
            IndicatorSpec::VolumeSma { .. } => Scale::Volume,
        }
    }

    /// TA-Lib's lookback: the index of the first value.
    pub fn lookback(self) -> usize {
        match self {
            IndicatorSpec::Sma { period }
            | IndicatorSpec::Ema { period }
            | IndicatorSpec::Wma { period }
            | IndicatorSpec::VolumeSma { period }
            | IndicatorSpec::Bbands { period, .. } => usize::from(period) - 1,
            IndicatorSpec::Rsi { period } | IndicatorSpec::Atr { period } => usize::from(period),
            IndicatorSpec::Macd { slow, signal, .. } => {
                usize::from(slow) - 1 + usize::from(signal) - 1
            }
            IndicatorSpec::Stoch {
                period,
                k_smoothing,
                d_period,
            } => usize::from(period) + usize::from(k_smoothing) + usize::from(d_period) - 3,
        }
    }

    /// Whether the indicator is recursive (its value depends on all history, so more
    /// candles than the lookback make it converge to what charting sites show).
    fn is_recursive(self) -> bool {
        matches!(
            self,
            IndicatorSpec::Ema { .. }
                | IndicatorSpec::Rsi { .. }
                | IndicatorSpec::Atr { .. }
                | IndicatorSpec::Macd { .. }
        )
    }

    /// Closed candles to fetch: the lookback, two values for crosses, and for
    /// recursive indicators a convergence tail; at most 1000 (one Binance request).
    pub fn candles_needed(self) -> usize {
        let base = self.lookback() + 2;
        let tail = if self.is_recursive() {
            (4 * self.lookback()).max(100)
        } else {
            0
        };
        (base + tail).min(1000)
    }

    /// Computes every output on the last [`IndicatorSpec::candles_needed`] candles of
    /// `series` (its fixed window: the value for a bar depends only on the window's
    /// candles ending at that bar, however much history the cache holds, so every
    /// replica, batch and simulation computes the same number) and keeps the last two
    /// values of each.
    pub fn compute(self, series: &CandleSeries) -> IndicatorValues {
        self.compute_window(series, series.len())
    }

    /// [`IndicatorSpec::compute`] as of candle `end - 1`: on the last
    /// [`IndicatorSpec::candles_needed`] of the first `end` candles — what a batch
    /// would have computed when that candle was the last closed one (the backtest's
    /// walk through a long series).
    pub fn compute_window(self, series: &CandleSeries, end: usize) -> IndicatorValues {
        use crate::indicators as ta;
        let end = end.min(series.len());
        let from = end.saturating_sub(self.candles_needed());
        let c = &series.close[from..end];
        let (h, l) = (&series.high[from..end], &series.low[from..end]);
        let volume = &series.volume[from..end];
        let outputs = match self {
            IndicatorSpec::Sma { period } => vec![(Output::Value, ta::sma(c, period.into()))],
            IndicatorSpec::Ema { period } => vec![(Output::Value, ta::ema(c, period.into()))],
            IndicatorSpec::Wma { period } => vec![(Output::Value, ta::wma(c, period.into()))],
            IndicatorSpec::Rsi { period } => vec![(Output::Value, ta::rsi(c, period.into()))],
            IndicatorSpec::VolumeSma { period } => {
                vec![(Output::Value, ta::sma(volume, period.into()))]
            }
            IndicatorSpec::Atr { period } => {
                vec![(Output::Value, ta::atr(h, l, c, period.into()))]
            }
            IndicatorSpec::Macd { fast, slow, signal } => {
                let m = ta::macd(c, fast.into(), slow.into(), signal.into());
                vec![
                    (Output::Macd, m.macd),
                    (Output::Signal, m.signal),
                    (Output::Histogram, m.histogram),
                ]
            }
            IndicatorSpec::Bbands {
                period,
                stddev_bits,
            } => {
                let b = ta::bbands(c, period.into(), f64::from_bits(stddev_bits));
                vec![
                    (Output::Upper, b.upper),
                    (Output::Middle, b.middle),
                    (Output::Lower, b.lower),
                ]
            }
            IndicatorSpec::Stoch {
                period,
                k_smoothing,
                d_period,
            } => {
                let s = ta::stoch(h, l, c, period.into(), k_smoothing.into(), d_period.into());
                vec![(Output::K, s.k), (Output::D, s.d)]
            }
        };
        IndicatorValues::of(&outputs)
    }
}

impl std::fmt::Display for IndicatorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            IndicatorSpec::Macd { fast, slow, signal } => {
                write!(f, "macd({fast},{slow},{signal})")
            }
            IndicatorSpec::Bbands {
                period,
                stddev_bits,
            } => write!(f, "bbands({period},{})", f64::from_bits(stddev_bits)),
            IndicatorSpec::Stoch {
                period,
                k_smoothing,
                d_period,
            } => write!(f, "stoch({period},{k_smoothing},{d_period})"),
            IndicatorSpec::Sma { period }
            | IndicatorSpec::Ema { period }
            | IndicatorSpec::Wma { period }
            | IndicatorSpec::Rsi { period }
            | IndicatorSpec::Atr { period }
            | IndicatorSpec::VolumeSma { period } => write!(f, "{}({period})", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookbacks_match_talib() {
        assert_eq!(IndicatorSpec::Sma { period: 20 }.lookback(), 19);
        assert_eq!(IndicatorSpec::Rsi { period: 14 }.lookback(), 14);
        let macd = IndicatorSpec::Macd {
            fast: 12,
            slow: 26,
            signal: 9,
        };
        assert_eq!(macd.lookback(), 33);
        let stoch = IndicatorSpec::Stoch {
            period: 14,
            k_smoothing: 3,
            d_period: 3,
        };
        assert_eq!(stoch.lookback(), 17);
        assert_eq!(IndicatorSpec::Ema { period: 200 }.candles_needed(), 997);
        assert_eq!(IndicatorSpec::Ema { period: 300 }.candles_needed(), 1000);
        assert_eq!(IndicatorSpec::Sma { period: 20 }.candles_needed(), 21);
    }

    #[test]
    fn compute_keeps_the_last_two_values() {
        let mut series = CandleSeries::default();
        for i in 0..5 {
            let x = f64::from(i);
            series.push(i64::from(i) * 60_000, [x, x, x, x, 1.0]);
        }
        let values = IndicatorSpec::Sma { period: 3 }.compute(&series);
        assert_eq!(
            values.get(Output::Value),
            LastTwo {
                last: 3.0,
                previous: 2.0
            }
        );
        assert!(values.get(Output::Upper).last.is_nan());
        // As of an earlier candle: the same as computing on the series cut there.
        let mut cut = CandleSeries::default();
        for i in 0..3 {
            let x = f64::from(i);
            cut.push(i64::from(i) * 60_000, [x, x, x, x, 1.0]);
        }
        let spec = IndicatorSpec::Sma { period: 3 };
        // (Debug forms: the warm-up's NaNs equal nothing, themselves included.)
        let shown = |v: IndicatorValues| format!("{v:?}");
        assert_eq!(
            shown(spec.compute_window(&series, 3)),
            shown(spec.compute(&cut))
        );
        assert_eq!(spec.compute_window(&series, 3).get(Output::Value).last, 1.0);
        assert_eq!(shown(spec.compute_window(&series, 99)), shown(values));
    }
}
