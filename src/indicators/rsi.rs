//! Relative strength index with Wilder smoothing (TA-Lib `RSI`, classic compatibility).

use super::{TA_EPSILON, nan_vec};

/// RSI; first value at `period` (one change per candle, `period` changes to seed).
pub fn rsi(input: &[f64], period: usize) -> Vec<f64> {
    let mut out = nan_vec(input.len());
    if period < 2 || input.len() <= period {
        return out;
    }
    let divisor = period as f64;
    let keep = divisor - 1.0;
    let mut previous = input[0];
    let mut gain = 0.0;
    let mut loss = 0.0;
    for &value in &input[1..=period] {
        let change = value - previous;
        previous = value;
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
    }
    loss /= divisor;
    gain /= divisor;
    out[period] = ratio(gain, loss);
    for i in period + 1..input.len() {
        let value = input[i];
        let change = value - previous;
        previous = value;
        loss *= keep;
        gain *= keep;
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
        loss /= divisor;
        gain /= divisor;
        out[i] = ratio(gain, loss);
    }
    out
}

/// TA-Lib (0.6+) tests the total with its scale-aware zero test against the total's own
/// magnitude; gains and losses are never negative, so only an exactly flat window is
/// zero. A long flat stretch therefore keeps the ratio of the decaying averages.
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
