//! Technical indicators, equal to TA-Lib's on the same input.
//!
//! Each function takes whole series and returns outputs of the same length, `NaN`
//! during the warm-up (TA-Lib's lookback), so index `i` of an output belongs to candle
//! `i`. Every function follows TA-Lib's algorithms — its lookbacks, its seeding (EMA
//! seeded with the SMA of its first `period` inputs), Wilder smoothing for RSI and ATR,
//! running sums for SMA and the Bollinger variance, MACD's fast EMA seeded at the slow
//! EMA's first index, its zero tests — and agrees with TA-Lib 0.8's values to 1e-10
//! relative (`tests/golden/indicators.json`, made by TA-Lib itself with
//! `scripts/golden/generate_indicators.py`). Running sums and smoothings go through
//! [`recurrence`], four candles per dependency link, which is where the speed comes
//! from; the last bits may differ from TA-Lib's, never more.
//!
//! The functions are pure, single-pass, and allocate only their outputs; callers compute
//! each distinct (series, indicator, parameters) once per batch.

mod atr;
mod bollinger;
mod macd;
mod moving_average;
mod recurrence;
mod rsi;
mod spec;
mod stochastic;

pub use atr::{atr, true_range};
pub use bollinger::{Bollinger, bbands};
pub use macd::{Macd, macd};
pub use moving_average::{ema, sma, wma};
pub use rsi::rsi;
pub use spec::{IndicatorSpec, IndicatorValues, LastTwo, Output, Scale};
pub use stochastic::{Stochastic, stoch};

/// TA-Lib's zero test (`TA_IS_ZERO`, `TA_IS_ZERO_OR_NEG`) in its 0.6 sources.
pub(crate) const TA_EPSILON: f64 = 0.000_000_000_000_01;

/// A vector of `len` NaNs, the warm-up part of every output.
pub(crate) fn nan_vec(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

/// An output of `len` values under construction: its `warm_up` NaNs written, the rest
/// appended by the caller — each value written once, not filled with NaN first.
pub(crate) fn output_after(warm_up: usize, len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len);
    out.resize(warm_up, f64::NAN);
    out
}
