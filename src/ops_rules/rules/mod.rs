//! The operational rules over engine ticks (DESIGN §12). Each rule is a small pure
//! function of the tick, the time it was received and its levels, in a module of its
//! own, registered in [`RULES`]: adding a rule is one module and one line here.

pub(super) mod circuit_breaker;
pub(super) mod connectivity;
mod daily_loss;
mod heartbeat;
mod position_limit;
mod sentiment_failures;
pub(super) mod stale_models;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::tick::Tick;
use crate::ops_alerts::Severity;

pub use heartbeat::{HEARTBEAT_LAPSED, lapsed};

/// A rule's thresholds, lowest severity first: the highest one crossed gives the
/// severity.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels(pub Vec<(Severity, f64)>);

impl Levels {
    /// One threshold at one severity.
    pub fn single(severity: Severity, threshold: f64) -> Self {
        Self(vec![(severity, threshold)])
    }

    /// The highest severity whose threshold `value` is above (or reaches, when
    /// `inclusive`).
    pub fn crossed(&self, value: f64, inclusive: bool) -> Option<(Severity, f64)> {
        self.0
            .iter()
            .filter(|(_, threshold)| {
                if inclusive {
                    value >= *threshold
                } else {
                    value > *threshold
                }
            })
            .max_by_key(|(severity, _)| *severity)
            .copied()
    }

    /// The highest severity among the levels, else `default` (no level): the severity
    /// of a rule that holds outright (a flag, a missing artifact).
    pub fn highest(&self, default: Severity) -> Severity {
        self.0.iter().map(|(s, _)| *s).max().unwrap_or(default)
    }
}

/// What a rule found in a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The tick does not carry the rule's data: the rule was not evaluated.
    Absent,
    /// The rule does not hold.
    Clear,
    /// The rule holds.
    Holds(Finding),
}

/// A rule holding: the alert it raises.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub context: Value,
}

/// What a rule sees.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub tick: &'a Tick,
    /// The tick's time: its own timestamp, else when it was received.
    pub at: DateTime<Utc>,
    pub levels: &'a Levels,
    /// `OPS_MAX_TOTAL_EXPOSURE` (position limits only).
    pub max_total_exposure: Option<f64>,
}

/// Default thresholds from the configuration (`OPS_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub daily_loss_pct: f64,
    pub max_positions: f64,
    pub max_total_exposure: Option<f64>,
    pub sentiment_max_failures: f64,
    pub artifact_max_age_hours: f64,
    pub connectivity_max_silence_seconds: f64,
    pub heartbeat_lapse_seconds: f64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            daily_loss_pct: 5.0,
            max_positions: 10.0,
            max_total_exposure: None,
            sentiment_max_failures: 5.0,
            artifact_max_age_hours: 24.0,
            connectivity_max_silence_seconds: 300.0,
            heartbeat_lapse_seconds: 180.0,
        }
    }
}

/// One rule: its name, its default severity and threshold, and its evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    /// The default threshold (`None`: the rule has none, e.g. the circuit breaker).
    pub threshold: fn(&Defaults) -> Option<f64>,
    pub evaluate: fn(&Input<'_>) -> Verdict,
}

/// Every rule evaluated on a tick, in order.
pub const RULES: &[Rule] = &[
    circuit_breaker::RULE,
    daily_loss::RULE,
    position_limit::RULE,
    sentiment_failures::RULE,
    stale_models::TEACHER,
    stale_models::STUDENT,
    connectivity::RULE,
    heartbeat::RULE,
];

/// A finding at `severity` with a context.
fn holds(severity: Severity, title: &str, message: String, context: Value) -> Verdict {
    Verdict::Holds(Finding {
        severity,
        title: title.to_owned(),
        message,
        context,
    })
}

/// A measure against the levels: holds at the highest level crossed.
fn measured(
    input: &Input<'_>,
    value: f64,
    inclusive: bool,
    title: &str,
    describe: impl Fn(f64) -> String,
    field: &str,
) -> Verdict {
    match input.levels.crossed(value, inclusive) {
        Some((severity, threshold)) => holds(
            severity,
            title,
            describe(threshold),
            serde_json::json!({ field: value, "threshold": threshold }),
        ),
        None => Verdict::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_level_crossed_wins() {
        let levels = Levels(vec![
            (Severity::Info, 1.0),
            (Severity::Warning, 2.0),
            (Severity::Critical, 3.0),
        ]);
        assert_eq!(levels.crossed(0.5, false), None);
        assert_eq!(levels.crossed(1.0, false), None);
        assert_eq!(levels.crossed(1.0, true), Some((Severity::Info, 1.0)));
        assert_eq!(levels.crossed(2.5, false), Some((Severity::Warning, 2.0)));
        assert_eq!(levels.crossed(9.0, false), Some((Severity::Critical, 3.0)));
        assert_eq!(levels.highest(Severity::Info), Severity::Critical);
        assert_eq!(
            Levels(Vec::new()).highest(Severity::Warning),
            Severity::Warning
        );
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        for name in &names {
            assert_eq!(
                crate::ops_alerts::rule_label(name),
                *name,
                "{name} is a known rule"
            );
        }
        assert_eq!(names.len(), 8);
    }
}

/// Ticks and inputs for the rules' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A tick from its JSON.
    pub fn tick(json: serde_json::Value) -> Tick {
        crate::ops_rules::tick::parse(json.to_string().as_bytes()).unwrap()
    }

    /// `rule` on `tick` at 2026-12-02T12:00:00Z with `levels` (and a total exposure
    /// limit of 100000).
    pub fn verdict(rule: &Rule, tick: &Tick, levels: &Levels) -> Verdict {
        verdict_with_exposure(rule, tick, levels, Some(100_000.0))
    }

    /// As [`verdict`], with `OPS_MAX_TOTAL_EXPOSURE` = `exposure`.
    pub fn verdict_with_exposure(
        rule: &Rule,
        tick: &Tick,
        levels: &Levels,
        exposure: Option<f64>,
    ) -> Verdict {
        (rule.evaluate)(&Input {
            tick,
            at: "2026-12-02T12:00:00Z".parse().unwrap(),
            levels,
            max_total_exposure: exposure,
        })
    }

    /// The severity a verdict holds at (`None`: clear), panicking on `Absent`.
    pub fn severity(verdict: Verdict) -> Option<Severity> {
        match verdict {
            Verdict::Holds(finding) => Some(finding.severity),
            Verdict::Clear => None,
            Verdict::Absent => panic!("not evaluated"),
        }
    }
}
