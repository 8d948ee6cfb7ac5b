//! The simulator's clock: wall time shifted to a chosen start and optionally sped up
//! (or frozen, for tests that step time by hand).

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Real Unix time in milliseconds.
pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How simulated time relates to real time: `sim = anchor_sim + (real - anchor_real) * speed`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClockAnchor {
    pub anchor_sim_ms: i64,
    pub anchor_real_ms: i64,
    /// 1 = real time, 60 = a minute per second, 0 = frozen.
    pub speed: f64,
}

impl ClockAnchor {
    pub fn at(&self, real_ms: i64) -> i64 {
        self.anchor_sim_ms + ((real_ms - self.anchor_real_ms) as f64 * self.speed) as i64
    }
}

/// The simulated clock every endpoint reads.
#[derive(Debug)]
pub struct SimClock {
    anchor: Mutex<ClockAnchor>,
}

impl SimClock {
    pub fn new(start_ms: Option<i64>, speed: f64) -> Self {
        let real = real_now_ms();
        Self {
            anchor: Mutex::new(ClockAnchor {
                anchor_sim_ms: start_ms.unwrap_or(real),
                anchor_real_ms: real,
                speed,
            }),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.anchor().at(real_now_ms())
    }

    pub fn anchor(&self) -> ClockAnchor {
        *self.anchor.lock().expect("clock lock")
    }

    /// Jumps to `now_ms`, keeping the speed.
    pub fn set(&self, now_ms: i64) {
        let mut anchor = self.anchor.lock().expect("clock lock");
        anchor.anchor_sim_ms = now_ms;
        anchor.anchor_real_ms = real_now_ms();
    }

    /// Changes the speed from now on.
    pub fn set_speed(&self, speed: f64) {
        let real = real_now_ms();
        let mut anchor = self.anchor.lock().expect("clock lock");
        anchor.anchor_sim_ms = anchor.at(real);
        anchor.anchor_real_ms = real;
        anchor.speed = speed;
    }
}
