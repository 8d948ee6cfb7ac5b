//! Moving average convergence/divergence (TA-Lib `MACD`).

use super::moving_average::ema_seeded_at;
use super::nan_vec;

/// The three MACD outputs, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    pub macd: Vec<f64>,
    pub signal: Vec<f64>,
    pub histogram: Vec<f64>,
}

/// MACD with TA-Lib's alignment: both EMAs start at index `slow - 1`, the fast one
/// seeded with the SMA of the `fast` inputs ending there (not of the first `fast`
/// inputs); the signal EMA runs on the MACD line from that index. All three outputs
/// start at `slow - 1 + signal - 1`. Requires `2 <= fast < slow`, `signal >= 1`.
pub fn macd(input: &[f64], fast: usize, slow: usize, signal: usize) -> Macd {
    let len = input.len();
    let mut result = Macd {
        macd: nan_vec(len),
        signal: nan_vec(len),
        histogram: nan_vec(len),
    };
    if fast == 0 || slow <= fast || signal == 0 {
        return result;
    }
    let first_line = slow - 1;
    let first_output = first_line + signal - 1;
    if len <= first_output {
        return result;
    }
    let mut fast_ema = nan_vec(len);
    let mut slow_ema = nan_vec(len);
    ema_seeded_at(input, fast, first_line, &mut fast_ema);
    ema_seeded_at(input, slow, first_line, &mut slow_ema);
    let mut line = nan_vec(len);
    for i in first_line..len {
        line[i] = fast_ema[i] - slow_ema[i];
    }
    let mut signal_line = nan_vec(len);
    ema_seeded_at(&line, signal, first_output, &mut signal_line);
    for i in first_output..len {
        result.macd[i] = line[i];
        result.signal[i] = signal_line[i];
        result.histogram[i] = line[i] - signal_line[i];
    }
    result
}
