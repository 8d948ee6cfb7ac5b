//! Operational alerts (DESIGN §10): alerts about the platform, not a user's strategy.
//! Every producer raises through one call — [`OpsAlerts::raise`] while a rule holds,
//! [`OpsAlerts::resolve`] when it stops — and operators work the episodes: list the
//! active ones and the history, clear, acknowledge, and silence by matchers.
//!
//! An episode is one row per fingerprint (the rule and its sorted labels) while the rule
//! keeps holding, on every replica (a partial unique index). A cleared episode is
//! re-armed only once its rule has been seen not holding. A silenced alert is recorded
//! and listed but not notified. Alerts posted from outside (Prometheus, through the
//! Alertmanager API) are episodes like ours (`ingest`), their re-sends written behind
//! (`refresh`), resolved by their `endsAt`.

mod dispatch;
pub mod filter_syntax;
mod ingest;
mod journal;
mod notice;
mod refresh;
mod rules;
mod silence;
mod stream;

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

pub use dispatch::{DispatchTiming, Dispatcher};
pub use ingest::{Ingested, PostedAlert, severity_of};
pub use journal::{EventLine, Journal, remove_older_than};
pub use notice::NoticeKind;
pub use rules::{PlatformStatus, RULES, rule_label};
pub use silence::{
    Matcher, Silence, SilenceFields, Subject, check_not_everything, check_silence, parse_matchers,
    row_labels,
};
pub use stream::{EVENTS_CHANNEL, EventStream, StreamEvent};

use crate::metrics::AlertMetrics;
use crate::storage::ops_alerts::{self, AlertRow, HistoryFilter, NewAlert, Refused};
use crate::storage::ops_silences::{self, SilenceRow};
use crate::storage::{ops_alert_events, ops_alert_notifications};

/// How urgent an alert is; each severity has its own notification route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "INFO" => Some(Severity::Info),
            "WARNING" => Some(Severity::Warning),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// What a raise did.
#[derive(Debug, Clone)]
pub struct RaiseOutcome {
    pub alert: AlertRow,
    /// A new episode (false: the open one was seen again).
    pub opened: bool,
}

/// The stable identity of an alert: a digest of its rule and sorted labels.
pub fn fingerprint(rule: &str, labels: &BTreeMap<String, String>) -> String {
    crate::digest::of(
        std::iter::once(rule).chain(labels.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()])),
    )
}

/// Where alert events go besides the table: `ALERT_LOG_DIR` and the retention.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// `ALERT_LOG_DIR`; `None`: no log files.
    pub log_dir: Option<std::path::PathBuf>,
    /// `ALERT_RETENTION_DAYS`: closed episodes and log files older than this go.
    pub retention_days: u32,
    /// `OPS_ALERT_ROUTES`: the channels of each severity (secrets: never shown).
    pub routes: Routes,
    /// `OPS_ALERT_GROUP_WAIT_SECONDS` and `OPS_ALERT_REPEAT_SECONDS`.
    pub timing: DispatchTiming,
    /// `ALERT_STREAM_KEEPALIVE_SECONDS`: a comment sent on an idle stream this often.
    pub stream_keepalive: std::time::Duration,
    /// `ALERT_STREAM_MAX_SECONDS`: a stream is closed after this long (the client
    /// reconnects with `Last-Event-ID` and misses nothing).
    pub stream_max: std::time::Duration,
    /// `ALERT_STREAMS_PER_KEY`: alert streams one API key may hold open at once.
    pub streams_per_key: usize,
    /// `SILENCE_MAX_DAYS`: the longest a silence may last.
    pub silence_max_days: u32,
    /// `ALERT_RESOLVE_TIMEOUT_SECONDS`: a posted alert without `endsAt` resolves when
    /// not re-sent within this (Alertmanager's `resolve_timeout`).
    pub resolve_timeout: std::time::Duration,
    /// `ALERT_INGEST_RATE_LIMIT_PER_MINUTE`: posted batches per minute and API key.
    pub ingest_rate_limit_per_minute: u32,
}

/// The channels each severity's alerts go to.
pub type Routes = BTreeMap<Severity, Vec<crate::notify::Channel>>;

