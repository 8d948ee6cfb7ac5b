//! The shared application state: built once at startup, cloned cheaply into every
//! handler and background task.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::ApiKeys;
use crate::config::Config;
use crate::market::{Clock, MarketData};
use crate::metrics::Metrics;
use crate::scheduler::BatchRunner;
use crate::strategy::{StrategyIndex, StrategyLoader};

/// Everything a handler or a background task needs, behind `Arc`s.
#[derive(Clone)]
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
    /// Cancelled when the service begins to shut down.
    pub shutdown: CancellationToken,
    /// Background tasks; shutdown waits for them with a deadline.
    pub tasks: TaskTracker,
    pub started_at: Instant,
    /// Whether `strategy:updated` announcements are being followed.
    pub live_reload: Arc<crate::strategy::live_reload::Following>,
    /// Operational alerts: raised by producers, worked by operators.
    pub ops_alerts: crate::alerts::OpsAlerts,
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
}

impl AppState {
    /// Assembles the state from connected dependencies.
    pub fn new(config: Config, db: PgPool, redis: Option<ConnectionManager>) -> Self {
        Self::with_clock(config, db, redis, Clock::system())
    }

    /// As [`AppState::new`], judging market data by `clock` (tests and the demo mirror
    /// the market simulator's clock).
    pub fn with_clock(
        config: Config,
        db: PgPool,
        redis: Option<ConnectionManager>,
        clock: Clock,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let market = MarketData::new(
            config.market.clone(),
            redis.clone(),
            clock,
            Arc::new(metrics.market.clone()),
        );
        let api_keys = ApiKeys::with_rate_limit(
            &config.server.api_keys,
            config.server.internal_rate_limit_per_minute,
            config.server.internal_rate_limit_burst,
        )
        .with_ticks_limit(config.engine.ticks_rate_limit_per_minute)
        .with_stream_limit(config.alerts.streams_per_key);
        // This process's identity among replicas: its leases are held under it.
        let replica = format!(
            "replica-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let ownership = config
            .auto_shard
            .map(|_| Arc::new(crate::sharding::Ownership::new(&replica)));
        let shard_filter = match &ownership {
            Some(ownership) => crate::strategy::ShardFilter::Leased(ownership.clone()),
            None => config.shard.into(),
        };
        let index = Arc::new(StrategyIndex::new());
        let loader = Arc::new(
            StrategyLoader::new(db.clone(), redis.clone(), shard_filter, index.clone())
                .with_metrics(metrics.strategies.clone()),
        );
        let shutdown = CancellationToken::new();
        let notifier =
            crate::notify::Notifier::new(config.notify.clone()).with_shutdown(shutdown.clone());
        let tasks = TaskTracker::new();
        let lease = Arc::new(crate::trigger::DeliveryLease::new(
            db.clone(),
            &replica,
            crate::trigger::DELIVERY_LEASE_TTL,
        ));
        let triggers = crate::trigger::TriggerHandler::new(
            db.clone(),
            notifier.clone(),
            metrics.clone(),
            tasks.clone(),
            lease,
        );
        let mut batches = BatchRunner::new(
            index.clone(),
            market.clone(),
            db.clone(),
            metrics.clone(),
            triggers,
        )
        .with_catch_up_max_periods(config.server.catch_up_max_periods);
        if let Some(ownership) = &ownership {
            batches = batches.with_ownership(ownership.clone());
        }
        let batches = Arc::new(batches);
        let ops_alerts = crate::alerts::OpsAlerts::new(db.clone()).with_sinks(
            crate::alerts::Journal::start(
                config.alerts.log_dir.clone(),
                metrics.alerts.log_errors.clone(),
            ),
            redis.clone(),
            &metrics.alerts,
        );
        let applier = crate::ops_rules::Applier::new(
            db.clone(),
            ops_alerts.clone(),
            config.engine.defaults.clone(),
            metrics.engine.rule_evaluation.clone(),
        );
        let engine = crate::ops_rules::EngineTicks {
            intake: crate::ops_rules::Intake::start(
                applier.clone(),
                metrics.engine.batch_size.clone(),
                &tasks,
                shutdown.clone(),
            ),
            applier,
            labels: Arc::new(crate::ops_rules::EngineLabels::new(
                &config.engine.expected_engines,
            )),
            max_skew: chrono::Duration::from_std(config.engine.tick_max_skew)
                .unwrap_or(chrono::Duration::days(1)),
        };
        let (db_for_monitors, replica_for_monitors) = (db.clone(), replica.clone());
        let analysis = crate::analysis::Analysis::new(crate::analysis::AnalysisParts {
            db: db.clone(),
            redis: redis.clone(),
            redis_url: config.database.redis_url.clone(),
            market: market.clone(),
            settings: config.analysis.clone(),
            metrics: metrics.analysis.clone(),
            alerts: ops_alerts.clone(),
            replica: replica.clone(),
        });
        Self {
            analysis,
            engine,
            replica,
            ownership,
            batches,
            config: Arc::new(config),
            ops_alerts,
            notifier,
            db,
            redis,
            metrics,
            market,
            api_keys: Arc::new(api_keys),
            index,
            loader,
            shutdown,
            tasks,
            started_at: Instant::now(),
            live_reload: Arc::default(),
            health: Default::default(),
            monitors: Arc::new(crate::monitors::Registry::new(
                db_for_monitors,
                replica_for_monitors,
            )),
        }
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<ApiKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.api_keys.clone()
    }
}
