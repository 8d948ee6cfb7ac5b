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
    let powers = Powers::new(a);
    let mut y = start;
    let mut i = 0;
    while i + 4 <= n {
        let next = powers.advance4(y, [b(i), b(i + 1), b(i + 2), b(i + 3)]);
        for (offset, value) in next.into_iter().enumerate() {
            emit(i + offset, value);
        }
        y = next[3];
        i += 4;
    }
    while i < n {
        y = a * y + b(i);
        emit(i, y);
        i += 1;
    }
    y
}

/// The powers of `a` the four-step form needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Powers {
    a: f64,
    a2: f64,
    a3: f64,
    a4: f64,
}

impl Powers {
    pub(crate) fn new(a: f64) -> Self {
        let a2 = a * a;
        Self {
            a,
            a2,
            a3: a2 * a,
            a4: a2 * a2,
        }
    }

    /// The next four values from `y` and the next four inputs; only the last one
    /// depends on `y` through a single multiply-add the caller chains on.
    #[inline(always)]
    pub(crate) fn advance4(self, y: f64, [b0, b1, b2, b3]: [f64; 4]) -> [f64; 4] {
        let Powers { a, a2, a3, a4 } = self;
        [
            a * y + b0,
            a2 * y + (a * b0 + b1),
            a3 * y + (a2 * b0 + a * b1 + b2),
            a4 * y + (a3 * b0 + a2 * b1 + (a * b2 + b3)),
        ]
    }
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
        }
    }
}
