//! Silences: matchers over an alert's `rule` (also `alertname`), `severity`,
//! `component` and labels — equal or not, exact or a regular expression, all of them
//! must match — active from `starts_at` until `ends_at`. A silenced alert is recorded
//! and listed, never notified. As in Alertmanager, a label an alert lacks reads as the
//! empty string (`env!="prod"` matches an alert without `env`), and `severity` is
//! compared without case (`critical` matches our `CRITICAL`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::storage::ops_alerts::AlertRow;
use crate::validation::ValidationError;

/// Longest matcher value or pattern accepted.
const MAX_VALUE_BYTES: usize = 1024;
/// Most matchers in one silence.
const MAX_MATCHERS: usize = 32;

/// One matcher: the alert field or label `name` equals `value` (or fully matches it as
/// a regular expression), or, when not `equal`, does not.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pattern: Option<regex::Regex>,
    /// `false`: a negative matcher (`!=`, `!~`).
    pub equal: bool,
}

impl Matcher {
    fn matches(&self, field: Option<&str>) -> bool {
        let field = field.unwrap_or("");
        let found = match &self.pattern {
            Some(pattern) => pattern.is_match(field),
            None if self.name == "severity" => field.eq_ignore_ascii_case(&self.value),
            None => field == self.value,
        };
        found == self.equal
    }

    /// Whether it matches the label set `labels` (a missing label reads as empty).
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches(labels.get(&self.name).map(String::as_str))
    }

    /// Whether it is a regular expression.
    pub fn is_regex(&self) -> bool {
        self.pattern.is_some()
    }

    /// The stored form: `{"name", "value", "is_regex", "is_equal"}`.
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "value": self.value, "is_regex": self.pattern.is_some(),
               "is_equal": self.equal})
    }

    /// Builds a matcher; `None` when `value` is not a valid regular expression (anchored,
    /// bounded in size: a catastrophic pattern is refused, never run).
    pub fn new(name: &str, value: &str, is_regex: bool, equal: bool) -> Option<Self> {
        let pattern = if is_regex {
            let anchored = format!("^(?:{value})$");
            Some(
                regex::RegexBuilder::new(&anchored)
                    .size_limit(super::filter_syntax::REGEX_SIZE_LIMIT)
                    .case_insensitive(name == "severity")
                    .build()
                    .ok()?,
            )
        } else {
            None
        };
        Some(Self {
            name: name.to_owned(),
            value: value.to_owned(),
            pattern,
            equal,
        })
    }
}

/// What an alert is matched on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub rule: &'a str,
    pub severity: &'a str,
    pub component: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> Subject<'a> {
    /// A stored episode as a subject, its labels read by [`row_labels`].
    pub fn of(row: &'a AlertRow, labels: &'a BTreeMap<String, String>) -> Self {
        Self {
            rule: &row.rule,
            severity: &row.severity,
            component: &row.component,
            labels,
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        match name {
            "rule" => Some(self.rule),
            "alertname" => Some(
                self.labels
                    .get("alertname")
                    .map_or(self.rule, String::as_str),
            ),
            "severity" => Some(
                self.labels
                    .get("severity")
                    .map_or(self.severity, String::as_str),
            ),
            "component" => Some(self.component),
            label => self.labels.get(label).map(String::as_str),
        }
    }
}

/// A stored episode's labels (its text values).
pub fn row_labels(row: &AlertRow) -> BTreeMap<String, String> {
    serde_json::from_value(row.labels.clone()).unwrap_or_default()
}

