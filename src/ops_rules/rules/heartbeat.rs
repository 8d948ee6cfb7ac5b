//! `heartbeat_lapsed`: no tick received from an engine (by the server's clock) for the
//! threshold. A tick is itself a heartbeat, so on a tick the rule is clear; it is held
//! by a timer ([`lapsed`]), which also covers the engines of `OPS_EXPECTED_ENGINES`
//! that never ticked.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Finding, Input, Levels, Rule, Verdict};
use crate::ops_alerts::Severity;

/// The rule's name.
pub const HEARTBEAT_LAPSED: &str = "heartbeat_lapsed";

pub const RULE: Rule = Rule {
    name: HEARTBEAT_LAPSED,
    severity: Severity::Critical,
    threshold: |d| Some(d.heartbeat_lapse_seconds),
    evaluate: |_: &Input<'_>| Verdict::Clear,
};

/// Whether an engine last heard from at `last_received` (never: `None`) has lapsed at
/// `now`.
pub fn lapsed(
    engine_id: &str,
    last_received: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    levels: &Levels,
) -> Option<Finding> {
    let Some(last) = last_received else {
        let severity = levels.highest(RULE.severity);
        return Some(Finding {
            severity,
            title: "Engine heartbeat lapsed".to_owned(),
            message: format!("expected engine {engine_id} has never sent a tick"),
            context: json!({"last_tick_received_at": null}),
        });
    };
    let silence = (now - last).num_milliseconds() as f64 / 1000.0;
    let (severity, threshold) = levels.crossed(silence, false)?;
    Some(Finding {
        severity,
        title: "Engine heartbeat lapsed".to_owned(),
        message: format!(
            "no tick from engine {engine_id} for {silence:.0} s (limit {threshold} s)"
        ),
        context: json!({"last_tick_received_at": last, "silence_seconds": silence}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{tick, verdict};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tick_clears_and_silence_lapses_past_the_threshold() {
        let levels = Levels::single(Severity::Critical, 180.0);
        assert_eq!(verdict(&RULE, &tick(json!({})), &levels), Verdict::Clear);
        let now: DateTime<Utc> = "2026-12-02T12:00:00Z".parse().unwrap();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        assert!(lapsed("e", ago(180), now, &levels).is_none(), "at");
        assert!(lapsed("e", ago(179), now, &levels).is_none(), "below");
        assert_eq!(
            lapsed("e", ago(181), now, &levels).unwrap().severity,
            Severity::Critical
        );
        let never = lapsed("e", None, now, &levels).unwrap();
        assert!(never.message.contains("never sent"));
    }
}
