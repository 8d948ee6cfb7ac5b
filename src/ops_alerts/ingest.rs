//! Alerts posted from outside — Prometheus, amtool, anything speaking Alertmanager's
//! API (DESIGN §18) — entering the one lifecycle of §10. `labels.alertname` is the
//! rule, `labels.severity` (`critical`, `warning`, `info`, any case; else WARNING) the
//! severity, the fingerprint that of all the labels; `annotations.summary` is the
//! title and `annotations.description` the message.
//!
//! A re-post of a firing alert (Prometheus re-sends each one every minute, from every
//! replica of an HA pair) only refreshes the open episode: one statement per batch
//! opens or refreshes each, on the partial unique index, so across replicas there is
//! one episode and one `raised` event per firing. An alert whose `endsAt` has passed
//! resolves; one not re-sent by its `endsAt` (or `ALERT_RESOLVE_TIMEOUT_SECONDS` after
//! it was posted, when it names none) is resolved by [`OpsAlerts::expire_ended`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{OpsAlerts, Severity, fingerprint};
use crate::storage::ops_alerts::{self, AlertRow, PostedRow};

/// One alert as posted, its times already read (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct PostedAlert {
    /// Holds `alertname` (checked by the caller).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
}

/// What a batch of posted alerts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// New episodes.
    pub opened: usize,
    /// Open episodes seen again.
    pub refreshed: usize,
    /// Episodes resolved by an `endsAt` in the past.
    pub resolved: usize,
}

/// The severity a posted alert's labels give it.
pub fn severity_of(labels: &BTreeMap<String, String>) -> Severity {
    labels
        .get("severity")
        .and_then(|s| Severity::parse(&s.to_ascii_uppercase()))
        .unwrap_or(Severity::Warning)
}

/// The component a posted alert belongs to: its `component` label, else `job`, else
/// `external`.
fn component_of(labels: &BTreeMap<String, String>) -> String {
    labels
        .get("component")
        .or_else(|| labels.get("job"))
        .cloned()
        .unwrap_or_else(|| "external".to_owned())
}

impl OpsAlerts {
    /// Stores a batch of posted alerts: opens or refreshes the episodes of those still
    /// firing (a re-send of an episode known open is written within a second, see
    /// `refresh`), resolves those whose `endsAt` has passed, and announces what
    /// changed. A fingerprint posted twice in one batch counts once (the last wins).
    pub async fn ingest(
        &self,
        alerts: Vec<PostedAlert>,
        resolve_timeout: Duration,
    ) -> Result<Ingested, sqlx::Error> {
        let now = Utc::now();
        let timeout = chrono::Duration::from_std(resolve_timeout).unwrap_or_default();
        let mut latest: HashMap<String, PostedAlert> = HashMap::with_capacity(alerts.len());
        for alert in alerts {
            let rule = alert.labels.get("alertname").cloned().unwrap_or_default();
            latest.insert(fingerprint(&rule, &alert.labels), alert);
        }
        let mut by_fingerprint: Vec<(String, PostedAlert)> = latest.into_iter().collect();
        by_fingerprint.sort_by(|a, b| a.0.cmp(&b.0));
        let (ended, firing): (Vec<_>, Vec<_>) = by_fingerprint
            .into_iter()
            .partition(|(_, alert)| alert.ends_at.is_some_and(|end| end <= now));
        let rows: Vec<PostedRow> = firing
            .into_iter()
            .map(|(fingerprint, alert)| posted_row(fingerprint, alert, now, timeout))
            .collect();
        let (buffered, direct) = self.refreshes.buffer_known(rows, now);
        let mut outcome = Ingested {
            refreshed: buffered,
            ..Ingested::default()
        };
        let ended: Vec<(String, DateTime<Utc>)> = ended
            .into_iter()
            .filter_map(|(fingerprint, alert)| Some((fingerprint, alert.ends_at?)))
            .collect();
        if direct.is_empty() && ended.is_empty() {
            return Ok(outcome);
        }
        let mut conn = self.db.acquire().await?;
        if !direct.is_empty() {
            let (opened, refreshed) = self.store_posted(&mut conn, &direct).await?;
            outcome.opened += opened;
            outcome.refreshed += refreshed;
        }
        if !ended.is_empty() {
            let fingerprints: Vec<String> = ended.iter().map(|(f, _)| f.clone()).collect();
            self.refreshes.forget(&fingerprints);
            let resolved = ops_alerts::resolve_posted(&mut conn, &ended).await?;
            drop(conn);
            outcome.resolved = resolved.len();
            for alert in &resolved {
                self.announce(alert, "resolved").await;
            }
        }
        Ok(outcome)
    }