/// Parses `OPS_ALERT_ROUTES`: `{"INFO" | "WARNING" | "CRITICAL": [channel, ...]}`, each
/// channel as in a strategy. The error names the severity and the channel's index,
/// never a value.
pub fn parse_routes(text: &str) -> Result<Routes, String> {
    let document: BTreeMap<String, Value> = serde_json::from_str(text)
        .map_err(|_| "must be a JSON object of severity → channels".to_owned())?;
    document
        .into_iter()
        .map(|(severity, channels)| {
            let level = Severity::parse(&severity)
                .ok_or_else(|| format!("{severity}: not a severity (INFO, WARNING or CRITICAL)"))?;
            let parsed = crate::notify::parse_channels(&channels.to_string())
                .map_err(|e| format!("{severity}.{e}"))?;
            Ok((level, parsed))
        })
        .collect()
}

/// The Redis channel every raised alert is published on.
pub const RAISED_CHANNEL: &str = "health.alert_raised";

/// Raises, resolves and works operational alerts.
#[derive(Clone)]
pub struct OpsAlerts {
    db: PgPool,
    journal: Option<Journal>,
    redis: Option<redis::aio::ConnectionManager>,
    events: Option<prometheus::IntCounterVec>,
    stream: EventStream,
    /// Re-sends of posted alerts, written behind (shared by every clone).
    refreshes: std::sync::Arc<refresh::Refreshes>,
}

impl std::fmt::Debug for OpsAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsAlerts").finish_non_exhaustive()
    }
}

impl OpsAlerts {
    /// Alerts recorded in Postgres only.
    pub fn new(db: PgPool) -> Self {
        Self {
            journal: None,
            redis: None,
            events: None,
            refreshes: Default::default(),
            stream: EventStream::for_database(
                db.connect_options().get_database().unwrap_or("default"),
            ),
            db,
        }
    }

    /// Also appends every event to `journal`, publishes raised alerts and fans every
    /// event out on Redis, and counts events in `metrics`.
    pub fn with_sinks(
        mut self,
        journal: Journal,
        redis: Option<redis::aio::ConnectionManager>,
        metrics: &AlertMetrics,
    ) -> Self {
        self.journal = Some(journal);
        self.redis = redis;
        self.events = Some(metrics.events.clone());
        self
    }

    /// The Postgres pool the alerts live in.
    pub fn pool(&self) -> &PgPool {
        &self.db
    }

    /// This process's side of the event stream.
    pub fn stream(&self) -> &EventStream {
        &self.stream
    }

    /// Logs, counts and journals one event (and publishes a raise on Redis).
    async fn announce(&self, alert: &AlertRow, event: &'static str) {
        tracing::info!(rule = %alert.rule, alert_id = %alert.alert_id,
            severity = %alert.severity, event, silenced = alert.silenced, "operational alert event");
        if let Some(events) = &self.events {
            events.with_label_values(&[event, &alert.severity]).inc();
        }
        let line = EventLine::of(alert, event);
        if event == "raised"
            && let Some(mut redis) = self.redis.clone()
        {
            let payload = serde_json::to_string(&line).unwrap_or_default();
            let published: Result<i64, _> = redis::cmd("PUBLISH")
                .arg(RAISED_CHANNEL)
                .arg(payload)
                .query_async(&mut redis)
                .await;
            if let Err(error) = published {
                tracing::warn!(%error, "alert not published on Redis");
            }
        }
        match serde_json::to_value(&line) {
            Ok(json) => {
                match ops_alert_events::insert(&self.db, &alert.alert_id, event, &json).await {
                    Ok(id) => {
                        let streamed = StreamEvent {
                            id,
                            event: event.to_owned(),
                            line: json,
                        };
                        self.stream.publish(self.redis.as_ref(), streamed).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "alert event not stored for the stream");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "alert event not encoded"),
        }
        if let Some(journal) = &self.journal {
            journal.record(line);
        }
    }

    /// Removes closed episodes and log files older than `days`; returns the rows removed.
    pub async fn apply_retention(
        &self,
        days: u32,
        log_dir: Option<&std::path::Path>,
    ) -> Result<u64, sqlx::Error> {
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        let rows = ops_alerts::remove_closed_before(&self.db, before).await?;
        ops_alert_events::remove_before(&self.db, before).await?;
        ops_alert_notifications::remove_before(&self.db, before).await?;
        ops_silences::remove_ended_before(&self.db, before).await?;
        let files = log_dir.map_or(0, |dir| {
            remove_older_than(dir, days, Utc::now().date_naive())
        });
        if rows > 0 || files > 0 {
            tracing::info!(rows, files, "old operational alerts removed");
        }
        Ok(rows)
    }

    /// `rule` holds for `labels`: opens an episode, or touches the open one. The
    /// component is the `component` label, else `monitoring`.
    pub async fn raise(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
        title: &str,
        message: &str,
        context: &Value,
    ) -> Result<RaiseOutcome, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        let raised = self
            .raise_in(&mut conn, rule, labels, severity, title, message, context)
            .await?;
        drop(conn);
        self.announce_raise(&raised).await;
        Ok(raised)
    }

