//! Evaluating one strategy at one moment: the single path every batch (timer or candle
//! close) and every simulation goes through. [`Moment`] says when the evaluation
//! happens — the period it belongs to and, where the strategy has one, its bar;
//! [`evaluate`] answers the tree's result, the state to store, the trigger decision and
//! each condition's evaluation, from which the per-condition report is built (for the
//! simulate snapshot and for alert messages alike: nothing is evaluated twice).

use chrono::{DateTime, Utc};
use serde_json::{Map, json};

use crate::conditions::{ConditionReport, Evaluation};
use crate::frequency::Frequency;
use crate::logic_tree::{BatchContext, Tri};
use crate::market::Interval;
use crate::storage::strategy_state::{StateUpdate, StoredState};
use crate::strategy::{CompiledStrategy, TriggerMode};
use crate::trigger::{Decision, Suppression, TriggerContext, decide};

/// When an evaluation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// The instant the evaluation belongs to: the period's start for a timer batch,
    /// the candle's close for a close. The same on every replica, so their claims
    /// collide on the same dedup keys.
    pub due: DateTime<Utc>,
    /// Open time (Unix ms) of the strategy's bar: the current bar on a timer, the bar
    /// that closed on a close. `None` for strategies without a bar interval.
    pub bar_open_ms: Option<i64>,
    /// Whether this is the close of that bar (bar-close strategies fire only then).
    pub on_close: bool,
}

impl Moment {
    /// A timer batch's period `due`, for `strategy`. A `once_per_bar_close` strategy
    /// whose bar is its frequency (no indicator, so no candle feed to close it) has
    /// its bar close at each period boundary: `due` is that close.
    pub fn period(strategy: &CompiledStrategy, due: DateTime<Utc>) -> Self {
        if let Some(interval) = strategy.bar_interval
            && closes_on_timer(strategy)
        {
            let current = interval.open_time(due.timestamp_millis());
            return Self::close(current - interval.millis(), interval);
        }
        Self {
            due,
            bar_open_ms: strategy
                .bar_interval
                .map(|interval| interval.open_time(due.timestamp_millis())),
            on_close: false,
        }
    }

    /// The close of the `interval` candle that opened at `open_time_ms`.
    pub fn close(open_time_ms: i64, interval: Interval) -> Self {
        let close_ms = open_time_ms + interval.millis();
        Self {
            due: DateTime::from_timestamp_millis(close_ms).unwrap_or_else(Utc::now),
            bar_open_ms: Some(open_time_ms),
            on_close: true,
        }
    }

    /// The moment `strategy`'s next batch evaluates at, as of market time `now`: the
    /// last closed bar for strategies that fire on a close, else the current period.
    pub fn next(strategy: &CompiledStrategy, now: DateTime<Utc>) -> Self {
        match strategy.bar_interval {
            Some(interval) if fires_on_close(strategy) => {
                let current = interval.open_time(now.timestamp_millis());
                Self::close(current - interval.millis(), interval)
            }
            _ => Self::period(strategy, strategy.frequency.due_at_or_before(now)),
        }
    }
}

/// Whether `strategy` is evaluated on its bar's closes (`candle_close` frequency or
/// `once_per_bar_close` mode).
pub fn fires_on_close(strategy: &CompiledStrategy) -> bool {
    strategy.frequency == Frequency::CandleClose
        || strategy.trigger_mode == TriggerMode::OncePerBarClose
}

/// Whether `strategy`'s bar closes on its timer: `once_per_bar_close` with no candle
/// series of its own (its bar interval is its frequency's period, so each period
/// boundary is a close).
pub fn closes_on_timer(strategy: &CompiledStrategy) -> bool {
    strategy.trigger_mode == TriggerMode::OncePerBarClose
        && strategy.indicator_keys().next().is_none()
}

/// What one evaluation found and decided.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The tree's result.
    pub result: Tri,
    /// Fire (with the claim's key) or why not.
    pub decision: Decision,
    /// What the decision was made on (the claim checks it again).
    pub context: TriggerContext,
    /// The strategy's state after this evaluation.
    pub update: StateUpdate,
    /// Each condition's evaluation, in the strategy's order.
    pub evaluations: Vec<Evaluation>,
}

impl Outcome {
    /// Each condition's report: where its data came from and what it observed.
    pub fn report(&self, strategy: &CompiledStrategy) -> Vec<ConditionReport> {
        strategy
            .conditions
            .iter()
            .zip(strategy.condition_ids.iter())
            .zip(self.evaluations.iter())
            .map(|((condition, id), evaluation)| condition.report(*id, evaluation))
            .collect()
    }

