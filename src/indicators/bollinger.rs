//! Bollinger bands over an SMA with the population standard deviation (TA-Lib `BBANDS`,
//! MA type SMA).

use super::{TA_EPSILON, nan_vec};

/// The three bands, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// Bands `middle ± stddev × σ`; first values at `period - 1`. The middle band is
/// TA-Lib's SMA (a running total, incremented by the newest value, divided, then
/// decremented by the oldest); σ² is the mean squared deviation of the window from that
/// middle, summed over the window (two passes, four partial sums), and 0 below TA-Lib's
/// epsilon. The
/// running-sums shortcut (mean of squares minus squared mean) is not used: on a flat
/// window it subtracts two nearly equal numbers and, through the square root, widens
/// the bands by about 1e-6 × price where TA-Lib's are exactly flat.
pub fn bbands(input: &[f64], period: usize, stddev: f64) -> Bollinger {
    let len = input.len();
    let mut bands = Bollinger {
        upper: nan_vec(len),
        middle: nan_vec(len),
        lower: nan_vec(len),
    };
    if period < 2 || len < period {
        return bands;
    }
    let divisor = period as f64;
    let first = period - 1;
    let mut total = 0.0;
    for &value in &input[..first] {
        total += value;
    }
    let outputs = bands.upper[first..]
        .iter_mut()
        .zip(bands.middle[first..].iter_mut())
        .zip(bands.lower[first..].iter_mut());
    for (((upper, middle), lower), window) in outputs.zip(input.windows(period)) {
        total += window[first];
        let mean = total / divisor;
        total -= window[0];
        let variance = squared_deviations(window, mean) / divisor;
        let sigma = if variance < TA_EPSILON {
            0.0
        } else {
            variance.sqrt()
        };
        let width = sigma * stddev;
        *upper = mean + width;
        *middle = mean;
        *lower = mean - width;
    }
    bands
}

/// Σ (x − mean)² over `window`, in four interleaved partial sums (four independent
/// dependency chains instead of one).
#[inline(always)]
fn squared_deviations(window: &[f64], mean: f64) -> f64 {
    let mut partial = [0.0; 4];
    let mut chunks = window.chunks_exact(4);
    for chunk in &mut chunks {
        for (sum, &value) in partial.iter_mut().zip(chunk) {
            let deviation = value - mean;
            *sum += deviation * deviation;
        }
    }
    for (sum, &value) in partial.iter_mut().zip(chunks.remainder()) {
        let deviation = value - mean;
        *sum += deviation * deviation;
    }
    (partial[0] + partial[1]) + (partial[2] + partial[3])
}
