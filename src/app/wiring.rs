//! Wiring: every component built once, from the configuration and the connected
//! dependencies, into the state handlers and tasks share. The one place that knows how
//! the parts fit; features never build each other.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::batches::BatchRunner;
use crate::config::Config;
use crate::http::AppState;
use crate::http::auth::ApiKeys;
use crate::market::{Clock, MarketData};
use crate::metrics::Metrics;
use crate::strategy::{StrategyIndex, StrategyLoader};

/// Builds the state from connected dependencies, judging market data by `clock` (the
/// system clock in production; tests and the demo mirror the market simulator's).
pub fn build(
    config: Config,
    db: PgPool,
    redis: Option<ConnectionManager>,
    clock: Clock,
) -> AppState {
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
    .with_ingest_limit(config.alerts.ingest_rate_limit_per_minute)
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
        triggers.clone(),
    )
    .with_catch_up_max_periods(config.server.catch_up_max_periods);
    if let Some(ownership) = &ownership {
        batches = batches.with_ownership(ownership.clone());
    }
    let batches = Arc::new(batches);
    let ops_alerts = crate::ops_alerts::OpsAlerts::new(db.clone()).with_sinks(
        crate::ops_alerts::Journal::start(
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
    let backtester = crate::backtest::Backtester::new(
        db.clone(),
        crate::market::candle_history::CandleHistory::new(db.clone(), market.sources().clone()),
        market.clock().clone(),
        config.backtest.max_concurrency,
    );
    AppState {
        analysis,
        backtester,
        engine,
        replica,
        ownership,
        batches,
        triggers,
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
