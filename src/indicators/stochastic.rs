//! The slow stochastic oscillator (TA-Lib `STOCH` with SMA smoothing for %K and %D).

use super::moving_average::sma;
use super::nan_vec;

/// %K and %D, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Stochastic {
    pub k: Vec<f64>,
    pub d: Vec<f64>,
}

/// Fast %K over `fastk` candles (0 when the range is flat), smoothed by an SMA of
/// `slowk` into %K, and %K by an SMA of `slowd` into %D. Both outputs start at
/// `(fastk − 1) + (slowk − 1) + (slowd − 1)`, as TA-Lib aligns them. The window's
/// lowest low and highest high come from block maxima (van Herk / Gil–Werman: three
/// comparisons per candle, no branch on the data), the smoothings are SMAs.
pub fn stoch(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    fastk: usize,
    slowk: usize,
    slowd: usize,
) -> Stochastic {
    let len = high.len().min(low.len()).min(close.len());
    let first_fast = fastk.saturating_sub(1);
    let first_output = first_fast + slowk.saturating_sub(1) + slowd.saturating_sub(1);
    let mut result = Stochastic {
        k: nan_vec(len),
        d: nan_vec(len),
    };
    if fastk == 0 || slowk == 0 || slowd == 0 || len <= first_output {
        return result;
    }
    let lowest = window_extremes(&low[..len], fastk, |a, b| if a < b { a } else { b });
    let highest = window_extremes(&high[..len], fastk, |a, b| if a > b { a } else { b });
    // Fast %K at each candle from `first_fast` (index 0 here). Both divisions are
    // TA-Lib's; the flat case is selected afterwards, so the loop has no branch.
    let fast: Vec<f64> = lowest
        .iter()
        .zip(&highest)
        .zip(&close[first_fast..len])
        .map(|((&lowest, &highest), &close)| {
            let diff = (highest - lowest) / 100.0;
            let ratio = (close - lowest) / diff;
            if diff != 0.0 { ratio } else { 0.0 }
        })
        .collect();
    // %K and %D: SMAs (NaN before their first value).
    let slow = sma(&fast, slowk);
    let signal = sma(&slow[slowk - 1..], slowd);
    let from = first_output;
    result.k[from..].copy_from_slice(&slow[slowk - 1 + slowd - 1..]);
    result.d[from..].copy_from_slice(&signal[slowd - 1..]);
    result
}

/// `pick` (min or max) over each window of `period` consecutive values, one per window
/// (the first for `values[..period]`): the windows straddle at most two blocks of
/// `period` values, so each is `pick` of a suffix of one block and a prefix of the next.
fn window_extremes(values: &[f64], period: usize, pick: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let len = values.len();
    let mut prefix = values.to_vec();
    let mut suffix = values.to_vec();
    // The running extreme stays in a register (no store-to-load round trip per value).
    for block in prefix.chunks_mut(period) {
        let mut extreme = block[0];
        for value in block.iter_mut() {
            extreme = pick(extreme, *value);
            *value = extreme;
        }
    }
    for block in suffix.chunks_mut(period) {
        let mut extreme = block[block.len() - 1];
        for value in block.iter_mut().rev() {
            extreme = pick(extreme, *value);
            *value = extreme;
        }
    }
    (0..=len - period)
        .map(|start| pick(suffix[start], prefix[start + period - 1]))
        .collect()
}
