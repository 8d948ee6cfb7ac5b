//! A plan's evaluation: every strategy at the plan's moment, counted, its streaks of
//! unknowns logged, its state update and its trigger (if it fires) collected.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{Evaluated, Plan};
use crate::batches::evaluation::{Moment, evaluate};
use crate::logic_tree::{BatchContext, Tri};
use crate::market::MarketData;
use crate::metrics::Metrics;
use crate::storage::strategy_state::StoredState;
use crate::strategy::CompiledStrategy;
use crate::trigger::{Decision, TriggerRequest, TriggerTiming};

/// Evaluates every strategy at the plan's moment; counts, logs streaks of unknowns,
/// and collects the state updates and the triggers to claim.
pub(super) fn evaluate_plan(
    plan: &Plan,
    strategies: &[Arc<CompiledStrategy>],
    stored: &HashMap<Uuid, StoredState>,
    ctx: &BatchContext,
    market: &MarketData,
    metrics: &Metrics,
    unknown_streak: i32,
) -> Evaluated {
    let mut evaluated = Evaluated {
        updates: Vec::with_capacity(strategies.len()),
        ..Evaluated::default()
    };
    let evaluations = &metrics.scheduler.evaluations;
    for strategy in strategies {
        let moment = match plan.closed_bar {
            Some((open_time, interval)) => Moment::close(open_time, interval),
            None => Moment::period(strategy, plan.due),
        };
        let mut outcome = evaluate(strategy, ctx, stored.get(&strategy.id), &moment);
        if plan.closed_bar.is_none() {
            outcome.update.period = Some(plan.due);
        }
        let awaits_previous = outcome.awaits_previous(strategy);
        match outcome.result {
            Tri::True => evaluated.fired.push(strategy.id),
            // A cross's first evaluation waits for a previous value: unknown, but
            // nothing is missing.
            Tri::Unknown if awaits_previous => {}
            Tri::Unknown => evaluated.errors += 1,
            Tri::False => {}
        }
        let streak = outcome.update.consecutive_errors;
        log_unknown_streak(plan, strategy, streak, awaits_previous, unknown_streak);
        if streak >= unknown_streak {
            evaluated.lacking_data += 1;
        }
        let result_label = match outcome.result {
            Tri::True => "true",
            Tri::False => "false",
            Tri::Unknown => "unknown",
        };
        evaluations
            .with_label_values(&[plan.label.as_str(), result_label])
            .inc();
        if let Decision::Fire { dedup_key } = &outcome.decision {
            let fired_at = if moment.on_close {
                moment.due
            } else {
                market.now()
            };
            // A close fires at the bar's close; a timer when it evaluates.
            let timing = TriggerTiming {
                triggered_at: moment.due,
                fired_at,
                late: !moment.on_close
                    && strategy
                        .frequency
                        .next_after(moment.due)
                        .is_some_and(|next| fired_at - moment.due > next - moment.due),
            };
            evaluated.claims.push(TriggerRequest::new(
                strategy.clone(),
                dedup_key.clone(),
                timing,
                &outcome.report(strategy),
                outcome.context.clone(),
                outcome.update.clone(),
            ));
        }
        evaluated.updates.push(outcome.update);
    }
    evaluated
}

/// The first unknown of a run of them is logged, and the run reaching the streak;
/// the rest are counted, not logged. A first evaluation whose only unknowns are
/// crosses waiting for a previous value is logged as that, not as missing data.
fn log_unknown_streak(
    plan: &Plan,
    strategy: &CompiledStrategy,
    streak: i32,
    awaits_previous: bool,
    unknown_streak: i32,
) {
    if streak == 1 && awaits_previous {
        tracing::info!(
            strategy_id = %strategy.id,
            frequency = %plan.name,
            "strategy evaluated unknown: a cross needs a previous value, which the next evaluation has"
        );
    } else if streak == 1 {
        tracing::warn!(
            strategy_id = %strategy.id,
            frequency = %plan.name,
            "strategy evaluated unknown: market data it needs is unavailable"
        );
    } else if streak == unknown_streak {
        tracing::warn!(
            strategy_id = %strategy.id,
            frequency = %plan.name,
            streak,
            "strategy evaluated unknown repeatedly: its market data is unavailable"
        );
    }
}
