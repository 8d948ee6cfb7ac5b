//! Bollinger bands over an SMA with the population standard deviation (TA-Lib `BBANDS`,
//! MA type SMA).

use super::recurrence::recurrence_in_place;
use super::{TA_EPSILON, nan_vec};

/// The three bands, aligned with the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// Bands `middle ± stddev × σ`; first values at `period - 1`. σ is TA-Lib's: the mean of
/// squares (running sum) minus the squared mean, 0 when below its epsilon.
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
    let inverse = 1.0 / period as f64;
    let first = period - 1;
    // Running sums of values (in `middle`) and of squares (in `upper`), each one
    // recurrence over the differences entering and leaving the window.
    let seed_sum: f64 = input[..period].iter().sum();
    let seed_squares: f64 = input[..period].iter().map(|v| v * v).sum();
    bands.middle[first] = seed_sum;
    bands.upper[first] = seed_squares;
    let entering = &input[period..];
    for (((sum, squares), &newest), &oldest) in bands.middle[period..]
        .iter_mut()
        .zip(bands.upper[period..].iter_mut())
        .zip(entering)
        .zip(input)
    {
        *sum = newest - oldest;
        *squares = newest * newest - oldest * oldest;
    }
    recurrence_in_place(seed_sum, 1.0, &mut bands.middle[period..]);
    recurrence_in_place(seed_squares, 1.0, &mut bands.upper[period..]);
    for ((upper, middle), lower) in bands.upper[first..]
        .iter_mut()
        .zip(bands.middle[first..].iter_mut())
        .zip(bands.lower[first..].iter_mut())
    {
        let mean = *middle * inverse;
        let variance = *upper * inverse - mean * mean;
        let sigma = if variance < TA_EPSILON {
            0.0
        } else {
            variance.sqrt()
        };
        let width = stddev * sigma;
        *upper = mean + width;
        *middle = mean;
        *lower = mean - width;
    }
    bands
}
