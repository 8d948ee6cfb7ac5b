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
    let mut lowest = WindowExtreme::new(|candidate, current| candidate < current);
    let mut highest = WindowExtreme::new(|candidate, current| candidate > current);
    for (today, &close_today) in close.iter().enumerate().take(len).skip(first_fast) {
        let trailing = today - first_fast;
        let lowest = lowest.update(low, trailing, today);
        let highest = highest.update(high, trailing, today);
        let diff = (highest - lowest) / 100.0;
        let fast = if diff != 0.0 {
            (close_today - lowest) / diff
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

/// TA-Lib's tracking of one extreme of a sliding window: the extreme is rescanned only
/// when it leaves the window; otherwise a new value replaces it when at least as
/// extreme (ties go to the newer, as TA-Lib's `<=` / `>=`).
struct WindowExtreme<F> {
    index: usize,
    value: f64,
    /// Whether `candidate` is strictly more extreme than `current`.
    beats: F,
}

impl<F: Fn(f64, f64) -> bool> WindowExtreme<F> {
    fn new(beats: F) -> Self {
        Self {
            index: usize::MAX,
            value: 0.0,
            beats,
        }
    }

    /// The extreme of `values[trailing..=today]`.
    #[inline(always)]
    fn update(&mut self, values: &[f64], trailing: usize, today: usize) -> f64 {
        if self.index == usize::MAX || self.index < trailing {
            self.index = trailing;
            self.value = values[trailing];
            for (i, &candidate) in values[trailing + 1..=today].iter().enumerate() {
                if (self.beats)(candidate, self.value) {
                    self.index = trailing + 1 + i;
                    self.value = candidate;
                }
            }
        } else if !(self.beats)(self.value, values[today]) {
            self.index = today;
            self.value = values[today];
        }
        self.value
    }
}
