//! True range and average true range with Wilder smoothing (TA-Lib `TRANGE`, `ATR`).

use super::recurrence::Powers;
use super::{nan_vec, output_after};

/// True range; first value at 1 (it needs the previous close).
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Vec<f64> {
    let len = high.len().min(low.len()).min(close.len());
    let mut out = nan_vec(len);
    for (i, slot) in out.iter_mut().enumerate().skip(1) {
        *slot = range_at(high, low, close, i);
    }
    out
}

#[inline(always)]
fn range_at(high: &[f64], low: &[f64], close: &[f64], i: usize) -> f64 {
    let previous_close = close[i - 1];
    (high[i] - low[i])
        .max((previous_close - high[i]).abs())
        .max((previous_close - low[i]).abs())
}

/// ATR; first value at `period`: the mean of the true ranges 1..=period, then Wilder's
/// `atr·(p − 1)/p + tr/p`. With `period == 1` it is the true range.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let len = high.len().min(low.len()).min(close.len());
    if period == 1 {
        return true_range(&high[..len], &low[..len], &close[..len]);
    }
    if period == 0 || len <= period {
        return nan_vec(len);
    }
    let divisor = period as f64;
    let mut total = 0.0;
    for i in 1..=period {
        total += range_at(high, low, close, i);
    }
    let previous = total / divisor;
    let mut out = output_after(period, len);
    out.push(previous);
    let keep = (divisor - 1.0) / divisor;
    let inverse = 1.0 / divisor;
    // One pass: four true ranges, then four smoothing steps chained on one
    // multiply-add (see `recurrence`), each value written once.
    let powers = Powers::new(keep);
    let mut smoothed = previous;
    let (highs, lows) = (&high[period + 1..len], &low[period + 1..len]);
    let closes = &close[period..len - 1];
    let mut bars = highs
        .chunks_exact(4)
        .zip(lows.chunks_exact(4))
        .zip(closes.chunks_exact(4));
    for ((h, l), c) in &mut bars {
        let range = |j: usize| bar_range(h[j], l[j], c[j]) * inverse;
        let next = powers.advance4(smoothed, [range(0), range(1), range(2), range(3)]);
        out.extend_from_slice(&next);
        smoothed = next[3];
    }
    let done = highs.len() / 4 * 4;
    for at in done..highs.len() {
        smoothed = keep * smoothed + bar_range(highs[at], lows[at], closes[at]) * inverse;
        out.push(smoothed);
    }
    out
}

/// The true range of a bar from its high, low and the previous close: comparisons
/// compiled to single max instructions (candles hold no NaN).
#[inline(always)]
fn bar_range(high: f64, low: f64, previous_close: f64) -> f64 {
    let greater = |a: f64, b: f64| if a > b { a } else { b };
    greater(
        greater(high - low, (previous_close - high).abs()),
        (previous_close - low).abs(),
    )
}
