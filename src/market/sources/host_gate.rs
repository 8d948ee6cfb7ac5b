//! Staying welcome at an upstream: a pause honoured after 429/418 (`Retry-After`) for
//! every call to that host, and Binance's per-minute request weight tracked from the
//! `X-MBX-USED-WEIGHT-1M` header so the service stays under its budget on its own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::UpstreamError;

/// Refuses calls to a host while a rate-limit pause lasts.
#[derive(Debug, Default)]
pub struct HostGate {
    paused_until: Mutex<Option<Instant>>,
}

impl HostGate {
    /// Pauses every call for `duration` (extending, never shortening, a pause).
    pub fn pause(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut paused = self.paused_until.lock().expect("gate lock");
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// Milliseconds left of the pause (0 when none).
    pub fn remaining_ms(&self) -> u64 {
        let paused = self.paused_until.lock().expect("gate lock");
        paused.map_or(0, |until| {
            until.saturating_duration_since(Instant::now()).as_millis() as u64
        })
    }

    /// `Err(Paused)` while paused.
    pub fn check(&self) -> Result<(), UpstreamError> {
        let paused = self.paused_until.lock().expect("gate lock");
        match *paused {
            Some(until) if until > Instant::now() => Err(UpstreamError::Paused {
                remaining_ms: (until - Instant::now()).as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }
}

/// Our share of Binance's request weight per minute (Binance counts per IP and
/// per UTC minute, and says what it counted in every response).
#[derive(Debug)]
pub struct WeightBudget {
    limit: u32,
    /// (Unix minute, weight used in it).
    used: Mutex<(i64, u32)>,
}

impl WeightBudget {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            used: Mutex::new((0, 0)),
        }
    }

    fn minute() -> i64 {
        crate::market::clock::system_now_ms().div_euclid(60_000)
    }

    /// Reserves `weight` for a request about to be sent.
    pub fn reserve(&self, weight: u32) -> Result<(), UpstreamError> {
        self.reserve_in(Self::minute(), weight)
    }

    fn reserve_in(&self, minute: i64, weight: u32) -> Result<(), UpstreamError> {
        let mut used = self.used.lock().expect("weight lock");
        if used.0 != minute {
            *used = (minute, 0);
        }
        if used.1 + weight > self.limit {
            return Err(UpstreamError::WeightBudget);
        }
        used.1 += weight;
        Ok(())
    }

    /// Takes the server's count when it is higher (other clients on the same IP).
    pub fn observe(&self, reported: u32) {
        self.observe_in(Self::minute(), reported);
    }

    fn observe_in(&self, minute: i64, reported: u32) {
        let mut used = self.used.lock().expect("weight lock");
        if used.0 != minute {
            *used = (minute, 0);
        }
        used.1 = used.1.max(reported);
    }

    pub fn used(&self) -> u32 {
        self.used.lock().expect("weight lock").1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_refuses_calls_until_it_ends() {
        let gate = HostGate::default();
        assert!(gate.check().is_ok());
        gate.pause(Duration::from_secs(60));
        gate.pause(Duration::from_millis(1));
        match gate.check() {
            Err(UpstreamError::Paused { remaining_ms }) => assert!(remaining_ms > 59_000),
            other => panic!("expected a pause, got {other:?}"),
        }
    }

    #[test]
    fn the_budget_counts_reservations_and_reported_weight() {
        let budget = WeightBudget::new(10);
        budget.reserve_in(7, 4).unwrap();
        budget.observe_in(7, 8);
        assert_eq!(budget.reserve_in(7, 4), Err(UpstreamError::WeightBudget));
        budget.reserve_in(7, 2).unwrap();
        assert_eq!(budget.used(), 10);
        // A new minute starts from zero.
        budget.reserve_in(8, 10).unwrap();
    }
}
