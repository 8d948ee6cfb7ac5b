//! Price paths: deterministic generated prices (seeded per symbol) and scripted paths
//! read from a file, so a test can say "BTCUSDT crosses 65000 at the third candle".

use std::f64::consts::TAU;

use serde::Deserialize;

/// How one instrument's price moves through simulated time.
#[derive(Debug, Clone, PartialEq)]
pub enum PricePath {
    /// A smooth, deterministic wander around `base`.
    Generated { base: f64, seed: u64 },
    /// `points[i]` is the price at `start_ms + i * step_ms`, linear in between; flat
    /// before the first and after the last point.
    Scripted {
        start_ms: i64,
        step_ms: i64,
        points: Vec<f64>,
    },
}

/// One candle as the simulator computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub trades: u64,
}

/// A scripted path as written in a script file.
#[derive(Debug, Clone, Deserialize)]
pub struct ScriptedPath {
    /// `binance`, `coingecko` or `uniswap`.
    pub source: String,
    /// Binance symbol, CoinGecko id or pool address.
    pub symbol: String,
    pub start_ms: i64,
    pub step_ms: i64,
    pub points: Vec<f64>,
}

/// A script file: `{"paths": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Script {
    pub paths: Vec<ScriptedPath>,
}

/// A well-mixed 64-bit hash (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A number in [0, 1) from a hash.
pub fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

/// A stable seed for a name.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl PricePath {
    pub fn generated(name: &str, base: f64) -> Self {
        PricePath::Generated {
            base,
            seed: seed_of(name),
        }
    }

    /// The price at simulated time `t_ms`.
    pub fn price_at(&self, t_ms: i64) -> f64 {
        match self {
            PricePath::Generated { base, seed } => {
                let x = t_ms as f64 / 1000.0;
                let phase = |k: u64| unit(seed ^ k) * TAU;
                let wave = 0.03 * (TAU * x / 21_600.0 + phase(1)).sin()
                    + 0.012 * (TAU * x / 2_820.0 + phase(2)).sin()
                    + 0.004 * (TAU * x / 420.0 + phase(3)).sin()
                    + 0.0015 * value_noise(*seed, x / 15.0);
                base * (1.0 + wave)
            }
            PricePath::Scripted {
                start_ms,
                step_ms,
                points,
            } => {
                let last = points.len().saturating_sub(1);
                if points.is_empty() {
                    return f64::NAN;
                }
                if t_ms <= *start_ms {
                    return points[0];
                }
                let offset = (t_ms - start_ms) as f64 / *step_ms as f64;
                let i = offset.floor() as usize;
                if i >= last {
                    return points[last];
                }
                let f = offset - i as f64;
                points[i] + (points[i + 1] - points[i]) * f
            }
        }
    }

    /// The candle opening at `open_time`, as of simulated time `now_ms` (a forming
    /// candle ends at `now_ms`).
    pub fn candle(&self, open_time: i64, interval_ms: i64, now_ms: i64) -> Candle {
        let end = (open_time + interval_ms).min(now_ms).max(open_time);
        let mut high = f64::MIN;
        let mut low = f64::MAX;
        let mut take = |p: f64| {
            high = high.max(p);
            low = low.min(p);
        };
        for k in 0..=16 {
            take(self.price_at(open_time + (end - open_time) * k / 16));
        }
        if let PricePath::Scripted {
            start_ms, step_ms, ..
        } = self
        {
            let first = ((open_time - start_ms) as f64 / *step_ms as f64)
                .ceil()
                .max(0.0) as i64;
            let mut t = start_ms + first * step_ms;
            while t <= end {
                take(self.price_at(t));
                t += step_ms;
            }
        }
        let open = self.price_at(open_time);
        let close = self.price_at(end);
        let seed = match self {
            PricePath::Generated { seed, .. } => *seed,
            PricePath::Scripted { start_ms, .. } => *start_ms as u64,
        };
        let minutes = (interval_ms as f64 / 60_000.0).max(1.0);
        let done = (end - open_time) as f64 / interval_ms as f64;
        Candle {
            open_time,
            open,
            high,
            low,
            close,
            volume: (50.0 + 100.0 * unit(seed ^ open_time as u64)) * minutes * done,
            trades: ((20.0 + 80.0 * unit(seed ^ !(open_time as u64))) * minutes * done) as u64,
        }
    }
}

/// Smoothly interpolated hashed values at integer knots, in [-1, 1].
fn value_noise(seed: u64, u: f64) -> f64 {
    let i = u.floor();
    let f = u - i;
    let a = unit(seed ^ (i as i64 as u64)) * 2.0 - 1.0;
    let b = unit(seed ^ ((i as i64 + 1) as u64)) * 2.0 - 1.0;
    let s = f * f * (3.0 - 2.0 * f);
    a + (b - a) * s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_paths_hit_their_points_at_candle_boundaries() {
        let path = PricePath::Scripted {
            start_ms: 0,
            step_ms: 60_000,
            points: vec![64_000.0, 64_200.0, 64_500.0, 65_100.0],
        };
        let third = path.candle(120_000, 60_000, 1_000_000);
        assert_eq!((third.open, third.close), (64_500.0, 65_100.0));
        assert_eq!((third.low, third.high), (64_500.0, 65_100.0));
        assert_eq!(path.price_at(150_000), 64_800.0);
    }

    #[test]
    fn generated_prices_are_deterministic_and_near_base() {
        let a = PricePath::generated("BTCUSDT", 65_000.0);
        let b = PricePath::generated("BTCUSDT", 65_000.0);
        for t in [0, 1_700_000_000_000, 1_800_000_123_456] {
            assert_eq!(a.price_at(t), b.price_at(t));
            assert!((a.price_at(t) / 65_000.0 - 1.0).abs() < 0.06);
        }
        let c = a.candle(1_700_000_000_000, 3_600_000, i64::MAX);
        assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close));
    }

    #[test]
    fn a_forming_candle_ends_now() {
        let path = PricePath::generated("ETHUSDT", 3_500.0);
        let forming = path.candle(0, 60_000, 30_000);
        assert_eq!(forming.close, path.price_at(30_000));
    }
}
