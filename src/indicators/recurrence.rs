//! First-order linear recurrences `y[i] = a·y[i−1] + b[i]`: the shape of every running
//! sum and exponential smoothing here (SMA's running total, EMA, Wilder's RSI and ATR).
//!
//! Computed sequentially, each value waits for the previous multiply-add to finish, and
//! that latency chain — not arithmetic — bounds throughput. Four steps are taken per
//! link instead: `y[i+4] = a⁴·y[i] + (a³b[i+1] + a²b[i+2] + a·b[i+3] + b[i+4])`, the
//! intermediate values computed from `y[i]` off the chain. With |a| ≤ 1 the rounding
//! differences from the sequential form stay at the last bits (the golden TA-Lib vectors
//! hold to 1e-10).

/// Runs the recurrence for `i` in `0..n` from `y[−1] = start`, calling `emit(i, y[i])`;
/// returns `y[n−1]` (or `start` when `n == 0`).
#[inline(always)]
pub(crate) fn linear_recurrence(
    start: f64,
    a: f64,
    n: usize,
    b: impl Fn(usize) -> f64,
    mut emit: impl FnMut(usize, f64),
) -> f64 {
    let (a2, a3) = (a * a, a * a * a);
    let a4 = a2 * a2;
    let mut y = start;
    let mut i = 0;
    while i + 4 <= n {
        let (b0, b1, b2, b3) = (b(i), b(i + 1), b(i + 2), b(i + 3));
        let y0 = a * y + b0;
        let y1 = a2 * y + (a * b0 + b1);
        let y2 = a3 * y + (a2 * b0 + a * b1 + b2);
        let y3 = a4 * y + (a3 * b0 + a2 * b1 + (a * b2 + b3));
        emit(i, y0);
        emit(i + 1, y1);
        emit(i + 2, y2);
        emit(i + 3, y3);
        y = y3;
        i += 4;
    }
    while i < n {
        y = a * y + b(i);
        emit(i, y);
        i += 1;
    }
    y
}

/// The same recurrence in place: `values[i]` holds `b[i]` and is replaced by `y[i]`.
/// Callers fill `values` in a vectorisable pass first; this loop then has no bounds
/// checks and one multiply-add per four values on its dependency chain.
#[inline(always)]
pub(crate) fn recurrence_in_place(start: f64, a: f64, values: &mut [f64]) -> f64 {
    let (a2, a3) = (a * a, a * a * a);
    let a4 = a2 * a2;
    let mut y = start;
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let (b0, b1, b2, b3) = (chunk[0], chunk[1], chunk[2], chunk[3]);
        chunk[0] = a * y + b0;
        chunk[1] = a2 * y + (a * b0 + b1);
        chunk[2] = a3 * y + (a2 * b0 + a * b1 + b2);
        y = a4 * y + (a3 * b0 + a2 * b1 + (a * b2 + b3));
        chunk[3] = y;
    }
    for value in chunks.into_remainder() {
        y = a * y + *value;
        *value = y;
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_sequential_recurrence() {
        let b: Vec<f64> = (0..103).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        for a in [1.0, 0.9, 0.5, 2.0 / 21.0] {
            let mut fast = vec![0.0; b.len()];
            let last = linear_recurrence(3.0, a, b.len(), |i| b[i], |i, y| fast[i] = y);
            let mut y = 3.0;
            for (i, &bi) in b.iter().enumerate() {
                y = a * y + bi;
                assert!(
                    (fast[i] - y).abs() <= 1e-12 * y.abs().max(1.0),
                    "a={a} i={i}"
                );
            }
            assert_eq!(last, fast[b.len() - 1]);
            let mut in_place = b.clone();
            recurrence_in_place(3.0, a, &mut in_place);
            assert_eq!(in_place, fast);
        }
    }
}
