//! Operational rules over trading-engine ticks (DESIGN §12): ticks taken by any
//! replica, stored in `engine_metrics` and judged by the rules of [`rules`], whose
//! alerts go through the operational alerts of `crate::ops_alerts`; a heartbeat timer for
//! engines gone silent; snapshots of the latest metrics; and each engine's history
//! aggregated per step.

mod apply;
mod heartbeat_monitor;
mod heartbeat_timer;
mod intake;
mod labels;
mod overview;
mod retention_monitor;
pub mod rules;
mod snapshot;
pub mod thresholds;
pub mod tick;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use apply::{Applier, Received};
pub use heartbeat_monitor::OpsRulesMonitor;
pub use intake::{Intake, IntakeError, MAX_BATCH};
pub use labels::EngineLabels;
pub use overview::{Connectivity, EngineOverview, ModelFreshness};
pub use retention_monitor::RetentionMonitor;
pub use rules::Defaults;
pub use tick::{Tick, TickError};

/// The numeric fields of a tick, as dotted paths: what the history aggregates.
pub const NUMERIC_FIELDS: &[&str] = &[
    "heartbeat.uptime_seconds",
    "positions.count",
    "positions.total_value",
    "pnl.daily",
    "pnl.unrealized",
    "pnl.realized",
    "risk.daily_loss_pct",
    "risk.max_position_value",
    "sentiment.last_score",
    "sentiment.provider_errors_1h",
    "sentiment.cache_hit_rate",
    "artifacts.teacher_model_age_hours",
    "artifacts.student_model_age_hours",
];

/// The engine settings (`OPS_*`, `METRICS_*`, `ENGINE_TICKS_RATE_LIMIT_PER_MINUTE`).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub defaults: Defaults,
    /// `OPS_EXPECTED_ENGINES`: lapse even if they never ticked.
    pub expected_engines: Vec<String>,
    /// `METRICS_SNAPSHOT_DIR`; `None`: no snapshots.
    pub snapshot_dir: Option<PathBuf>,
    /// `METRICS_SNAPSHOT_INTERVAL`.
    pub snapshot_interval: Duration,
    /// `METRICS_RETENTION_DAYS`: ticks and snapshots older than this are removed.
    pub retention_days: u32,
    /// `ENGINE_TICKS_RATE_LIMIT_PER_MINUTE` per API key (0: unlimited).
    pub ticks_rate_limit_per_minute: u32,
    /// `OPS_TICK_MAX_SKEW_SECONDS`: how far ahead of the server's clock a tick may be.
    pub tick_max_skew: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            defaults: Defaults::default(),
            expected_engines: Vec::new(),
            snapshot_dir: Some(PathBuf::from("data/monitoring")),
            snapshot_interval: Duration::from_secs(60),
            retention_days: 30,
            ticks_rate_limit_per_minute: 60_000,
            tick_max_skew: Duration::from_secs(300),
        }
    }
}

/// Ticks in and history out, for the routes.
#[derive(Clone)]
pub struct EngineTicks {
    pub intake: Intake,
    pub applier: Applier,
    pub labels: Arc<EngineLabels>,
    /// `OPS_TICK_MAX_SKEW_SECONDS`.
    pub max_skew: chrono::Duration,
}

impl std::fmt::Debug for EngineTicks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTicks").finish_non_exhaustive()
    }
}

/// Looks for engines whose heartbeat lapsed (the `ops_rules` monitor, on one replica
/// per cycle); answers how many lapsed now.
pub async fn judge_heartbeats(
    applier: &Applier,
    expected: &[String],
) -> Result<usize, sqlx::Error> {
    heartbeat_timer::judge(applier, expected).await
}

/// Removes ticks and snapshot files past `METRICS_RETENTION_DAYS` (part of the
/// `retention` monitor); answers the rows removed.
pub async fn remove_old_ticks(
    db: &sqlx::PgPool,
    settings: &EngineSettings,
) -> Result<u64, sqlx::Error> {
    let now = chrono::Utc::now();
    let before = now - chrono::Duration::days(i64::from(settings.retention_days));
    let rows = crate::storage::engine_metrics::remove_before(db, before).await?;
    if let Some(dir) = &settings.snapshot_dir {
        snapshot::remove_older_than(dir, settings.retention_days, now);
    }
    Ok(rows)
}

/// Every `METRICS_SNAPSHOT_INTERVAL`: the latest metrics of each engine to a file.
pub async fn run_snapshots(
    db: sqlx::PgPool,
    settings: EngineSettings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let Some(dir) = settings.snapshot_dir.clone() else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.snapshot_interval) => {}
        }
        if let Err(error) = snapshot::write(&db, &dir, chrono::Utc::now()).await {
            tracing::warn!(%error, "metrics snapshot not written");
        }
    }
}
