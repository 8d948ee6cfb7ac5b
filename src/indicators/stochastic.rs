//! The slow stochastic oscillator (TA-Lib `STOCH` with SMA smoothing for %K and %D).

use super::moving_average::sma_into;
use super::nan_vec;

/// %K and %D, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Stochastic {
    pub k: Vec<f64>,
    pub d: Vec<f64>,
}

/// Fast %K over `fastk` candles (0 when the range is flat), smoothed by an SMA of
/// `slowk` into %K, and %K by an SMA of `slowd` into %D. Both outputs start at
/// `(fastk − 1) + (slowk − 1) + (slowd − 1)`, as TA-Lib aligns them.
pub fn stoch(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    fastk: usize,
    slowk: usize,
    slowd: usize,
) -> Stochastic {
    let len = high.len().min(low.len()).min(close.len());
    let mut result = Stochastic {
        k: nan_vec(len),
        d: nan_vec(len),
    };
    if fastk == 0 || slowk == 0 || slowd == 0 {
        return result;
    }
    let first_fast = fastk - 1;
    let first_output = first_fast + (slowk - 1) + (slowd - 1);
    if len <= first_output {
        return result;
    }

    // Fast %K, with TA-Lib's incremental tracking of the window's extremes.
    let mut fast = nan_vec(len);
    let mut lowest_idx: Option<usize> = None;
    let mut highest_idx: Option<usize> = None;
    let (mut lowest, mut highest, mut diff) = (0.0_f64, 0.0_f64, 0.0_f64);
    for today in first_fast..len {
        let trailing = today - first_fast;
        let value = low[today];
        if lowest_idx.is_none_or(|i| i < trailing) {
            let mut idx = trailing;
            lowest = low[idx];
            for (i, &candidate) in low.iter().enumerate().take(today + 1).skip(trailing + 1) {
                if candidate < lowest {
                    idx = i;
                    lowest = candidate;
                }
            }
            lowest_idx = Some(idx);
            diff = (highest - lowest) / 100.0;
        } else if value <= lowest {
            lowest_idx = Some(today);
            lowest = value;
            diff = (highest - lowest) / 100.0;
        }
        let value = high[today];
        if highest_idx.is_none_or(|i| i < trailing) {
            let mut idx = trailing;
            highest = high[idx];
            for (i, &candidate) in high.iter().enumerate().take(today + 1).skip(trailing + 1) {
                if candidate > highest {
                    idx = i;
                    highest = candidate;
                }
            }
            highest_idx = Some(idx);
            diff = (highest - lowest) / 100.0;
        } else if value >= highest {
            highest_idx = Some(today);
            highest = value;
            diff = (highest - lowest) / 100.0;
        }
        fast[today] = if diff != 0.0 {
            (close[today] - lowest) / diff
        } else {
            0.0
        };
    }

    let mut slow_k = nan_vec(len);
    if slowk == 1 {
        slow_k[first_fast..].copy_from_slice(&fast[first_fast..]);
    } else {
        sma_into(&fast[first_fast..], slowk, &mut slow_k[first_fast..]);
    }
    let first_k = first_fast + slowk - 1;
    let mut slow_d = nan_vec(len);
    if slowd == 1 {
        slow_d[first_k..].copy_from_slice(&slow_k[first_k..]);
    } else {
        sma_into(&slow_k[first_k..], slowd, &mut slow_d[first_k..]);
    }
    result.k[first_output..].copy_from_slice(&slow_k[first_output..]);
    result.d[first_output..].copy_from_slice(&slow_d[first_output..]);
    result
}
