//! `daily_loss_exceeded`: the day's loss reaches the threshold (`risk.daily_loss_pct`
//! ≤ −threshold).

use super::{Input, Rule, Verdict, measured};
use crate::ops_alerts::Severity;

pub const RULE: Rule = Rule {
    name: "daily_loss_exceeded",
    severity: Severity::Critical,
    threshold: |d| Some(d.daily_loss_pct),
    evaluate,
};

fn evaluate(input: &Input<'_>) -> Verdict {
    let Some(pct) = input.tick.risk.as_ref().and_then(|r| r.daily_loss_pct) else {
        return Verdict::Absent;
    };
    measured(
        input,
        -pct,
        true,
        "Daily loss limit exceeded",
        |threshold| format!("daily loss {:.2}% reached the limit of {threshold}%", -pct),
        "daily_loss_pct_lost",
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
        let levels = Levels::single(Severity::Critical, 5.0);
        let at = |pct: f64| tick(json!({"risk": {"daily_loss_pct": pct}}));
        assert_eq!(
            severity(verdict(&RULE, &at(-5.0), &levels)),
            Some(Severity::Critical),
            "at"
        );
        assert_eq!(severity(verdict(&RULE, &at(-4.99), &levels)), None, "below");
        assert_eq!(
            severity(verdict(&RULE, &at(-5.01), &levels)),
            Some(Severity::Critical),
            "above"
        );
        assert_eq!(severity(verdict(&RULE, &at(3.0), &levels)), None, "a gain");
        assert_eq!(
            verdict(&RULE, &tick(json!({"risk": {}})), &levels),
            Verdict::Absent
        );
    }
}
