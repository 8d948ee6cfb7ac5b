//! True range and average true range with Wilder smoothing (TA-Lib `TRANGE`, `ATR`).

use super::nan_vec;

/// True range; first value at 1 (it needs the previous close).
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Vec<f64> {
    let len = high.len().min(low.len()).min(close.len());
    let mut out = nan_vec(len);
    for i in 1..len {
        out[i] = range_at(high, low, close, i);
    }
    out
}

fn range_at(high: &[f64], low: &[f64], close: &[f64], i: usize) -> f64 {
    let previous_close = close[i - 1];
    let mut greatest = high[i] - low[i];
    let from_high = (previous_close - high[i]).abs();
    if from_high > greatest {
        greatest = from_high;
    }
    let from_low = (previous_close - low[i]).abs();
    if from_low > greatest {
        greatest = from_low;
    }
    greatest
}

/// ATR; first value at `period`: the SMA of the true ranges 1..=period, then
/// `(prev × (period − 1) + tr) / period`. With `period == 1` it is the true range.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let len = high.len().min(low.len()).min(close.len());
    if period == 1 {
        return true_range(&high[..len], &low[..len], &close[..len]);
    }
    let mut out = nan_vec(len);
    if period == 0 || len <= period {
        return out;
    }
    let divisor = period as f64;
    let mut total = 0.0;
    for i in 1..=period {
        total += range_at(high, low, close, i);
    }
    let mut previous = total / divisor;
    out[period] = previous;
    let keep = divisor - 1.0;
    for i in period + 1..len {
        previous *= keep;
        previous += range_at(high, low, close, i);
        previous /= divisor;
        out[i] = previous;
    }
    out
}
