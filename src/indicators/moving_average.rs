//! Simple, exponential and weighted moving averages (TA-Lib `SMA`, `EMA`, `WMA`).

use super::nan_vec;

/// Simple moving average; first value at `period - 1`.
pub fn sma(input: &[f64], period: usize) -> Vec<f64> {
    let mut out = nan_vec(input.len());
    sma_into(input, period, &mut out);
    out
}

/// SMA written into `out` (same length as `input`); indices before the first value are
/// left untouched. TA-Lib's running sum: add the newest, emit, subtract the oldest.
pub(crate) fn sma_into(input: &[f64], period: usize, out: &mut [f64]) {
    if period == 0 || input.len() < period {
        return;
    }
    let divisor = period as f64;
    let mut total = 0.0;
    for &value in &input[..period - 1] {
        total += value;
    }
    let mut trailing = 0;
    for i in period - 1..input.len() {
        total += input[i];
        let current = total;
        total -= input[trailing];
        trailing += 1;
        out[i] = current / divisor;
    }
}

/// Exponential moving average with k = 2 / (period + 1), seeded with the SMA of the
/// first `period` inputs; first value at `period - 1`.
pub fn ema(input: &[f64], period: usize) -> Vec<f64> {
    let mut out = nan_vec(input.len());
    if period > 0 && input.len() >= period {
        ema_seeded_at(input, period, period - 1, &mut out);
    }
    out
}

/// TA-Lib's `TA_INT_EMA` started at `first`: the seed is the SMA of the `period` inputs
/// ending at `first`, then `prev = (x - prev) * k + prev`. Requires
/// `period - 1 <= first < input.len()`.
pub(crate) fn ema_seeded_at(input: &[f64], period: usize, first: usize, out: &mut [f64]) {
    let k = 2.0 / (period as f64 + 1.0);
    let mut total = 0.0;
    for &value in &input[first + 1 - period..=first] {
        total += value;
    }
    let mut previous = total / period as f64;
    out[first] = previous;
    for i in first + 1..input.len() {
        previous = ((input[i] - previous) * k) + previous;
        out[i] = previous;
    }
}

/// Weighted moving average, weights 1..=period (newest heaviest); first value at
/// `period - 1`.
pub fn wma(input: &[f64], period: usize) -> Vec<f64> {
    let mut out = nan_vec(input.len());
    if period == 0 || input.len() < period {
        return out;
    }
    if period == 1 {
        out.copy_from_slice(input);
        return out;
    }
    let divider = ((period * (period + 1)) >> 1) as f64;
    let weight = period as f64;
    let mut period_sum = 0.0;
    let mut period_sub = 0.0;
    for (i, &value) in input[..period - 1].iter().enumerate() {
        period_sub += value;
        period_sum += value * (i + 1) as f64;
    }
    let mut trailing_value = 0.0;
    let mut trailing = 0;
    for i in period - 1..input.len() {
        let value = input[i];
        period_sub += value;
        period_sub -= trailing_value;
        period_sum += value * weight;
        trailing_value = input[trailing];
        trailing += 1;
        out[i] = period_sum / divider;
        period_sum -= period_sub;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_of_a_ramp() {
        let out = sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3);
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(&out[2..], &[2.0, 3.0, 4.0]);
    }

    #[test]
    fn ema_is_seeded_with_the_sma() {
        let out = ema(&[1.0, 2.0, 3.0, 4.0], 3);
        assert_eq!(out[2], 2.0);
        assert_eq!(out[3], (4.0 - 2.0) * 0.5 + 2.0);
    }

    #[test]
    fn wma_weights_the_newest_most() {
        let out = wma(&[1.0, 2.0, 3.0, 6.0], 3);
        assert_eq!(out[2], (1.0 + 4.0 + 9.0) / 6.0);
        assert_eq!(out[3], (2.0 + 6.0 + 18.0) / 6.0);
    }

    #[test]
    fn short_series_give_only_nans() {
        assert!(sma(&[1.0], 3).iter().all(|v| v.is_nan()));
        assert!(ema(&[], 3).is_empty());
        assert!(wma(&[1.0, 2.0], 3).iter().all(|v| v.is_nan()));
    }
}
