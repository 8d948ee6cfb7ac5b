//! True range and average true range with Wilder smoothing (TA-Lib `TRANGE`, `ATR`).

use super::nan_vec;
use super::recurrence::recurrence_in_place;

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
    let mut out = nan_vec(len);
    out[period] = previous;
    let keep = (divisor - 1.0) / divisor;
    let inverse = 1.0 / divisor;
    // True ranges in a vectorisable pass, then the smoothing in place.
    let window = &mut out[period + 1..];
    let bars = high[period + 1..len]
        .iter()
        .zip(&low[period + 1..len])
        .zip(&close[period..len - 1]);
    for (slot, ((&h, &l), &previous_close)) in window.iter_mut().zip(bars) {
        let range = (h - l)
            .max((previous_close - h).abs())
            .max((previous_close - l).abs());
        *slot = range * inverse;
    }
    recurrence_in_place(previous, keep, window);
    out
}
