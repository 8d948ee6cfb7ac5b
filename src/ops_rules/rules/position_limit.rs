//! `position_limit_breached`: more open positions than the threshold, or a total value
//! over `OPS_MAX_TOTAL_EXPOSURE` (unset: that half is off).

use serde_json::json;

use super::{Input, Rule, Verdict, holds};
use crate::ops_alerts::Severity;

pub const RULE: Rule = Rule {
    name: "position_limit_breached",
    severity: Severity::Warning,
    threshold: |d| Some(d.max_positions),
    evaluate,
};

fn evaluate(input: &Input<'_>) -> Verdict {
    let Some(positions) = input.tick.positions.as_ref() else {
        return Verdict::Absent;
    };
    if positions.count.is_none() && positions.total_value.is_none() {
        return Verdict::Absent;
    }
    let by_count = positions
        .count
        .and_then(|count| input.levels.crossed(f64::from(count), false));
    let by_value = match (positions.total_value, input.max_total_exposure) {
        (Some(value), Some(limit)) if value > limit => Some((RULE.severity, limit)),
        _ => None,
    };
    let severity = match (by_count, by_value) {
        (None, None) => return Verdict::Clear,
        (a, b) => a
            .into_iter()
            .chain(b)
            .map(|(s, _)| s)
            .max()
            .unwrap_or(RULE.severity),
    };
    let mut reasons = Vec::new();
    if let (Some((_, threshold)), Some(count)) = (by_count, positions.count) {
        reasons.push(format!("{count} positions (limit {threshold})"));
    }
    if let (Some((_, limit)), Some(value)) = (by_value, positions.total_value) {
        reasons.push(format!("total value {value} (limit {limit})"));
    }
    holds(
        severity,
        "Position limit breached",
        reasons.join("; "),
        json!({"count": positions.count, "total_value": positions.total_value}),
    )
}

#[cfg(test)]
mod tests {
    use super::super::Levels;
    use super::super::testing::{severity, tick, verdict, verdict_with_exposure};
    use super::*;
    use serde_json::json;

    #[test]
    fn count_at_just_below_and_just_above_the_threshold() {
        let levels = Levels::single(Severity::Warning, 10.0);
        let at = |count: u32| tick(json!({"positions": {"count": count}}));
        assert_eq!(
            severity(verdict(&RULE, &at(10), &levels)),
            None,
            "at: not over"
        );
        assert_eq!(severity(verdict(&RULE, &at(9), &levels)), None, "below");
        assert_eq!(
            severity(verdict(&RULE, &at(11), &levels)),
            Some(Severity::Warning),
            "above"
        );
        assert_eq!(
            verdict(&RULE, &tick(json!({"positions": {"symbols": []}})), &levels),
            Verdict::Absent
        );
        assert_eq!(verdict(&RULE, &tick(json!({})), &levels), Verdict::Absent);
    }

    #[test]
    fn total_value_over_the_exposure_limit() {
        // The test input's OPS_MAX_TOTAL_EXPOSURE is 100000.
        let levels = Levels::single(Severity::Warning, 10.0);
        let at = |value: f64| tick(json!({"positions": {"count": 1, "total_value": value}}));
        assert_eq!(
            severity(verdict(&RULE, &at(100_000.0), &levels)),
            None,
            "at"
        );
        assert_eq!(
            severity(verdict(&RULE, &at(99_999.0), &levels)),
            None,
            "below"
        );
        let Verdict::Holds(finding) = verdict(&RULE, &at(100_000.5), &levels) else {
            panic!()
        };
        assert_eq!(finding.severity, Severity::Warning);
        assert!(
            finding.message.contains("total value"),
            "{}",
            finding.message
        );
        let both = tick(json!({"positions": {"count": 12, "total_value": 200_000.0}}));
        let Verdict::Holds(finding) =
            verdict(&RULE, &both, &Levels::single(Severity::Critical, 10.0))
        else {
            panic!()
        };
        assert_eq!(
            finding.severity,
            Severity::Critical,
            "the higher of the two"
        );
        assert!(
            finding.message.contains("12 positions"),
            "{}",
            finding.message
        );
        // Without OPS_MAX_TOTAL_EXPOSURE only the count counts.
        let rich = tick(json!({"positions": {"count": 1, "total_value": 1e12}}));
        assert_eq!(
            severity(verdict_with_exposure(&RULE, &rich, &levels, None)),
            None
        );
    }
}