    /// Opens or refreshes the episodes of `rows` (distinct fingerprints, in order) in
    /// one statement; marks the new ones a silence covers; remembers them open and
    /// announces the new ones. Returns (opened, refreshed).
    pub(super) async fn store_posted(
        &self,
        conn: &mut sqlx::PgConnection,
        rows: &[PostedRow],
    ) -> Result<(usize, usize), sqlx::Error> {
        let mut stored = ops_alerts::ingest(&mut *conn, rows).await?;
        self.refreshes.remember(
            stored
                .iter()
                .filter_map(|s| Some((s.fingerprint.as_str(), s.row.ends_at?))),
        );
        let opened = stored.iter().filter(|s| s.opened).count();
        if opened > 0 {
            let new: Vec<AlertRow> = stored
                .iter()
                .filter(|s| s.opened)
                .map(|s| s.row.clone())
                .collect();
            let covered = self.silenced_now(&mut *conn, &new).await?;
            let silenced: Vec<String> = new
                .iter()
                .zip(&covered)
                .filter(|(_, covered)| **covered)
                .map(|(row, _)| row.alert_id.clone())
                .collect();
            if !silenced.is_empty() {
                ops_alerts::set_silenced(&mut *conn, &silenced, true).await?;
            }
            for raised in stored
                .iter_mut()
                .filter(|s| silenced.contains(&s.row.alert_id))
            {
                raised.row.silenced = true;
            }
            for raised in stored.iter().filter(|s| s.opened) {
                self.announce(&raised.row, "raised").await;
            }
        }
        Ok((opened, stored.len() - opened))
    }

    /// Resolves the posted alerts not re-sent by their `ends_at`, on whichever replica
    /// gets there first, and announces each once; returns them.
    pub async fn expire_ended(&self) -> Result<Vec<AlertRow>, sqlx::Error> {
        let resolved = ops_alerts::expire_ended(&self.db).await?;
        for alert in &resolved {
            self.announce(alert, "resolved").await;
        }
        Ok(resolved)
    }
}

/// A posted alert as the row to store, received at `now`.
fn posted_row(
    fingerprint: String,
    alert: PostedAlert,
    now: DateTime<Utc>,
    timeout: chrono::Duration,
) -> PostedRow {
    let rule = alert.labels.get("alertname").cloned().unwrap_or_default();
    let summary = alert.annotations.get("summary").cloned();
    PostedRow {
        alert_id: uuid::Uuid::new_v4().to_string(),
        fingerprint,
        title: summary.clone().unwrap_or_else(|| rule.clone()),
        message: alert
            .annotations
            .get("description")
            .cloned()
            .or(summary)
            .unwrap_or_default(),
        severity: severity_of(&alert.labels).as_str(),
        component: component_of(&alert.labels),
        labels: serde_json::to_value(&alert.labels).unwrap_or_default(),
        annotations: serde_json::to_value(&alert.annotations).unwrap_or_default(),
        generator_url: alert.generator_url,
        starts_at: alert.starts_at.map_or(now, |start| start.min(now)),
        ends_at: alert.ends_at.unwrap_or(now + timeout),
        seen_at: now,
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn severity_follows_the_label_in_any_case_else_warning() {
        assert_eq!(
            severity_of(&labels(&[("severity", "critical")])),
            Severity::Critical
        );
        assert_eq!(
            severity_of(&labels(&[("severity", "Info")])),
            Severity::Info
        );
        assert_eq!(
            severity_of(&labels(&[("severity", "WARNING")])),
            Severity::Warning
        );
        assert_eq!(
            severity_of(&labels(&[("severity", "page")])),
            Severity::Warning
        );
        assert_eq!(severity_of(&labels(&[])), Severity::Warning);
    }

    #[test]
    fn component_is_the_label_else_the_job() {
        assert_eq!(
            component_of(&labels(&[("component", "db"), ("job", "x")])),
            "db"
        );
        assert_eq!(component_of(&labels(&[("job", "node")])), "node");
        assert_eq!(component_of(&labels(&[])), "external");
    }
}