/// A silence's matchers and period.
#[derive(Debug, Clone)]
pub struct Silence {
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Silence {
    /// Whether it silences `subject` at `now`.
    pub fn silences(&self, subject: &Subject<'_>, now: DateTime<Utc>) -> bool {
        self.starts_at <= now
            && now < self.ends_at
            && self
                .matchers
                .iter()
                .all(|m| m.matches(subject.field(&m.name)))
    }
}

/// Values every alert's `rule` or `component` could have, to find a pattern that
/// matches all of them (`.*`, `.+`, `[a-z_]+`, …).
const ANY_NAME_PROBES: &[&str] = &[
    "a",
    "z9",
    "circuit_breaker_triggered",
    "dependency_down",
    "system_status",
    "ess_tripped",
    "engine",
    "x-Y.z_0",
    "Q",
];
/// Every severity: a `severity` matcher matching all three silences every alert.
const SEVERITIES: &[&str] = &["INFO", "WARNING", "CRITICAL"];

/// Label values to probe a label matcher with: the empty string is what an alert
/// without the label has.
const ANY_LABEL_PROBES: &[&str] = &["", "a", "z9", "x-Y.z_0", "Q", "prod", "eu-1"];

impl Matcher {
    /// Whether it matches every alert: no probe of its field escapes it. A label
    /// matcher that matches the empty string matches every alert without the label.
    fn matches_every_alert(&self) -> bool {
        let probes = match self.name.as_str() {
            "rule" | "alertname" | "component" => ANY_NAME_PROBES,
            "severity" => SEVERITIES,
            _ => ANY_LABEL_PROBES,
        };
        probes.iter().all(|probe| self.matches(Some(probe)))
    }
}

/// Refuses a silence whose every matcher matches every alert (`rule=~.*`): it would
/// mute every operational alert, the emergency stop included.
pub fn check_not_everything(matchers: &[Matcher]) -> Result<(), ValidationError> {
    if matchers.iter().all(Matcher::matches_every_alert) {
        return Err(ValidationError::new(
            "matchers",
            "match every alert; a silence must leave some alerts out (name a rule, a severity, a component or a label)",
        ));
    }
    Ok(())
}

/// The field names a silence's errors use: the API's own spelling.
#[derive(Debug, Clone, Copy)]
pub struct SilenceFields {
    pub starts_at: &'static str,
    pub ends_at: &'static str,
}

/// Checks the rest of a silence whose matchers parsed: they leave some alerts out, its
/// texts hold no NUL (Postgres stores none), it ends after it starts and lasts at most
/// `max_days`. The error names the field in the spelling of `fields`.
pub fn check_silence(
    matchers: &[Matcher],
    (starts_at, ends_at): (DateTime<Utc>, DateTime<Utc>),
    texts: &[(&str, &str)],
    max_days: u32,
    fields: SilenceFields,
) -> Result<(), ValidationError> {
    check_not_everything(matchers)?;
    for (field, text) in texts {
        if text.contains('\0') {
            return Err(ValidationError::new(
                *field,
                "must not contain a NUL character",
            ));
        }
    }
    if ends_at <= starts_at {
        return Err(ValidationError::new(
            fields.ends_at,
            format!("must be after {}", fields.starts_at),
        ));
    }
    if ends_at - starts_at > chrono::Duration::days(i64::from(max_days)) {
        return Err(ValidationError::new(
            fields.ends_at,
            format!("a silence lasts at most {max_days} days (SILENCE_MAX_DAYS)"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatcher {
    name: String,
    value: String,
    #[serde(default)]
    is_regex: bool,
    #[serde(default = "equal_by_default")]
    is_equal: bool,
}

fn equal_by_default() -> bool {
    true
}

/// Checks a `matchers` document: a non-empty array of `{"name", "value", "is_regex",
/// "is_equal"}` (the last two optional: false, true) with valid patterns. The error names the field (`matchers[1].value`).
pub fn parse_matchers(value: &Value) -> Result<Vec<Matcher>, ValidationError> {
    let entries = value
        .as_array()
        .ok_or_else(|| ValidationError::new("matchers", "must be an array of matchers"))?;
    if entries.is_empty() {
        return Err(ValidationError::new(
            "matchers",
            "must name at least one matcher (a silence of everything is refused)",
        ));
    }
    if entries.len() > MAX_MATCHERS {
        return Err(ValidationError::new(
            "matchers",
            format!("at most {MAX_MATCHERS} matchers"),
        ));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = format!("matchers[{i}]");
            let raw: RawMatcher = serde_json::from_value(entry.clone()).map_err(|_| {
                ValidationError::new(
                    path.clone(),
                    "must be {\"name\": text, \"value\": text, \"is_regex\": bool, \"is_equal\": bool}",
                )
            })?;
            if raw.name.is_empty() {
                return Err(ValidationError::new(
                    format!("{path}.name"),
                    "must not be empty",
                ));
            }
            if raw.value.len() > MAX_VALUE_BYTES {
                return Err(ValidationError::new(
                    format!("{path}.value"),
                    format!("at most {MAX_VALUE_BYTES} bytes"),
                ));
            }
            Matcher::new(&raw.name, &raw.value, raw.is_regex, raw.is_equal).ok_or_else(|| {
                ValidationError::new(
                    format!("{path}.value"),
                    "is not a valid regular expression (or one over the size limit)",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(labels: &BTreeMap<String, String>) -> Subject<'_> {
        Subject {
            rule: "engine_heartbeat_lapsed",
            severity: "CRITICAL",
            component: "engine",
            labels,
        }
    }

    #[test]
    fn every_matcher_must_match_within_the_period() {
        let labels = BTreeMap::from([("engine".to_owned(), "eu-1".to_owned())]);
        let now = Utc::now();
        let silence = |matchers: Value| Silence {
            matchers: parse_matchers(&matchers).unwrap(),
            starts_at: now - chrono::Duration::minutes(1),
            ends_at: now + chrono::Duration::minutes(1),
        };
        let exact = silence(json!([{"name": "rule", "value": "engine_heartbeat_lapsed"},
                                   {"name": "engine", "value": "eu-1"}]));
        assert!(exact.silences(&subject(&labels), now));
        let regex = silence(json!([{"name": "engine", "value": "eu-.*", "is_regex": true}]));
        assert!(regex.silences(&subject(&labels), now));
        let partial = silence(json!([{"name": "engine", "value": "eu", "is_regex": true}]));
        assert!(!partial.silences(&subject(&labels), now), "anchored");
        let other = silence(json!([{"name": "severity", "value": "INFO"}]));
        assert!(!other.silences(&subject(&labels), now));
        // As in Alertmanager, a label the alert lacks reads as empty.
        let missing = silence(json!([{"name": "region", "value": ".+", "is_regex": true}]));
        assert!(!missing.silences(&subject(&labels), now), "absent label");
        let absent = silence(json!([{"name": "region", "value": ""}]));
        assert!(
            absent.silences(&subject(&labels), now),
            "absent reads as empty"
        );
        let not_prod = silence(json!([{"name": "region", "value": "prod", "is_equal": false}]));
        assert!(
            not_prod.silences(&subject(&labels), now),
            "negative, label absent"
        );
        let not_eu = silence(
            json!([{"name": "engine", "value": "eu-.*", "is_regex": true,
                                     "is_equal": false}]),
        );
        assert!(!not_eu.silences(&subject(&labels), now), "negative regex");
        // alertname is the rule; severity compares without case.
        let by_alertname = silence(
            json!([{"name": "alertname", "value": "engine_heartbeat_lapsed"},
                                          {"name": "severity", "value": "critical"}]),
        );
        assert!(by_alertname.silences(&subject(&labels), now));
        let crit = silence(json!([{"name": "severity", "value": "crit.*", "is_regex": true}]));
        assert!(crit.silences(&subject(&labels), now));
        assert!(!exact.silences(&subject(&labels), now + chrono::Duration::minutes(2)));
    }

    #[test]
    fn a_silence_of_every_alert_is_refused() {
        let everything = |v: Value| check_not_everything(&parse_matchers(&v).unwrap()).is_err();
        let regex =
            |name: &str, value: &str| json!({"name": name, "value": value, "is_regex": true});
        assert!(everything(json!([regex("rule", ".*")])));
        assert!(everything(json!([
            regex("rule", ".+"),
            regex("component", ".*")
        ])));
        assert!(everything(json!([regex(
            "severity",
            "INFO|WARNING|CRITICAL"
        )])));
        assert!(everything(json!([regex("component", "(?s).*")])));
        assert!(!everything(json!([regex("rule", "dependency_.*")])));
        assert!(!everything(json!([regex("severity", "INFO|WARNING")])));
        assert!(!everything(json!([
            regex("rule", ".*"),
            regex("severity", "INFO")
        ])));
        assert!(
            everything(json!([regex("engine_id", ".*")])),
            "matches the alerts without the label too"
        );
        assert!(!everything(json!([regex("engine_id", ".+")])));
        assert!(everything(json!([regex("alertname", ".*")])));
        assert!(everything(
            json!([{"name": "env", "value": "staging", "is_equal": false}])
        ));
        assert!(!everything(
            json!([{"name": "alertname", "value": "x", "is_equal": false},
                   {"name": "env", "value": "prod"}])
        ));
        assert!(!everything(
            json!([{"name": "rule", "value": "system_status"}])
        ));
    }

    #[test]
    fn bad_matchers_name_their_field() {
        let error = |v: Value| parse_matchers(&v).unwrap_err().to_string();
        assert!(error(json!([])).starts_with("matchers: must name at least one"));
        assert!(error(json!({})).starts_with("matchers: must be an array"));
        assert!(
            error(json!([{"name": "rule", "value": "(", "is_regex": true}]))
                .starts_with("matchers[0].value: is not a valid regular expression")
        );
        assert!(error(json!([{"name": "", "value": "x"}])).starts_with("matchers[0].name"));
        assert!(error(json!([{"name": "rule"}])).starts_with("matchers[0]: must be"));
    }
}
