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

use super::evaluation::{Moment, evaluate};
use crate::conditions::ConditionReport;
use crate::logic_tree::{BatchContext, Tri};
use crate::market::{DataNeeds, MarketData};
use crate::storage::{strategy_state, trigger_logs};
use crate::strategy::CompiledStrategy;
use crate::trigger::{Decision, Suppression};

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
    pub conditions: Vec<ConditionReport>,
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

/// Evaluates `strategy` (stored with `status`) as its next batch would: at the
/// [`Moment`] the market clock says comes next, over its stored state for crosses,
/// edges and cooldown — the batch's own [`evaluate`]. Adds only the check that the
/// trigger's key is not already claimed. Reads only.
pub async fn simulate(
    db: &PgPool,
    market: &MarketData,
    strategy: &CompiledStrategy,
    status: &str,
) -> Result<Simulation, sqlx::Error> {
    let clock = Instant::now();
    let evaluated_at = Utc::now();
    let stored = strategy_state::load(db, &[strategy.id]).await?;

    let mut needs = DataNeeds::default();
    strategy.needs(&mut needs);
    let prefetched = market.fetch(&needs).await;
    let keys: Vec<_> = strategy.indicator_keys().cloned().collect();
    let ctx = BatchContext::prepare(std::sync::Arc::new(prefetched.snapshot), &keys);
    let moment = Moment::next(strategy, market.now());
    let outcome = evaluate(strategy, &ctx, stored.get(&strategy.id), &moment);

    let decision = if outcome.result == Tri::True && status != "active" {
        Decision::Suppressed(Suppression::Inactive)
    } else {
        outcome.decision.clone()
    };
    let (suppressed_by, dedup_key) = match decision {
        Decision::Fire { dedup_key } if trigger_logs::is_claimed(db, &dedup_key).await? => {
            (Some(Suppression::AlreadyTriggered), None)
        }
        Decision::Fire { dedup_key } => (None, Some(dedup_key)),
        Decision::Suppressed(why) => (Some(why), None),
    };
    Ok(Simulation {
        strategy_id: strategy.id,
        status: status.to_owned(),
        error: None,
        evaluated_at,
        result: outcome.result.known(),
        would_trigger: suppressed_by.is_none(),
        suppressed_by,
        dedup_key,
        conditions: outcome.report(strategy),
        data_failures: prefetched
            .report
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.datum, f.error))
            .collect(),
        duration_us: u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX),
    })
}
