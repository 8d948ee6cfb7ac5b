//! The slow stochastic oscillator (TA-Lib `STOCH` with SMA smoothing for %K and %D).

use super::nan_vec;

/// %K and %D, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Stochastic {
    pub k: Vec<f64>,
    pub d: Vec<f64>,
}

/// Running mean of the last `period` values pushed.
struct RunningMean {
    window: Vec<f64>,
    next: usize,
    filled: usize,
    total: f64,
    inverse: f64,
}

impl RunningMean {
    fn new(period: usize) -> Self {
        Self {
            window: vec![0.0; period],
            next: 0,
            filled: 0,
            total: 0.0,
            inverse: 1.0 / period as f64,
        }
    }

    /// Adds a value; the mean of the last `period` values once there are that many.
    #[inline(always)]
    fn push(&mut self, value: f64) -> Option<f64> {
        self.total += value;
        self.window[self.next] = value;
        self.next += 1;
        if self.next == self.window.len() {
            self.next = 0;
        }
        if self.filled < self.window.len() {
            self.filled += 1;
        }
        if self.filled < self.window.len() {
            return None;
        }
        let mean = self.total * self.inverse;
        // The slot written next holds the oldest value: it leaves the window now.
        self.total -= self.window[self.next];
        Some(mean)
    }
}

/// Fast %K over `fastk` candles (0 when the range is flat), smoothed by an SMA of
/// `slowk` into %K, and %K by an SMA of `slowd` into %D. Both outputs start at
/// `(fastk − 1) + (slowk − 1) + (slowd − 1)`, as TA-Lib aligns them. One pass.
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
    let mut smooth_k = RunningMean::new(slowk);
    let mut smooth_d = RunningMean::new(slowd);
    // TA-Lib's tracking of the window's extremes: an extreme is rescanned only when it
    // leaves the window.
    let (mut lowest_idx, mut highest_idx) = (usize::MAX, usize::MAX);
    let (mut lowest, mut highest) = (0.0_f64, 0.0_f64);
    for today in first_fast..len {
        let trailing = today - first_fast;
        if lowest_idx == usize::MAX || lowest_idx < trailing {
            lowest_idx = trailing;
            lowest = low[trailing];
            for (i, &candidate) in low[trailing + 1..=today].iter().enumerate() {
                if candidate < lowest {
                    lowest_idx = trailing + 1 + i;
                    lowest = candidate;
                }
            }
        } else if low[today] <= lowest {
            lowest_idx = today;
            lowest = low[today];
        }
        if highest_idx == usize::MAX || highest_idx < trailing {
            highest_idx = trailing;
            highest = high[trailing];
            for (i, &candidate) in high[trailing + 1..=today].iter().enumerate() {
                if candidate > highest {
                    highest_idx = trailing + 1 + i;
                    highest = candidate;
                }
            }
        } else if high[today] >= highest {
            highest_idx = today;
            highest = high[today];
        }
        let diff = (highest - lowest) / 100.0;
        let fast = if diff != 0.0 {
            (close[today] - lowest) / diff
        } else {
            0.0
        };
        if let Some(k) = smooth_k.push(fast)
            && let Some(d) = smooth_d.push(k)
        {
            result.k[today] = k;
            result.d[today] = d;
        }
    }
    result
}
