//! Moving average convergence/divergence (TA-Lib `MACD`).

use super::moving_average::{ema_k, ema_step};
use super::recurrence::Powers;
use super::{nan_vec, output_after};

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

    // Each output written once: the warm-up NaNs, then appended values.
    let mut result = Macd {
        macd: output_after(first_output, len),
        signal: output_after(first_output, len),
        histogram: output_after(first_output, len),
    };
    result.macd.push(line);
    result.signal.push(signal_ema);
    result.histogram.push(line - signal_ema);
    let start = first_output + 1;
    let rest = &input[start..];
    let (fast_powers, slow_powers) = (Powers::new(fast_keep), Powers::new(slow_keep));
    let signal_powers = Powers::new(signal_keep);
    let (mut fast_ema, mut slow_ema, mut signal_ema) = (fast_ema, slow_ema, signal_ema);
    let mut blocks = rest.chunks_exact(4);
    for x in &mut blocks {
        let x = [x[0], x[1], x[2], x[3]];
        let f = fast_powers.advance4(fast_ema, x.map(|v| v * fast_k));
        let s = slow_powers.advance4(slow_ema, x.map(|v| v * slow_k));
        let line = [f[0] - s[0], f[1] - s[1], f[2] - s[2], f[3] - s[3]];
        let g = signal_powers.advance4(signal_ema, line.map(|v| v * signal_k));
        (fast_ema, slow_ema, signal_ema) = (f[3], s[3], g[3]);
        result.macd.extend_from_slice(&line);
        result.signal.extend_from_slice(&g);
        result.histogram.extend_from_slice(&[
            line[0] - g[0],
            line[1] - g[1],
            line[2] - g[2],
            line[3] - g[3],
        ]);
    }
    for &value in blocks.remainder() {
        fast_ema = ema_step(fast_ema, value, fast_k, fast_keep);
        slow_ema = ema_step(slow_ema, value, slow_k, slow_keep);
        let line = fast_ema - slow_ema;
        signal_ema = ema_step(signal_ema, line, signal_k, signal_keep);
        result.macd.push(line);
        result.signal.push(signal_ema);
        result.histogram.push(line - signal_ema);
    }
    result
}
