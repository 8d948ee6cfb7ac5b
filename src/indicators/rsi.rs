//! Relative strength index with Wilder smoothing (TA-Lib `RSI`).

use super::recurrence::recurrence_in_place;
use super::{TA_EPSILON, nan_vec};

/// RSI; first value at `period` (one change per candle, `period` changes to seed).
/// Wilder's smoothing `avg = avg·(p − 1)/p + x/p` keeps one multiply-add per candle on
/// each of the two (independent) dependency chains.
pub fn rsi(input: &[f64], period: usize) -> Vec<f64> {
    let len = input.len();
    if period < 2 || len <= period {
        return nan_vec(len);
    }
    let divisor = period as f64;
    let mut gain = 0.0;
    let mut loss = 0.0;
    for pair in input[..=period].windows(2) {
        let change = pair[1] - pair[0];
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
    }
    loss /= divisor;
    gain /= divisor;
    let mut out = nan_vec(len);
    out[period] = ratio(gain, loss);
    let keep = (divisor - 1.0) / divisor;
    let inverse = 1.0 / divisor;
    // Two smoothings in place: average gains in the output, average losses in a
    // scratch vector, then their ratio.
    let window = &mut out[period + 1..];
    let mut losses = vec![0.0; window.len()];
    for ((gain_slot, loss_slot), pair) in window
        .iter_mut()
        .zip(losses.iter_mut())
        .zip(input[period..].windows(2))
    {
        let change = pair[1] - pair[0];
        *gain_slot = change.max(0.0) * inverse;
        *loss_slot = (-change).max(0.0) * inverse;
    }
    recurrence_in_place(gain, keep, window);
    recurrence_in_place(loss, keep, &mut losses);
    for (slot, &average_loss) in window.iter_mut().zip(&losses) {
        *slot = ratio(*slot, average_loss);
    }
    out
}

/// TA-Lib (0.6+) tests the total with its scale-aware zero test against the total's own
/// magnitude; gains and losses are never negative, so only an exactly flat window is
/// zero. A long flat stretch therefore keeps the ratio of the decaying averages.
#[inline(always)]
fn ratio(gain: f64, loss: f64) -> f64 {
    let total = gain + loss;
    if total.abs() <= TA_EPSILON * total {
        0.0
    } else {
        100.0 * (gain / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gains_give_100_and_a_flat_series_gives_0() {
        let rising: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(rsi(&rising, 14)[14], 100.0);
        assert_eq!(rsi(&[5.0; 20], 14)[19], 0.0);
        assert!(rsi(&rising, 14)[13].is_nan());
    }
}
