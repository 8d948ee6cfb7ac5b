//! `circuit_breaker_triggered`: the engine reports its circuit breaker active.

use serde_json::json;

use super::{Input, Rule, Verdict, holds};
use crate::ops_alerts::Severity;

pub const RULE: Rule = Rule {
    name: "circuit_breaker_triggered",
    severity: Severity::Critical,
    threshold: |_| None,
    evaluate,
};

fn evaluate(input: &Input<'_>) -> Verdict {
    let Some(active) = input
        .tick
        .risk
        .as_ref()
        .and_then(|r| r.circuit_breaker_active)
    else {
        return Verdict::Absent;
    };
    if !active {
        return Verdict::Clear;
    }
    // A thresholds row may change the severity: its highest level applies.
    let severity = input.levels.highest(RULE.severity);
    holds(
        severity,
        "Circuit breaker triggered",
        format!(
            "the circuit breaker of engine {} is active",
            input.tick.engine_id
        ),
        json!({"circuit_breaker_active": true}),
    )
}

#[cfg(test)]
mod tests {
    use super::super::Levels;
    use super::super::testing::{severity, tick, verdict};
    use super::*;
    use serde_json::json;

    #[test]
    fn holds_while_active() {
        let levels = Levels(Vec::new());
        let at = |active: bool| tick(json!({"risk": {"circuit_breaker_active": active}}));
        assert_eq!(
            severity(verdict(&RULE, &at(true), &levels)),
            Some(Severity::Critical)
        );
        assert_eq!(severity(verdict(&RULE, &at(false), &levels)), None);
        assert_eq!(
            verdict(&RULE, &tick(json!({"risk": {}})), &levels),
            Verdict::Absent
        );
        assert_eq!(verdict(&RULE, &tick(json!({})), &levels), Verdict::Absent);
        let warning = Levels::single(Severity::Warning, 0.0);
        assert_eq!(
            severity(verdict(&RULE, &at(true), &warning)),
            Some(Severity::Warning)
        );
    }
}
