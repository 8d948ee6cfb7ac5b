//! The trigger decision: a pure function of the strategy, its evaluation and its
//! stored state, so every replica evaluating the same batch decides the same and
//! derives the same dedup key.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::logic_tree::Tri;
use crate::strategy::{CompiledStrategy, TriggerMode};

/// What is known when a strategy has been evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerContext {
    pub result: Tri,
    /// The tree's result at the previous evaluation (`None`: unknown, or never).
    pub previous_result: Option<bool>,
    pub last_triggered_at: Option<DateTime<Utc>>,
    /// When the batch was due (its boundary): the same on every replica.
    pub scheduled_at: DateTime<Utc>,
    /// Open time of the bar the evaluation belongs to (the strategy's bar interval),
    /// Unix ms; for `once_per_bar_close`, the bar that just closed.
    pub bar_open_ms: Option<i64>,
}

/// Why a true evaluation does not fire (also reported by simulate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// The tree is false or unknown.
    NotTrue,
    /// Past `expires_at`: the strategy is to become `expired`.
    Expired,
    /// Fired less than `cooldown_seconds` ago.
    Cooldown,
    /// Already fired in this bar.
    SameBar,
    /// Was already true: not a rising edge.
    NotRisingEdge,
    /// A bar mode without a bar (no candle data): nothing to deduplicate by.
    NoBar,
    /// A `once_per_bar_close` strategy evaluated on its timer: it fires only when its
    /// bar closes.
    AwaitsClose,
    /// Simulation only: this period's (or bar's) trigger was already claimed.
    AlreadyTriggered,
    /// Simulation only: the strategy is not `active` (paused, completed, expired).
    Inactive,
    /// Simulation only: the strategy does not compile (status `error`).
    Invalid,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::NotTrue => "not_true",
            Suppression::Expired => "expired",
            Suppression::Cooldown => "cooldown",
            Suppression::SameBar => "same_bar",
            Suppression::NotRisingEdge => "not_rising_edge",
            Suppression::NoBar => "no_bar",
            Suppression::AwaitsClose => "awaits_close",
            Suppression::AlreadyTriggered => "already_triggered",
            Suppression::Inactive => "inactive",
            Suppression::Invalid => "invalid",
        }
    }
}

/// Fire (claiming `dedup_key`) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Fire { dedup_key: String },
    Suppressed(Suppression),
}

/// Applies expiry, the trigger mode and the cooldown. The cooldown throttles
/// `every_time` and `on_rising_edge`; `once` fires once; the bar modes fire once per
/// bar. The dedup key is the strategy plus the batch's due time (or the bar, or
/// `once`), so two replicas, or a retry after a crash, claim the same key.
pub fn decide(strategy: &CompiledStrategy, ctx: &TriggerContext) -> Decision {
    use Decision::{Fire, Suppressed};
    if ctx.result != Tri::True {
        return Suppressed(Suppression::NotTrue);
    }
    if strategy.expires_at.is_some_and(|at| at <= ctx.scheduled_at) {
        return Suppressed(Suppression::Expired);
    }
    let id = strategy.id;
    let due_ms = ctx.scheduled_at.timestamp_millis();
    let cooling = || {
        let cooldown = chrono::Duration::seconds(i64::from(strategy.cooldown_seconds));
        ctx.last_triggered_at
            .is_some_and(|last| ctx.scheduled_at < last + cooldown)
    };
    match strategy.trigger_mode {
        TriggerMode::EveryTime if cooling() => Suppressed(Suppression::Cooldown),
        TriggerMode::EveryTime => Fire {
            dedup_key: format!("{id}:at:{due_ms}"),
        },
        TriggerMode::Once => Fire {
            dedup_key: format!("{id}:once"),
        },
        TriggerMode::OncePerBar | TriggerMode::OncePerBarClose => match ctx.bar_open_ms {
            None => Suppressed(Suppression::NoBar),
            Some(bar)
                if ctx.last_triggered_at.is_some_and(|last| {
                    last.timestamp_millis() >= same_bar_from(strategy, bar)
                }) =>
            {
                Suppressed(Suppression::SameBar)
            }
            Some(bar) => Fire {
                dedup_key: format!("{id}:bar:{bar}"),
            },
        },
        TriggerMode::OnRisingEdge if ctx.previous_result == Some(true) => {
            Suppressed(Suppression::NotRisingEdge)
        }
        TriggerMode::OnRisingEdge if cooling() => Suppressed(Suppression::Cooldown),
        TriggerMode::OnRisingEdge => Fire {
            dedup_key: format!("{id}:edge:{due_ms}"),
        },
    }
}