    /// Whether the tree is unknown only because a cross has no previous value to
    /// compare with yet (its first evaluation): every unknown condition is a cross whose
    /// data arrived. The next evaluation has one.
    pub fn awaits_previous(&self, strategy: &CompiledStrategy) -> bool {
        self.result == Tri::Unknown
            && self
                .report(strategy)
                .iter()
                .filter(|r| r.result.is_none())
                .all(|r| {
                    r.relation.starts_with("crossed")
                        && r.observed.value.is_some()
                        && r.observed.previous.is_none()
                })
    }
}

/// Evaluates `strategy` in `ctx` at `moment` over its stored `state`: every condition
/// once (crosses compare with the remembered values), the tree on their results, the
/// trigger decision (mode, cooldown, bar, edge), and the state to store.
pub fn evaluate(
    strategy: &CompiledStrategy,
    ctx: &BatchContext,
    state: Option<&StoredState>,
    moment: &Moment,
) -> Outcome {
    let evaluations: Vec<Evaluation> = strategy
        .conditions
        .iter()
        .enumerate()
        .map(|(i, condition)| condition.evaluate(ctx, remembered(state, strategy, i)))
        .collect();
    let result = strategy
        .tree
        .evaluate(&mut |i| evaluations[usize::from(i)].result);
    let context = trigger_context(state, result, moment);
    let decision = if result == Tri::True
        && !moment.on_close
        && strategy.trigger_mode == TriggerMode::OncePerBarClose
    {
        // Evaluated on its timer, it fires only on its bar's close.
        Decision::Suppressed(Suppression::AwaitsClose)
    } else {
        decide(strategy, &context)
    };
    let mut previous = Map::new();
    for (id, condition) in strategy
        .condition_ids
        .iter()
        .zip(strategy.conditions.iter())
    {
        if let Some(value) = condition.memory(ctx) {
            previous.insert(id.to_string(), json!(value));
        }
    }
    let consecutive_errors = match result {
        Tri::Unknown => state.map_or(0, |s| s.consecutive_errors).saturating_add(1),
        _ => 0,
    };
    Outcome {
        result,
        decision,
        context,
        update: StateUpdate {
            strategy_id: strategy.id,
            result: result.known(),
            previous,
            consecutive_errors,
            candle_open_time: moment
                .on_close
                .then_some(moment.bar_open_ms)
                .flatten()
                .and_then(DateTime::from_timestamp_millis),
            period: None,
        },
        evaluations,
    }
}

/// Condition `i` of `strategy`: its value remembered from the last evaluation (what
/// crosses compare against), when there is one.
fn remembered(state: Option<&StoredState>, strategy: &CompiledStrategy, i: usize) -> Option<f64> {
    let id = strategy.condition_ids.get(i)?;
    state.and_then(|s| s.previous.get(id).copied())
}

/// What the trigger decision knows of an evaluation at `moment` over `state`.
fn trigger_context(state: Option<&StoredState>, result: Tri, moment: &Moment) -> TriggerContext {
    TriggerContext {
        result,
        previous_result: state.and_then(|s| s.last_result),
        last_triggered_at: state.and_then(|s| s.last_triggered_at),
        scheduled_at: moment.due,
        bar_open_ms: moment.bar_open_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{Observed, SymbolInterner};
    use crate::strategy::ResolvedStrategy;
    use crate::trigger::Suppression;
    use uuid::Uuid;

    fn strategy(operator: &str) -> CompiledStrategy {
        let resolved = ResolvedStrategy::with_one_condition(
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            "price_alert",
            json!({"source": "binance", "symbol": "BTCUSDT", "operator": operator, "value": 65000}),
        );
        CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).unwrap()
    }

    fn unknown(value: Option<f64>, previous: Option<f64>) -> Outcome {
        Outcome {
            result: Tri::Unknown,
            decision: Decision::Suppressed(Suppression::NotTrue),
            context: TriggerContext {
                result: Tri::Unknown,
                previous_result: None,
                last_triggered_at: None,
                scheduled_at: Utc::now(),
                bar_open_ms: None,
            },
            update: StateUpdate {
                strategy_id: Uuid::from_u128(1),
                result: None,
                previous: Map::new(),
                consecutive_errors: 1,
                candle_open_time: None,
                period: None,
            },
            evaluations: vec![Evaluation {
                result: Tri::Unknown,
                observed: Observed {
                    value,
                    previous,
                    ..Observed::default()
                },
            }],
        }
    }

    #[test]
    fn only_a_cross_with_data_and_no_previous_value_awaits_one() {
        let cross = strategy("crosses_above");
        assert!(unknown(Some(64000.0), None).awaits_previous(&cross));
        // No price at all: the data is missing, whatever the operator.
        assert!(!unknown(None, None).awaits_previous(&cross));
        assert!(!unknown(None, None).awaits_previous(&strategy("above")));
        let mut known = unknown(Some(64000.0), None);
        known.result = Tri::False;
        assert!(
            !known.awaits_previous(&cross),
            "a known tree awaits nothing"
        );
    }
}
