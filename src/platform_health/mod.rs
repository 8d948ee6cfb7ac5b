//! Platform health (DESIGN §11): every dependency checked each cycle — Postgres, Redis,
//! the Binance API and the services of `HEALTH_TARGETS` — one system status
//! (`OK` / `DEGRADED` / `CRITICAL`), the snapshot every replica serves, the Redis
//! events (`health.snapshot_updated` out; `ess.tripped` / `ess.reset` in), and the
//! alerts when it degrades.

mod collectors;
mod cycle;
pub mod ess;
mod latest;
mod monitor;
mod snapshot;
pub mod status;
mod targets;

use std::time::Duration;

pub use collectors::{CheckResult, Collectors};
pub use cycle::{Cycle, ESS_TRIPPED, SNAPSHOT_CHANNEL, latest};
pub use latest::LatestSnapshot;
pub use monitor::PlatformHealthMonitor;
pub use snapshot::{AlertCounts, Snapshot, Streaks, TargetState};
pub use status::{Health, Kind, Limits};
pub use targets::{Probe, Target, all_targets, parse_targets};

/// The health settings (`HEALTH_*`).
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// `HEALTH_TARGETS`: the platform's services.
    pub services: Vec<Target>,
    /// `HEALTH_CHECK_INTERVAL`; zero turns the health check (and the emergency-stop
    /// follower) off.
    pub interval: Duration,
    /// `HEALTH_CHECK_TIMEOUT_MS`: each check's own limit.
    pub timeout: Duration,
    /// `HEALTH_LATENCY_DEGRADED_MS` and `HEALTH_LATENCY_CRITICAL_MS`.
    pub limits: Limits,
    /// `HEALTH_ALERT_AFTER`: bad (or good) cycles in a row before an alert opens (or
    /// resolves).
    pub alert_after: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            services: Vec::new(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_millis(5500),
            limits: Limits::default(),
            alert_after: 2,
        }
    }
}
