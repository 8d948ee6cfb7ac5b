//! Simulation: one strategy evaluated on fresh market data exactly as its next batch
//! would evaluate it, reported in full — every condition's result and observed values,
//! the tree's result, whether it would trigger and what would suppress it. Nothing is
//! written: no trigger log, no notification, no runtime state.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::state_store;
use crate::conditions::{Condition, Evaluation, Observed};
use crate::engine::{BatchContext, Tri};
use crate::market::{DataNeeds, MarketData};
use crate::strategy::{CompiledStrategy, Frequency, TriggerMode};
use crate::trigger::{Decision, Suppression, decide};

/// One condition as the simulation saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedCondition {
    pub id: Uuid,
    pub kind: String,
    /// true, false, or null when its data was unavailable.
    pub result: Option<bool>,
    /// The source that answered (a fallback may have).
    pub source: String,
    pub symbol: String,
    /// The candle interval, for indicators.
    pub interval: Option<String>,
    /// Open time of the last closed candle the indicator was computed on.
    pub bar_open_time: Option<DateTime<Utc>>,
    pub observed: Observed,
}

/// The simulate snapshot (DESIGN §7).
#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    pub strategy_id: Uuid,
    /// The strategy's stored status.
    pub status: String,
    /// Its validation error, when it cannot be compiled (nothing is evaluated then).
    pub error: Option<String>,
    pub evaluated_at: DateTime<Utc>,
    /// The tree's result: true, false, or null (unknown: data missing).
    pub result: Option<bool>,
    pub would_trigger: bool,
    /// What stops it triggering now (null when it would trigger).
    pub suppressed_by: Option<Suppression>,
    /// The key a trigger now would claim (null when it would not trigger).
    pub dedup_key: Option<String>,
    pub conditions: Vec<SimulatedCondition>,
    /// Market data that could not be fetched (their conditions are unknown).
    pub data_failures: Vec<String>,
    pub duration_us: u64,
}

impl Simulation {
    /// The answer for a strategy that does not compile: its error, nothing evaluated.
    pub fn invalid(strategy_id: Uuid, status: String, error: String) -> Self {
        Self {
            strategy_id,
            status,
            error: Some(error),
            evaluated_at: Utc::now(),
            result: None,
            would_trigger: false,
            suppressed_by: Some(Suppression::Invalid),
            dedup_key: None,
            conditions: Vec::new(),
            data_failures: Vec::new(),
            duration_us: 0,
        }
    }
}

/// Evaluates `strategy` (stored with `status`) as its next batch would: the period (or
/// the last closed bar, for strategies that fire on a close) from the market clock,
/// its stored state for crosses, edges and cooldown. Reads only.
pub async fn simulate(
    db: &PgPool,
    market: &MarketData,
    strategy: &CompiledStrategy,
    status: &str,
) -> Result<Simulation, sqlx::Error> {
    let clock = Instant::now();
    let evaluated_at = Utc::now();
    let stored = state_store::load(db, &[strategy.id]).await?;
    let state = stored.get(&strategy.id);

    let mut needs = DataNeeds::default();
    strategy.needs(&mut needs);
    let prefetched = market.prefetcher.fetch(&needs).await;
    let keys: Vec<_> = strategy.indicator_keys().cloned().collect();
    let ctx = BatchContext::prepare(std::sync::Arc::new(prefetched.snapshot), &keys);
    let memory = |i: usize| state_store::remembered(state, strategy, i);
    let (result, evaluations) = strategy.evaluate_detailed(&ctx, &memory);

    let market_now =
        DateTime::from_timestamp_millis(market.prefetcher.clock().now_ms()).unwrap_or(evaluated_at);
    let on_close = strategy.frequency == Frequency::CandleClose
        || strategy.trigger_mode == TriggerMode::OncePerBarClose;
    // A close-driven strategy is judged as if its last closed bar had just closed.
    let (due, bar_open_ms) = match strategy.bar_interval {
        Some(interval) if on_close => {
            let current = interval.open_time(market_now.timestamp_millis());
            (
                DateTime::from_timestamp_millis(current).unwrap_or(market_now),
                Some(current - interval.millis()),
            )
        }
        interval => {
            let due = strategy.frequency.due_at_or_before(market_now);
            (due, interval.map(|i| i.open_time(due.timestamp_millis())))
        }
    };
    let decision = if result == Tri::True && status != "active" {
        Decision::Suppressed(Suppression::Inactive)
    } else {
        decide(
            strategy,
            &state_store::trigger_context(state, result, due, bar_open_ms),
        )
    };
    let (suppressed_by, dedup_key) = match decision {
        Decision::Fire { dedup_key } => {
            let claimed: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM strategy_trigger_logs WHERE dedup_key = $1)",
            )
            .bind(&dedup_key)
            .fetch_one(db)
            .await?;
            if claimed {
                (Some(Suppression::AlreadyTriggered), None)
            } else {
                (None, Some(dedup_key))
            }
        }
        Decision::Suppressed(why) => (Some(why), None),
    };

    let conditions = describe_conditions(strategy, evaluations);
    Ok(Simulation {
        strategy_id: strategy.id,
        status: status.to_owned(),
        error: None,
        evaluated_at,
        result: result.known(),
        would_trigger: suppressed_by.is_none(),
        suppressed_by,
        dedup_key,
        conditions,
        data_failures: prefetched
            .report
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.datum, f.error))
            .collect(),
        duration_us: u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX),
    })
}

/// Each condition with where its data came from and what its evaluation observed.
pub(super) fn describe_conditions(
    strategy: &CompiledStrategy,
    evaluations: Vec<Evaluation>,
) -> Vec<SimulatedCondition> {
    strategy
        .conditions
        .iter()
        .zip(strategy.condition_ids.iter())
        .zip(evaluations)
        .map(|((condition, id), evaluation)| {
            let (source, symbol, interval) = match condition {
                Condition::PriceAlert(c) => (c.key.source, c.key.symbol.to_string(), None),
                Condition::TechnicalIndicator(c) => (
                    c.key.series.source,
                    c.key.series.symbol.to_string(),
                    Some(c.key.series.interval.to_string()),
                ),
            };
            SimulatedCondition {
                id: *id,
                kind: condition.kind().to_owned(),
                result: evaluation.result.known(),
                // A fallback may have answered instead of the source asked.
                source: evaluation
                    .observed
                    .answered_by
                    .unwrap_or(source)
                    .to_string(),
                symbol,
                interval,
                bar_open_time: evaluation
                    .observed
                    .bar_open_time_ms
                    .and_then(DateTime::from_timestamp_millis),
                observed: evaluation.observed,
            }
        })
        .collect()
}
