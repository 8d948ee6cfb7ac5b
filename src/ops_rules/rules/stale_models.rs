//! `stale_teacher_model` / `stale_student_model`: a model artifact older than the
//! threshold, or reported `null` (missing).

use serde_json::json;

use super::super::tick::Artifacts;
use super::{Input, Rule, Verdict, holds, measured};
use crate::ops_alerts::Severity;

pub const TEACHER: Rule = Rule {
    name: "stale_teacher_model",
    severity: Severity::Warning,
    threshold: |d| Some(d.artifact_max_age_hours),
    evaluate: |input| evaluate(input, "teacher", |a| a.teacher_model_age_hours),
};

pub const STUDENT: Rule = Rule {
    name: "stale_student_model",
    severity: Severity::Warning,
    threshold: |d| Some(d.artifact_max_age_hours),
    evaluate: |input| evaluate(input, "student", |a| a.student_model_age_hours),
};

fn evaluate(input: &Input<'_>, model: &str, age: fn(&Artifacts) -> Option<Option<f64>>) -> Verdict {
    let Some(age) = input.tick.artifacts.as_ref().and_then(age) else {
        return Verdict::Absent;
    };
    let title = format!("Stale {model} model");
    let Some(hours) = age else {
        // Missing: as stale as it gets, at the highest level.
        let severity = input.levels.highest(Severity::Warning);
        return holds(
            severity,
            &title,
            format!("the {model} model artifact is missing"),
            json!({ "age_hours": null, "missing": true }),
        );
    };
    measured(
        input,
        hours,
        false,
        &title,
        |threshold| format!("the {model} model is {hours} hours old (limit {threshold})"),
        "age_hours",
    )
}

#[cfg(test)]
mod tests {
    use super::super::Levels;
    use super::super::testing::{severity, tick, verdict};
    use super::*;
    use serde_json::json;

    #[test]
    fn age_at_just_below_and_just_above_and_missing() {
        let levels = Levels::single(Severity::Warning, 24.0);
        for (rule, field) in [
            (TEACHER, "teacher_model_age_hours"),
            (STUDENT, "student_model_age_hours"),
        ] {
            let at = |age: serde_json::Value| tick(json!({"artifacts": {field: age}}));
            assert_eq!(
                severity(verdict(&rule, &at(json!(24.0)), &levels)),
                None,
                "{field} at"
            );
            assert_eq!(
                severity(verdict(&rule, &at(json!(23.9)), &levels)),
                None,
                "{field} below"
            );
            assert_eq!(
                severity(verdict(&rule, &at(json!(24.1)), &levels)),
                Some(Severity::Warning)
            );
            let Verdict::Holds(missing) = verdict(&rule, &at(json!(null)), &levels) else {
                panic!()
            };
            assert!(missing.message.contains("missing"));
            assert_eq!(
                verdict(&rule, &tick(json!({"artifacts": {}})), &levels),
                Verdict::Absent
            );
        }
    }
}
