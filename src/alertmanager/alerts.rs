//! Our episodes as Alertmanager 0.25's `gettableAlert` and `alertGroup`. Every firing
//! episode is listed — posted ones with the labels they came with, our own with
//! `alertname` (the rule), `severity` (lower case) and `component` added when their
//! labels lack them. The receiver is the severity's route; an alert a silence covers
//! is `suppressed`, `silencedBy` naming the silences.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::query::ListQuery;
use crate::ops_alerts::{Silence, Subject, fingerprint, row_labels};
use crate::storage::ops_alerts::AlertRow;

/// `receiver`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Receiver {
    pub name: String,
}

/// `alertStatus`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    /// `active` or `suppressed` (we process every alert as it arrives: never
    /// `unprocessed`).
    pub state: &'static str,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

/// `gettableAlert`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub receivers: Vec<Receiver>,
    pub fingerprint: String,
    pub starts_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
    pub status: AlertStatus,
}

/// `alertGroup`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertGroup {
    pub labels: BTreeMap<String, String>,
    pub receiver: Receiver,
    pub alerts: Vec<GettableAlert>,
}

fn text_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The labels Alertmanager's clients see for `row`: a posted alert's own (it has an
/// `alertname`), ours with `alertname`, `severity` and `component` where missing.
pub fn labels_of(row: &AlertRow) -> BTreeMap<String, String> {
    let mut labels = row_labels(row);
    if labels.contains_key("alertname") {
        return labels;
    }
    labels
        .entry("alertname".to_owned())
        .or_insert_with(|| row.rule.clone());
    labels
        .entry("severity".to_owned())
        .or_insert_with(|| row.severity.to_ascii_lowercase());
    labels
        .entry("component".to_owned())
        .or_insert_with(|| row.component.clone());
    labels
}

/// `row` as a `gettableAlert`, silenced by those of `silences` (id, silence) that
/// cover it at `now`. Our own alerts have no end: theirs reads `now + resolve_timeout`
/// (Alertmanager's for an alert posted without one), always ahead while it fires.
pub fn gettable(
    row: &AlertRow,
    silences: &[(String, Silence)],
    resolve_timeout: chrono::Duration,
    now: DateTime<Utc>,
) -> GettableAlert {
    let stored = row_labels(row);
    let subject = Subject::of(row, &stored);
    let silenced_by: Vec<String> = silences
        .iter()
        .filter(|(_, silence)| silence.silences(&subject, now))
        .map(|(id, _)| id.clone())
        .collect();
    GettableAlert {
        fingerprint: fingerprint(&row.rule, &stored),
        labels: labels_of(row),
        annotations: text_map(&row.annotations),
        receivers: vec![Receiver {
            name: row.severity.clone(),
        }],
        starts_at: row.started_at,
        updated_at: row.last_seen_at,
        ends_at: row.ends_at.unwrap_or(now + resolve_timeout),
        generator_url: row.generator_url.clone(),
        status: AlertStatus {
            state: if silenced_by.is_empty() {
                "active"
            } else {
                "suppressed"
            },
            silenced_by,
            inhibited_by: Vec::new(),
        },
    }
}

/// Whether `alert` is one `query` asks for (Alertmanager's rules: `active=false` drops
/// active ones, `silenced=false` silenced ones; the filter matches its labels; the
/// receiver pattern one of its receivers).
pub fn wanted(alert: &GettableAlert, query: &ListQuery) -> bool {
    let silenced = !alert.status.silenced_by.is_empty();
    if !query.active && alert.status.state == "active" {
        return false;
    }
    if !query.silenced && silenced {
        return false;
    }
    if let Some(receiver) = &query.receiver
        && !alert.receivers.iter().any(|r| receiver.is_match(&r.name))
    {
        return false;
    }
    query.filter.iter().all(|m| m.matches_labels(&alert.labels))
}

/// The alerts grouped as our dispatcher sends them: one group per receiver (the
/// severity's route), group labels empty (the route groups by nothing else), oldest
/// alert first in each.
pub fn groups(alerts: Vec<GettableAlert>) -> Vec<AlertGroup> {
    let mut by_receiver: BTreeMap<Receiver, Vec<GettableAlert>> = BTreeMap::new();
    for alert in alerts {
        if let Some(receiver) = alert.receivers.first().cloned() {
            by_receiver.entry(receiver).or_default().push(alert);
        }
    }
    by_receiver
        .into_iter()
        .map(|(receiver, mut alerts)| {
            alerts.sort_by_key(|a| a.starts_at);
            AlertGroup {
                labels: BTreeMap::new(),
                receiver,
                alerts,
            }
        })
        .collect()
}
