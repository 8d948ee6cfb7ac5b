//! Relative strength index with Wilder smoothing (TA-Lib `RSI`).

use super::recurrence::Powers;
use super::{TA_EPSILON, nan_vec, output_after};

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
    let mut out = output_after(period, len);
    out.push(ratio(gain, loss));
    let keep = (divisor - 1.0) / divisor;
    let inverse = 1.0 / divisor;
    // One pass: four changes split into gains and losses, both smoothings advanced four
    // steps on their own multiply-add chains (see `recurrence`), each ratio written once.
    let powers = Powers::new(keep);
    let (mut average_gain, mut average_loss) = (gain, loss);
    let changes = &input[period..];
    let steps = len - period - 1;
    for prices in changes.windows(5).step_by(4).take(steps / 4) {
        let change = |j: usize| prices[j + 1] - prices[j];
        let up = |j: usize| positive(change(j)) * inverse;
        let down = |j: usize| positive(-change(j)) * inverse;
        let gains = powers.advance4(average_gain, [up(0), up(1), up(2), up(3)]);
        let losses = powers.advance4(average_loss, [down(0), down(1), down(2), down(3)]);
        out.extend(gains.iter().zip(&losses).map(|(&g, &l)| ratio(g, l)));
        (average_gain, average_loss) = (gains[3], losses[3]);
    }
    for step in steps / 4 * 4..steps {
        let change = changes[step + 1] - changes[step];
        average_gain = keep * average_gain + positive(change) * inverse;
        average_loss = keep * average_loss + positive(-change) * inverse;
        out.push(ratio(average_gain, average_loss));
    }
    out
}

/// TA-Lib (0.6+) tests the total with its scale-aware zero test against the total's own
/// magnitude; gains and losses are never negative, so only an exactly flat window is
/// zero. A long flat stretch therefore keeps the ratio of the decaying averages.
/// `value` when above zero, else 0 (one max instruction; prices hold no NaN).
#[inline(always)]
fn positive(value: f64) -> f64 {
    if value > 0.0 { value } else { 0.0 }
}

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
