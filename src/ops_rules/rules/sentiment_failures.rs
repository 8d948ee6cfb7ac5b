//! `sentiment_failures_high`: more sentiment-provider errors in the last hour than the
//! threshold.

use super::{Input, Rule, Verdict, measured};
use crate::ops_alerts::Severity;

pub const RULE: Rule = Rule {
    name: "sentiment_failures_high",
    severity: Severity::Warning,
    threshold: |d| Some(d.sentiment_max_failures),
    evaluate,
};

fn evaluate(input: &Input<'_>) -> Verdict {
    let Some(errors) = input
        .tick
        .sentiment
        .as_ref()
        .and_then(|s| s.provider_errors_1h)
    else {
        return Verdict::Absent;
    };
    measured(
        input,
        f64::from(errors),
        false,
        "Sentiment provider failing",
        |threshold| {
            format!("{errors} sentiment provider errors in the last hour (limit {threshold})")
        },
        "provider_errors_1h",
    )
}

#[cfg(test)]
mod tests {
    use super::super::Levels;
    use super::super::testing::{severity, tick, verdict};
    use super::*;
    use serde_json::json;

    #[test]
    fn at_just_below_and_just_above_the_threshold() {
        let levels = Levels::single(Severity::Warning, 5.0);
        let at = |errors: u32| tick(json!({"sentiment": {"provider_errors_1h": errors}}));
        assert_eq!(severity(verdict(&RULE, &at(5), &levels)), None, "at");
        assert_eq!(severity(verdict(&RULE, &at(4), &levels)), None, "below");
        assert_eq!(
            severity(verdict(&RULE, &at(6), &levels)),
            Some(Severity::Warning),
            "above"
        );
        assert_eq!(
            verdict(&RULE, &tick(json!({"sentiment": {}})), &levels),
            Verdict::Absent
        );
    }
}
