//! The shared application state: built once by the composition root (`app::wiring`),
//! cloned cheaply into every handler and background task. Each field is a sub-state a
//! handler can take alone (`State<OpsAlerts>`, `State<PgPool>`, …).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::ApiKeys;
use crate::batches::BatchRunner;
use crate::config::Config;
use crate::market::MarketData;
use crate::metrics::Metrics;
use crate::strategy::{StrategyIndex, StrategyLoader};

/// Everything a handler or a background task needs, behind `Arc`s.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    /// `None` when `REDIS_URL` is unset: caches and pub/sub are then in-process.
    pub redis: Option<ConnectionManager>,
    pub metrics: Arc<Metrics>,
    pub api_keys: Arc<ApiKeys>,
    /// The compiled strategies, swapped atomically by the loader.
    pub index: Arc<StrategyIndex>,
    pub loader: Arc<StrategyLoader>,
    /// Market data: the prefetcher and the candle feed.
    pub market: MarketData,
    /// Runs the batches (on schedule and on demand).
    pub batches: Arc<BatchRunner>,
    /// Claims triggers and delivers them (the batches hand it what fired).
    pub triggers: crate::trigger::TriggerHandler,
    /// Cancelled when the service begins to shut down.
    pub shutdown: CancellationToken,
    /// Background tasks; shutdown waits for them with a deadline.
    pub tasks: TaskTracker,
    pub started_at: Instant,
    /// Whether `strategy:updated` announcements are being followed.
    pub live_reload: Arc<crate::strategy::live_reload::Following>,
    /// Operational alerts: raised by producers, worked by operators.
    pub ops_alerts: crate::ops_alerts::OpsAlerts,
    /// The notifiers (shared with the trigger handler: one flood control).
    pub notifier: crate::notify::Notifier,
    /// Trading-engine ticks: the intake and the rules.
    pub engine: crate::ops_rules::EngineTicks,
    /// This process's identity among replicas (the holder of its leases).
    pub replica: String,
    /// `SHARD_COUNT=auto`: the virtual shards this replica holds.
    pub ownership: Option<Arc<crate::sharding::Ownership>>,
    /// The latest platform health snapshot, which the health routes answer from.
    pub health: crate::platform_health::LatestSnapshot,
    /// The periodic jobs, by name.
    pub monitors: Arc<crate::monitors::Registry>,
    /// Candle-close analysis of monitored signals (off without `ANALYSIS_URL`).
    pub analysis: crate::analysis::Analysis,
    /// Backtests: past moments walked by the batch's evaluation.
    pub backtester: crate::backtest::Backtester,
}
