//! The walk: one strategy evaluated at every moment the live scheduler would have run it
//! over a span, by the batch's own [`evaluate`], each moment seeing only the candles
//! closed by then, the state carried from moment to moment as `strategy_state` would
//! have carried it ([`StoredState::apply`]). Pure: reads the tape, writes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::market_at::MarketAt;
use super::tape::Tape;
use crate::batches::{Moment, closes_on_timer, evaluate, fires_on_close};
use crate::conditions::Evaluation;
use crate::logic_tree::Tri;
use crate::storage::strategy_state::StoredState;
use crate::strategy::{CompiledStrategy, TriggerMode};
use crate::trigger::{Decision, Suppression};

/// How many fires a walk keeps in full.
pub const MAX_FIRES_KEPT: usize = 10_000;

/// One moment at which the strategy would have triggered.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The trigger's time (the period's start, or the bar's close).
    pub at: DateTime<Utc>,
    /// The open time of the strategy's bar, when it has one.
    pub bar_open_time: Option<DateTime<Utc>>,
    /// Per condition, in the strategy's order: its id and what its evaluation saw.
    pub conditions: Vec<(Uuid, Evaluation)>,
}

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walked {
    /// How many moments were evaluated.
    pub moments: u64,
    /// Every fire's time, in order.
    pub fire_times: Vec<DateTime<Utc>>,
    /// The first [`MAX_FIRES_KEPT`] fires in full (a 10 s strategy true all year fires
    /// three million times: their times are kept, not their details).
    pub fires: Vec<Fired>,
    /// True evaluations that did not fire, by reason (`cooldown`, `same_bar`, …).
    pub suppressed: BTreeMap<&'static str, u64>,
    /// Evaluations whose tree was unknown (data missing, a gap, or warm-up).
    pub unknown: u64,
}

/// The moments the live scheduler would have evaluated `strategy` at in `[from, to)`:
/// its bar's closes for the bar-close modes (unless its bar closes on its timer),
/// else its frequency's runs.
pub fn moments(strategy: &CompiledStrategy, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Moment> {
    match strategy.bar_interval {
        Some(interval) if fires_on_close(strategy) && !closes_on_timer(strategy) => {
            let step = interval.millis();
            // The first close at or after `from`.
            let mut close = interval.open_time(from.timestamp_millis() + step - 1);
            let mut moments = Vec::new();
            while close < to.timestamp_millis() {
                moments.push(Moment::close(close - step, interval));
                close += step;
            }
            moments
        }
        _ => strategy
            .frequency
            .due_times(from, to)
            .into_iter()
            .map(|due| Moment::period(strategy, due))
            .collect(),
    }
}

/// Walks `strategy` through `moments` (in order) over `tape`, from a fresh state.
pub fn walk(strategy: &CompiledStrategy, tape: &Tape, moments: &[Moment]) -> Walked {
    let mut market = MarketAt::new(strategy, tape, moments);
    let mut state = StoredState::default();
    let mut walked = Walked::default();
    for always_counted in [
        Suppression::Cooldown,
        Suppression::SameBar,
        Suppression::NotRisingEdge,
        Suppression::AlreadyTriggered,
    ] {
        walked.suppressed.insert(always_counted.as_str(), 0);
    }
    let mut fired_once = false;
    for moment in moments {
        market.advance(moment.due);
        let mut outcome = evaluate(strategy, &market.ctx, Some(&state), moment);
        if !moment.on_close {
            outcome.update.period = Some(moment.due);
        }
        walked.moments += 1;
        if outcome.result == Tri::Unknown {
            walked.unknown += 1;
        }
        let decision = match outcome.decision.clone() {
            // Live, a strategy that fired `once` is completed: its key is claimed.
            Decision::Fire { .. } if fired_once => {
                Decision::Suppressed(Suppression::AlreadyTriggered)
            }
            other => other,
        };
        match decision {
            Decision::Fire { .. } => {
                fired_once = strategy.trigger_mode == TriggerMode::Once;
                walked.fire_times.push(moment.due);
                if walked.fires.len() < MAX_FIRES_KEPT {
                    walked.fires.push(Fired {
                        at: moment.due,
                        bar_open_time: moment.bar_open_ms.and_then(DateTime::from_timestamp_millis),
                        conditions: strategy
                            .condition_ids
                            .iter()
                            .copied()
                            .zip(outcome.evaluations.iter().copied())
                            .collect(),
                    });
                }
                state.apply(&outcome.update, Some(moment.due));
            }
            Decision::Suppressed(Suppression::NotTrue) => state.apply(&outcome.update, None),
            Decision::Suppressed(why) => {
                *walked.suppressed.entry(why.as_str()).or_default() += 1;
                state.apply(&outcome.update, None);
            }
        }
    }
    walked
}
