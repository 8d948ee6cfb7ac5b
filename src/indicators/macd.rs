//! Moving average convergence/divergence (TA-Lib `MACD`).

use super::moving_average::{ema_k, ema_step};
use super::nan_vec;
use super::recurrence::recurrence_in_place;

/// The three MACD outputs, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    pub macd: Vec<f64>,
    pub signal: Vec<f64>,
    pub histogram: Vec<f64>,
}

/// MACD with TA-Lib's alignment: both EMAs start at index `slow - 1`, the fast one
/// seeded with the SMA of the `fast` inputs ending there (not of the first `fast`
/// inputs); the signal EMA, seeded with the SMA of the first `signal` MACD values, runs
/// on the MACD line from that index. All three outputs start at
/// `slow - 1 + signal - 1`. One pass, no intermediate series. Requires
/// `1 <= fast < slow`, `signal >= 1`.
pub fn macd(input: &[f64], fast: usize, slow: usize, signal: usize) -> Macd {
    let len = input.len();
    let empty = || Macd {
        macd: nan_vec(len),
        signal: nan_vec(len),
        histogram: nan_vec(len),
    };
    if fast == 0 || slow <= fast || signal == 0 {
        return empty();
    }
    let first_line = slow - 1;
    let first_output = first_line + signal - 1;
    if len <= first_output {
        return empty();
    }
    let (fast_k, fast_keep) = (ema_k(fast), 1.0 - ema_k(fast));
    let (slow_k, slow_keep) = (ema_k(slow), 1.0 - ema_k(slow));
    let (signal_k, signal_keep) = (ema_k(signal), 1.0 - ema_k(signal));
    let mut fast_ema = input[slow - fast..slow].iter().sum::<f64>() / fast as f64;
    let mut slow_ema = input[..slow].iter().sum::<f64>() / slow as f64;

    // The MACD line until the signal's seed is complete.
    let mut seed_total = fast_ema - slow_ema;
    for &value in &input[slow..=first_output] {
        fast_ema = ema_step(fast_ema, value, fast_k, fast_keep);
        slow_ema = ema_step(slow_ema, value, slow_k, slow_keep);
        seed_total += fast_ema - slow_ema;
    }
    let signal_ema = seed_total / signal as f64;
    let line = fast_ema - slow_ema;

    let mut result = empty();
    result.macd[first_output] = line;
    result.signal[first_output] = signal_ema;
    result.histogram[first_output] = line - signal_ema;
    // One recurrence per pass over contiguous outputs: the fast EMA in `macd`, the slow
    // EMA in `histogram` (as scratch), then the line, the signal over it, and the
    // histogram.
    let start = first_output + 1;
    let rest = &input[start..];
    let line = &mut result.macd[start..];
    let scratch = &mut result.histogram[start..];
    for ((f, s), &x) in line.iter_mut().zip(scratch.iter_mut()).zip(rest) {
        *f = x * fast_k;
        *s = x * slow_k;
    }
    recurrence_in_place(fast_ema, fast_keep, line);
    recurrence_in_place(slow_ema, slow_keep, scratch);
    let signal_out = &mut result.signal[start..];
    for ((l, s), signal) in line
        .iter_mut()
        .zip(scratch.iter())
        .zip(signal_out.iter_mut())
    {
        *l -= s;
        *signal = *l * signal_k;
    }
    recurrence_in_place(signal_ema, signal_keep, signal_out);
    for ((h, l), s) in scratch.iter_mut().zip(line.iter()).zip(signal_out.iter()) {
        *h = l - s;
    }
    result
}
