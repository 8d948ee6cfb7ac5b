//! The clock market data is judged by: which candles are closed, when a price expires.
//! Production reads the system clock; tests and the demo mirror the market simulator's
//! shifted, sped-up or hand-stepped clock, so the service and its market agree on
//! "now".

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
enum Kind {
    System,
    /// `now = anchor_sim + (real - anchor_real) * speed`.
    Scaled {
        anchor_sim_ms: i64,
        anchor_real_ms: i64,
        speed: f64,
    },
    Manual(AtomicI64),
}

/// A cheaply cloned source of "now" in Unix milliseconds.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Kind>);

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// Real Unix time in milliseconds.
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(Kind::System))
    }

    /// A clock that runs `speed` times real time from `anchor_sim_ms` at real time
    /// `anchor_real_ms`.
    pub fn scaled(anchor_sim_ms: i64, anchor_real_ms: i64, speed: f64) -> Self {
        Self(Arc::new(Kind::Scaled {
            anchor_sim_ms,
            anchor_real_ms,
            speed,
        }))
    }

    /// A clock that only moves when [`Clock::set`] is called.
    pub fn manual(now_ms: i64) -> Self {
        Self(Arc::new(Kind::Manual(AtomicI64::new(now_ms))))
    }

    pub fn now_ms(&self) -> i64 {
        match &*self.0 {
            Kind::System => system_now_ms(),
            Kind::Scaled {
                anchor_sim_ms,
                anchor_real_ms,
                speed,
            } => anchor_sim_ms + ((system_now_ms() - anchor_real_ms) as f64 * speed) as i64,
            Kind::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Simulated milliseconds per real millisecond (1 for the system clock, 0 for a
    /// manual one).
    pub fn speed(&self) -> f64 {
        match &*self.0 {
            Kind::System => 1.0,
            Kind::Scaled { speed, .. } => *speed,
            Kind::Manual(_) => 0.0,
        }
    }

    /// Moves a manual clock; no effect on the others.
    pub fn set(&self, now_ms: i64) {
        if let Kind::Manual(now) = &*self.0 {
            now.store(now_ms, Ordering::SeqCst);
        }
    }
}
