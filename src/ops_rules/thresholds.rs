//! Which levels a rule applies to an engine: an `alert_thresholds` row for the rule and
//! that engine, else one for the rule and every engine, else the rule's default (its
//! `OPS_*` threshold at its default severity). A row's `low`, `medium` and `high` are
//! the thresholds of INFO, WARNING and CRITICAL; a disabled row turns the rule off.

use super::rules::{Defaults, Levels, Rule};
use crate::ops_alerts::Severity;
use crate::storage::alert_thresholds::ThresholdRow;

/// How a rule applies to an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Off,
    On(Levels),
}

/// The setting of `rule` for `engine_id` given every thresholds row.
pub fn setting(
    rule: &Rule,
    engine_id: &str,
    rows: &[ThresholdRow],
    defaults: &Defaults,
) -> Setting {
    let of_rule = rows.iter().filter(|row| row.rule == rule.name);
    let row = of_rule
        .clone()
        .find(|row| row.engine_id.as_deref() == Some(engine_id))
        .or_else(|| of_rule.clone().find(|row| row.engine_id.is_none()));
    let default = || {
        Levels(
            (rule.threshold)(defaults)
                .map(|threshold| vec![(rule.severity, threshold)])
                .unwrap_or_default(),
        )
    };
    match row {
        Some(row) if !row.enabled => Setting::Off,
        Some(row) => {
            let levels: Vec<(Severity, f64)> = [
                (Severity::Info, row.low),
                (Severity::Warning, row.medium),
                (Severity::Critical, row.high),
            ]
            .into_iter()
            .filter_map(|(severity, threshold)| Some((severity, threshold?)))
            .filter(|(_, threshold)| threshold.is_finite())
            .collect();
            if levels.is_empty() {
                Setting::On(default())
            } else {
                Setting::On(Levels(levels))
            }
        }
        None => Setting::On(default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops_rules::rules::RULES;

    fn row(engine: Option<&str>, levels: [Option<f64>; 3], enabled: bool) -> ThresholdRow {
        ThresholdRow {
            rule: "daily_loss_exceeded".into(),
            engine_id: engine.map(str::to_owned),
            low: levels[0],
            medium: levels[1],
            high: levels[2],
            enabled,
        }
    }

    #[test]
    fn an_engine_row_beats_the_global_row_which_beats_the_default() {
        let daily_loss = RULES
            .iter()
            .find(|r| r.name == "daily_loss_exceeded")
            .unwrap();
        let defaults = Defaults::default();
        assert_eq!(
            setting(daily_loss, "a", &[], &defaults),
            Setting::On(Levels::single(Severity::Critical, 5.0))
        );
        let rows = [
            row(None, [Some(1.0), Some(2.0), Some(3.0)], true),
            row(Some("b"), [None, Some(4.0), None], true),
            row(Some("c"), [Some(1.0), None, None], false),
        ];
        assert_eq!(
            setting(daily_loss, "a", &rows, &defaults),
            Setting::On(Levels(vec![
                (Severity::Info, 1.0),
                (Severity::Warning, 2.0),
                (Severity::Critical, 3.0)
            ]))
        );
        assert_eq!(
            setting(daily_loss, "b", &rows, &defaults),
            Setting::On(Levels::single(Severity::Warning, 4.0))
        );
        assert_eq!(setting(daily_loss, "c", &rows, &defaults), Setting::Off);
        let empty = [row(None, [None, None, None], true)];
        assert_eq!(
            setting(daily_loss, "a", &empty, &defaults),
            Setting::On(Levels::single(Severity::Critical, 5.0))
        );
    }
}
