//! `connectivity_lost`: the broker session is not authenticated, or the last API call
//! is older than the threshold (seconds before the tick's time).

use serde_json::json;

use super::{Input, Rule, Verdict, holds};
use crate::ops_alerts::Severity;

pub const RULE: Rule = Rule {
    name: "connectivity_lost",
    severity: Severity::Critical,
    threshold: |d| Some(d.connectivity_max_silence_seconds),
    evaluate,
};

fn evaluate(input: &Input<'_>) -> Verdict {
    let Some(connectivity) = input.tick.connectivity.as_ref() else {
        return Verdict::Absent;
    };
    if connectivity.breeze_authenticated.is_none() && connectivity.last_api_call.is_none() {
        return Verdict::Absent;
    }
    let silence = connectivity
        .last_api_call
        .map(|call| (input.at - call).num_milliseconds() as f64 / 1000.0);
    let by_silence = silence.and_then(|s| input.levels.crossed(s, false));
    let unauthenticated = connectivity.breeze_authenticated == Some(false);
    if !unauthenticated && by_silence.is_none() {
        return Verdict::Clear;
    }
    let highest = input.levels.highest(RULE.severity);
    let severity = if unauthenticated {
        highest
    } else {
        by_silence.map_or(highest, |(s, _)| s)
    };
    let mut reasons = Vec::new();
    if unauthenticated {
        reasons.push("the broker session is not authenticated".to_owned());
    }
    if let (Some((_, threshold)), Some(seconds)) = (by_silence, silence) {
        reasons.push(format!(
            "no API call for {seconds:.0} s (limit {threshold} s)"
        ));
    }
    holds(
        severity,
        "Connectivity lost",
        reasons.join("; "),
        json!({"breeze_authenticated": connectivity.breeze_authenticated,
               "seconds_since_last_api_call": silence}),
    )
}

#[cfg(test)]
mod tests {
    use super::super::Levels;
    use super::super::testing::{severity, tick, verdict};
    use super::*;
    use serde_json::json;

    #[test]
    fn silence_at_just_below_and_just_above_the_threshold() {
        // The test input's time is 12:00:00.
        let levels = Levels::single(Severity::Critical, 300.0);
        let at = |call: &str| {
            tick(json!({"connectivity": {"breeze_authenticated": true, "last_api_call": call}}))
        };
        assert_eq!(
            severity(verdict(&RULE, &at("2026-12-02T11:55:00Z"), &levels)),
            None,
            "at"
        );
        assert_eq!(
            severity(verdict(&RULE, &at("2026-12-02T11:55:01Z"), &levels)),
            None,
            "below"
        );
        assert_eq!(
            severity(verdict(&RULE, &at("2026-12-02T11:54:59Z"), &levels)),
            Some(Severity::Critical)
        );
        assert_eq!(
            verdict(&RULE, &tick(json!({"connectivity": {}})), &levels),
            Verdict::Absent
        );
    }

    #[test]
    fn an_unauthenticated_session_holds_at_once() {
        let levels = Levels::single(Severity::Critical, 300.0);
        let Verdict::Holds(finding) = verdict(
            &RULE,
            &tick(json!({"connectivity": {"breeze_authenticated": false}})),
            &levels,
        ) else {
            panic!()
        };
        assert_eq!(finding.severity, Severity::Critical);
        assert!(finding.message.contains("not authenticated"));
        let both = tick(
            json!({"connectivity": {"breeze_authenticated": false, "last_api_call": "2026-12-02T10:00:00Z"}}),
        );
        let Verdict::Holds(finding) = verdict(&RULE, &both, &levels) else {
            panic!()
        };
        assert!(
            finding.message.contains("no API call for 7200 s"),
            "{}",
            finding.message
        );
    }
}