    /// [`Self::raise`] on `conn` (a transaction of the caller's), without announcing
    /// it: call [`Self::announce_raise`] once the transaction has committed.
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_in(
        &self,
        conn: &mut PgConnection,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
        title: &str,
        message: &str,
        context: &Value,
    ) -> Result<RaiseOutcome, sqlx::Error> {
        let component = labels.get("component").map_or("monitoring", String::as_str);
        let subject = Subject {
            rule,
            severity: severity.as_str(),
            component,
            labels,
        };
        let silenced = self.is_silenced(&mut *conn, &subject).await?;
        let fingerprint = fingerprint(rule, labels);
        let alert_id = uuid::Uuid::new_v4().to_string();
        let labels_json = serde_json::to_value(labels).unwrap_or_default();
        let raised = ops_alerts::raise(
            conn,
            &NewAlert {
                alert_id: &alert_id,
                fingerprint: &fingerprint,
                rule,
                severity: severity.as_str(),
                title,
                message,
                component,
                labels: &labels_json,
                context,
                silenced,
            },
        )
        .await?;
        Ok(RaiseOutcome {
            alert: raised.row,
            opened: raised.opened,
        })
    }

    /// Announces a committed raise (an episode it opened: log, journal, stream).
    pub async fn announce_raise(&self, raised: &RaiseOutcome) {
        if raised.opened {
            self.announce(&raised.alert, "raised").await;
        }
    }

    /// Announces a committed resolution.
    pub async fn announce_resolved(&self, alert: &AlertRow) {
        self.announce(alert, "resolved").await;
    }

    /// `rule` no longer holds for `labels`: resolves its firing episode (returned) and
    /// re-arms a cleared one.
    pub async fn resolve(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<AlertRow>, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        let resolved = self.resolve_in(&mut conn, rule, labels).await?;
        drop(conn);
        if let Some(alert) = &resolved {
            self.announce_resolved(alert).await;
        }
        Ok(resolved)
    }

