//! Bollinger bands over an SMA with the population standard deviation (TA-Lib `BBANDS`,
//! MA type SMA).

use super::moving_average::sma_into;
use super::{TA_EPSILON, nan_vec};

/// The three bands, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// Bands `middle ± stddev × σ`; first values at `period - 1`. σ is TA-Lib's: the mean of
/// squares (running sum) minus the squared SMA, 0 when not above its epsilon.
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
    sma_into(input, period, &mut bands.middle);
    let divisor = period as f64;
    let mut sum_of_squares = 0.0;
    for &value in &input[..period - 1] {
        sum_of_squares += value * value;
    }
    let mut trailing = 0;
    for i in period - 1..len {
        let newest = input[i];
        sum_of_squares += newest * newest;
        let mut variance = sum_of_squares / divisor;
        let oldest = input[trailing];
        sum_of_squares -= oldest * oldest;
        trailing += 1;
        let mean = bands.middle[i];
        variance -= mean * mean;
        let sigma = if variance < TA_EPSILON {
            0.0
        } else {
            variance.sqrt()
        };
        // TA-Lib skips the multiplication when the factor is exactly 1.
        let width = if stddev == 1.0 { sigma } else { stddev * sigma };
        bands.upper[i] = mean + width;
        bands.lower[i] = mean - width;
    }
    bands
}