/// The earliest trigger time that belongs to the bar opened at `bar` (Unix ms): its
/// open for `once_per_bar`, its close for `once_per_bar_close` — whose triggers are
/// stamped with the close of their bar, which is the next bar's open.
fn same_bar_from(strategy: &CompiledStrategy, bar: i64) -> i64 {
    match strategy.bar_interval {
        Some(interval) if strategy.trigger_mode == TriggerMode::OncePerBarClose => {
            bar + interval.millis()
        }
        _ => bar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::SymbolInterner;
    use crate::strategy::ResolvedStrategy;
    use serde_json::json;
    use uuid::Uuid;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn strategy(mode: &str, cooldown: i32, expires_at: Option<&str>) -> CompiledStrategy {
        let id = Uuid::from_u128(7);
        let condition = Uuid::from_u128(8);
        let mut resolved = ResolvedStrategy::with_one_condition(
            id,
            condition,
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                   "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
        );
        resolved.row.trigger_mode = mode.into();
        resolved.row.cooldown_seconds = cooldown;
        resolved.row.expires_at = expires_at.map(at);
        CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).unwrap()
    }

    fn ctx(result: Tri) -> TriggerContext {
        TriggerContext {
            result,
            previous_result: Some(false),
            last_triggered_at: None,
            scheduled_at: at("2026-11-23T10:05:00Z"),
            bar_open_ms: Some(at("2026-11-23T10:00:00Z").timestamp_millis()),
        }
    }

    fn key(decision: Decision) -> String {
        match decision {
            Decision::Fire { dedup_key } => dedup_key,
            other => panic!("expected to fire, got {other:?}"),
        }
    }

    #[test]
    fn only_true_fires_and_expiry_wins() {
        let s = strategy("every_time", 300, None);
        assert_eq!(
            decide(&s, &ctx(Tri::False)),
            Decision::Suppressed(Suppression::NotTrue)
        );
        assert_eq!(
            decide(&s, &ctx(Tri::Unknown)),
            Decision::Suppressed(Suppression::NotTrue)
        );
        let expired = strategy("every_time", 300, Some("2026-11-23T10:05:00Z"));
        assert_eq!(
            decide(&expired, &ctx(Tri::True)),
            Decision::Suppressed(Suppression::Expired)
        );
    }

    #[test]
    fn every_time_respects_the_cooldown_and_keys_by_due_time() {
        let s = strategy("every_time", 300, None);
        let first = key(decide(&s, &ctx(Tri::True)));
        assert_eq!(
            first,
            format!(
                "{}:at:{}",
                s.id,
                at("2026-11-23T10:05:00Z").timestamp_millis()
            )
        );
        let mut later = ctx(Tri::True);
        later.last_triggered_at = Some(at("2026-11-23T10:01:00Z"));
        assert_eq!(
            decide(&s, &later),
            Decision::Suppressed(Suppression::Cooldown)
        );
        later.last_triggered_at = Some(at("2026-11-23T10:00:00Z"));
        assert_eq!(
            key(decide(&s, &later)),
            first,
            "exactly 300 s later fires again"
        );
    }

    #[test]
    fn once_fires_under_one_key_whatever_the_time() {
        let s = strategy("once", 300, None);
        let mut other_time = ctx(Tri::True);
        other_time.scheduled_at = at("2026-12-01T00:00:00Z");
        assert_eq!(
            key(decide(&s, &ctx(Tri::True))),
            key(decide(&s, &other_time))
        );
    }

    #[test]
    fn bar_modes_fire_once_per_bar() {
        for mode in ["once_per_bar", "once_per_bar_close"] {
            let s = strategy(mode, 300, None);
            let bar = at("2026-11-23T10:00:00Z").timestamp_millis();
            assert_eq!(
                key(decide(&s, &ctx(Tri::True))),
                format!("{}:bar:{bar}", s.id)
            );
            // Already fired in this bar: during it (timer), or at its close (close).
            let fired_in_bar = match mode {
                "once_per_bar" => "2026-11-23T10:01:00Z",
                _ => "2026-11-23T11:00:00Z",
            };
            let mut same = ctx(Tri::True);
            same.last_triggered_at = Some(at(fired_in_bar));
            assert_eq!(
                decide(&s, &same),
                Decision::Suppressed(Suppression::SameBar)
            );
            if mode == "once_per_bar_close" {
                // Fired at the previous bar's close, which is this bar's open.
                let mut after_previous_close = ctx(Tri::True);
                after_previous_close.last_triggered_at = Some(at("2026-11-23T10:00:00Z"));
                assert_eq!(
                    key(decide(&s, &after_previous_close)),
                    format!("{}:bar:{bar}", s.id),
                    "every close fires, not every other one"
                );
            }
            let mut next_bar = same.clone();
            next_bar.bar_open_ms = Some(at("2026-11-23T11:00:00Z").timestamp_millis());
            assert!(
                matches!(decide(&s, &next_bar), Decision::Fire { .. }),
                "no cooldown across bars"
            );
            let mut no_bar = ctx(Tri::True);
            no_bar.bar_open_ms = None;
            assert_eq!(
                decide(&s, &no_bar),
                Decision::Suppressed(Suppression::NoBar)
            );
        }
    }

    #[test]
    fn rising_edges_fire_from_not_true_only() {
        let s = strategy("on_rising_edge", 300, None);
        assert!(matches!(decide(&s, &ctx(Tri::True)), Decision::Fire { .. }));
        let mut from_unknown = ctx(Tri::True);
        from_unknown.previous_result = None;
        assert!(matches!(decide(&s, &from_unknown), Decision::Fire { .. }));
        let mut still_true = ctx(Tri::True);
        still_true.previous_result = Some(true);
        assert_eq!(
            decide(&s, &still_true),
            Decision::Suppressed(Suppression::NotRisingEdge)
        );
        let mut flapping = ctx(Tri::True);
        flapping.last_triggered_at = Some(at("2026-11-23T10:04:00Z"));
        assert_eq!(
            decide(&s, &flapping),
            Decision::Suppressed(Suppression::Cooldown)
        );
    }
}