    /// [`Self::resolve`] on `conn`, without announcing it.
    pub async fn resolve_in(
        &self,
        conn: &mut PgConnection,
        rule: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<AlertRow>, sqlx::Error> {
        ops_alerts::resolve(conn, &fingerprint(rule, labels)).await
    }

    /// An operator clears a firing episode.
    pub async fn clear(&self, alert_id: &str) -> Result<Result<AlertRow, Refused>, sqlx::Error> {
        let cleared = ops_alerts::clear(&self.db, alert_id).await?;
        if let Ok(alert) = &cleared {
            self.announce(alert, "cleared").await;
        }
        Ok(cleared)
    }

    /// An operator acknowledges a firing episode: it stays active, not notified again.
    pub async fn acknowledge(
        &self,
        alert_id: &str,
        by: &str,
    ) -> Result<Result<AlertRow, Refused>, sqlx::Error> {
        let acknowledged = ops_alerts::acknowledge(&self.db, alert_id, by).await?;
        if let Ok(alert) = &acknowledged {
            self.announce(alert, "acknowledged").await;
        }
        Ok(acknowledged)
    }

    pub async fn active(&self) -> Result<Vec<AlertRow>, sqlx::Error> {
        ops_alerts::active(&self.db).await
    }

    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<AlertRow>, sqlx::Error> {
        ops_alerts::history(&self.db, filter).await
    }

    /// The silences in force at `now`.
    async fn silences_in_force(
        &self,
        conn: &mut PgConnection,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<Silence>, sqlx::Error> {
        Ok(ops_silences::unexpired(conn, now)
            .await?
            .iter()
            .filter_map(silence_of)
            .filter(|silence| silence.starts_at <= now)
            .collect())
    }

    /// Whether a silence in force now covers `subject`.
    pub async fn is_silenced(
        &self,
        conn: &mut PgConnection,
        subject: &Subject<'_>,
    ) -> Result<bool, sqlx::Error> {
        let now = Utc::now();
        Ok(self
            .silences_in_force(conn, now)
            .await?
            .iter()
            .any(|silence| silence.silences(subject, now)))
    }

    /// For each of `alerts`, whether a silence in force now covers it.
    pub async fn silenced_now(
        &self,
        conn: &mut PgConnection,
        alerts: &[AlertRow],
    ) -> Result<Vec<bool>, sqlx::Error> {
        let now = Utc::now();
        let silences = self.silences_in_force(conn, now).await?;
        Ok(alerts
            .iter()
            .map(|alert| {
                let labels = row_labels(alert);
                let subject = Subject::of(alert, &labels);
                silences
                    .iter()
                    .any(|silence| silence.silences(&subject, now))
            })
            .collect())
    }

    /// Follows the platform status (DESIGN §11): the `system_status` alert is WARNING
    /// while DEGRADED, CRITICAL while CRITICAL, and resolved when OK. Each level is its
    /// own episode (label `level`): a change of level resolves the other one.
    pub async fn follow_system_status(
        &self,
        status: PlatformStatus,
        context: &Value,
    ) -> Result<Option<RaiseOutcome>, sqlx::Error> {
        let labels = |level: &str| {
            BTreeMap::from([
                ("component".to_owned(), "platform".to_owned()),
                ("level".to_owned(), level.to_owned()),
            ])
        };
        let holding = status.severity();
        for severity in [Severity::Warning, Severity::Critical] {
            if Some(severity) != holding {
                self.resolve(rules::SYSTEM_STATUS, &labels(severity.as_str()))
                    .await?;
            }
        }
        let Some(severity) = holding else {
            return Ok(None);
        };
        let title = format!("Platform {}", status.as_str());
        let message = format!("the platform status is {}", status.as_str());
        self.raise(
            rules::SYSTEM_STATUS,
            &labels(severity.as_str()),
            severity,
            &title,
            &message,
            context,
        )
        .await
        .map(Some)
    }

    /// Silences not yet ended.
    pub async fn silences(&self) -> Result<Vec<SilenceRow>, sqlx::Error> {
        ops_silences::unexpired(&self.db, Utc::now()).await
    }

    pub async fn add_silence(&self, silence: &SilenceRow) -> Result<(), sqlx::Error> {
        ops_silences::insert(&self.db, silence).await
    }

    pub async fn delete_silence(&self, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
        ops_silences::delete(&self.db, id).await
    }

    /// Every silence, ended ones included (until the retention removes them).
    pub async fn all_silences(&self) -> Result<Vec<SilenceRow>, sqlx::Error> {
        ops_silences::all(&self.db).await
    }

    pub async fn silence(&self, id: uuid::Uuid) -> Result<Option<SilenceRow>, sqlx::Error> {
        ops_silences::get(&self.db, id).await
    }

    /// Replaces a silence not yet ended; false when there is none with its id.
    pub async fn update_silence(&self, silence: &SilenceRow) -> Result<bool, sqlx::Error> {
        ops_silences::update_unexpired(&self.db, silence).await
    }

    /// Ends a silence now, keeping it listed as expired; false when there is none.
    pub async fn expire_silence(&self, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
        ops_silences::expire(&self.db, id).await
    }
}

/// A stored silence as a matcher set (rows were checked when added).
pub fn silence_of(row: &SilenceRow) -> Option<Silence> {
    Some(Silence {
        matchers: parse_matchers(&row.matchers).ok()?,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
    })
}
