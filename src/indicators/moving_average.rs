//! Simple, exponential and weighted moving averages (TA-Lib `SMA`, `EMA`, `WMA`).

use super::nan_vec;
use super::recurrence::linear_recurrence;

/// Simple moving average; first value at `period - 1`. A running total: each candle
/// adds the newest input and drops the one that left the window.
pub fn sma(input: &[f64], period: usize) -> Vec<f64> {
    let len = input.len();
    if period == 0 || len < period {
        return nan_vec(len);
    }
    let mut out = nan_vec(len);
    let inverse = 1.0 / period as f64;
    let first = period - 1;
    let seed: f64 = input[..period].iter().sum();
    out[first] = seed * inverse;
    let window = &mut out[period..];
    linear_recurrence(
        seed,
        1.0,
        len - period,
        |i| input[period + i] - input[i],
        |i, total| window[i] = total * inverse,
    );
    out
}

/// The EMA recursion `prev = x·k + prev·(1 − k)`: one multiply-add on the dependency
/// chain per candle.
#[inline(always)]
pub(crate) fn ema_step(previous: f64, value: f64, k: f64, keep: f64) -> f64 {
    value * k + previous * keep
}

/// The smoothing factor of an EMA of `period`.
pub(crate) fn ema_k(period: usize) -> f64 {
    2.0 / (period as f64 + 1.0)
}

/// Exponential moving average with k = 2 / (period + 1), seeded with the SMA of the
/// first `period` inputs; first value at `period - 1`.
pub fn ema(input: &[f64], period: usize) -> Vec<f64> {
    let len = input.len();
    if period == 0 || len < period {
        return nan_vec(len);
    }
    let mut out = nan_vec(len);
    let (k, keep) = (ema_k(period), 1.0 - ema_k(period));
    let seed = input[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = seed;
    let rest = &input[period..];
    let window = &mut out[period..];
    linear_recurrence(
        seed,
        keep,
        rest.len(),
        |i| rest[i] * k,
        |i, y| window[i] = y,
    );
    out
}

/// Weighted moving average, weights 1..=period (newest heaviest); first value at
/// `period - 1`.
pub fn wma(input: &[f64], period: usize) -> Vec<f64> {
    let len = input.len();
    if period == 0 || len < period {
        return nan_vec(len);
    }
    if period == 1 {
        return input.to_vec();
    }
    let inverse_divider = 1.0 / ((period * (period + 1)) >> 1) as f64;
    let weight = period as f64;
    let mut period_sum = 0.0;
    let mut period_sub = 0.0;
    for (i, &value) in input[..period - 1].iter().enumerate() {
        period_sub += value;
        period_sum += value * (i + 1) as f64;
    }
    let mut out = nan_vec(len);
    // TA-Lib's two running sums — `period_sub` (the window's total) and `period_sum`
    // (the weighted total, which loses the window's total before each new candle) —
    // advanced four candles per step: each block's changes are summed off the
    // dependency chains, which then take one addition per four candles.
    let first = period - 1;
    period_sub += input[first];
    period_sum += input[first] * weight;
    out[first] = period_sum * inverse_divider;
    let newest = &input[period..];
    let oldest = &input[..len - period];
    let outputs = &mut out[period..];
    let mut blocks = outputs
        .chunks_exact_mut(4)
        .zip(newest.chunks_exact(4).zip(oldest.chunks_exact(4)));
    for (slots, (v, t)) in &mut blocks {
        let sub = running4(
            period_sub,
            [v[0] - t[0], v[1] - t[1], v[2] - t[2], v[3] - t[3]],
        );
        let weighted = running4(
            period_sum,
            [
                v[0] * weight - period_sub,
                v[1] * weight - sub[0],
                v[2] * weight - sub[1],
                v[3] * weight - sub[2],
            ],
        );
        for (slot, total) in slots.iter_mut().zip(weighted) {
            *slot = total * inverse_divider;
        }
        period_sub = sub[3];
        period_sum = weighted[3];
    }
    let done = outputs.len() / 4 * 4;
    for (j, slot) in outputs.iter_mut().enumerate().skip(done) {
        let previous_sub = period_sub;
        period_sub += newest[j] - oldest[j];
        period_sum += newest[j] * weight - previous_sub;
        *slot = period_sum * inverse_divider;
    }
    out
}

/// `y` plus the running totals of `changes`: the next four values of a running sum,
/// with one addition on the chain from `y`.
#[inline(always)]
fn running4(y: f64, changes: [f64; 4]) -> [f64; 4] {
    let first_two = changes[0] + changes[1];
    let first_three = first_two + changes[2];
    let all = first_two + (changes[2] + changes[3]);
    [y + changes[0], y + first_two, y + first_three, y + all]
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
        assert_eq!(out[3], 4.0 * 0.5 + 2.0 * 0.5);
    }

    #[test]
    fn wma_weights_the_newest_most() {
        let out = wma(&[1.0, 2.0, 3.0, 6.0], 3);
        assert!((out[2] - (1.0 + 4.0 + 9.0) / 6.0).abs() < 1e-15);
        assert!((out[3] - (2.0 + 6.0 + 18.0) / 6.0).abs() < 1e-15);
    }

    #[test]
    fn short_series_give_only_nans() {
        assert!(sma(&[1.0], 3).iter().all(|v| v.is_nan()));
        assert!(ema(&[], 3).is_empty());
        assert!(wma(&[1.0, 2.0], 3).iter().all(|v| v.is_nan()));
    }
}
