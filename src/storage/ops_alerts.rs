//! The `ops_alerts` table, all of its SQL: one row per episode of an operational alert
//! (DESIGN §10). Raising is one statement that opens an episode or touches the open
//! one — the partial unique index keeps one open episode per fingerprint across
//! replicas — and each lifecycle change is one conditional update.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

/// One episode as the routes show it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AlertRow {
    pub alert_id: String,
    pub rule: String,
    /// `INFO`, `WARNING` or `CRITICAL` (also shown as `level`).
    pub severity: String,
    pub title: String,
    pub message: String,
    pub component: String,
    #[schema(value_type = Object)]
    pub labels: Value,
    #[schema(value_type = Object)]
    pub context: Value,
    /// `firing`, `resolved` or `cleared`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub silenced: bool,
    /// When its last firing notification went out (none yet: `null`).
    pub notified_at: Option<DateTime<Utc>>,
    /// A posted alert's annotations (`{}` for our own).
    #[schema(value_type = Object)]
    pub annotations: Value,
    /// A posted alert's `generatorURL` (empty for our own).
    pub generator_url: String,
    /// A posted alert's end: it resolves when not re-sent by then (`null` for our own).
    pub ends_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "alert_id, rule, severity, title, message, component, labels, context,
    state, started_at, last_seen_at, resolved_at, acknowledged, acknowledged_at,
    acknowledged_by, silenced, notified_at, annotations, generator_url, ends_at";

/// What a raise carries.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub alert_id: &'a str,
    pub fingerprint: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub component: &'a str,
    pub labels: &'a Value,
    pub context: &'a Value,
    pub silenced: bool,
}

/// A row returned by an upsert, and whether it was inserted.
#[derive(sqlx::FromRow)]
struct Returned {
    #[sqlx(flatten)]
    row: AlertRow,
    fingerprint: String,
    opened: bool,
}

/// What a raise did: opened an episode, or touched the open one (a firing episode, or
/// a cleared one not yet re-armed).
#[derive(Debug, Clone)]
pub struct Raised {
    pub row: AlertRow,
    pub fingerprint: String,
    pub opened: bool,
}

impl From<Returned> for Raised {
    fn from(returned: Returned) -> Self {
        Self {
            row: returned.row,
            fingerprint: returned.fingerprint,
            opened: returned.opened,
        }
    }
}

/// Opens an episode for `alert`'s fingerprint, or, when one is open, updates its
/// `last_seen_at`, message and context (a cleared one stays cleared).
pub async fn raise(db: &mut PgConnection, alert: &NewAlert<'_>) -> Result<Raised, sqlx::Error> {
    let sql = format!(
        "INSERT INTO ops_alerts (alert_id, fingerprint, rule, severity, title, message,
                                 component, labels, context, state, silenced)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'firing', $10)
         ON CONFLICT (fingerprint) WHERE state = 'firing' OR (state = 'cleared' AND NOT rearmed)
         DO UPDATE SET last_seen_at = now(), message = EXCLUDED.message,
                       context = EXCLUDED.context
         RETURNING {COLUMNS}, fingerprint, (xmax = 0) AS opened"
    );
    let returned: Returned = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(alert.alert_id)
        .bind(alert.fingerprint)
        .bind(alert.rule)
        .bind(alert.severity)
        .bind(alert.title)
        .bind(alert.message)
        .bind(alert.component)
        .bind(alert.labels)
        .bind(alert.context)
        .bind(alert.silenced)
        .fetch_one(db)
        .await?;
    Ok(returned.into())
}

/// A posted alert (DESIGN §18), ready to store: the mapping from its labels is done.
#[derive(Debug, Clone)]
pub struct PostedRow {
    pub alert_id: String,
    pub fingerprint: String,
    pub rule: String,
    pub severity: &'static str,
    pub title: String,
    pub message: String,
    pub component: String,
    pub labels: Value,
    pub annotations: Value,
    pub generator_url: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// When it was received (its episode's `last_seen_at`).
    pub seen_at: DateTime<Utc>,
}

/// One column of a batch of posted alerts, as an array parameter.
fn column<T>(alerts: &[PostedRow], f: impl Fn(&PostedRow) -> T) -> Vec<T> {
    alerts.iter().map(f).collect()
}

/// Stores a batch of posted alerts in one statement: each opens an episode for its
/// fingerprint or refreshes the open one (`last_seen_at`, `ends_at`, annotations,
/// title, message). Fingerprints must be distinct; in fingerprint order, so two
/// replicas storing overlapping batches lock rows in the same order and never deadlock.
pub async fn ingest(
    db: &mut PgConnection,
    alerts: &[PostedRow],
) -> Result<Vec<Raised>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO ops_alerts (alert_id, fingerprint, rule, severity, title, message,
                                 component, labels, annotations, generator_url, started_at,
                                 ends_at, last_seen_at, state)
         SELECT *, 'firing' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::text[],
                $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
         ON CONFLICT (fingerprint) WHERE state = 'firing' OR (state = 'cleared' AND NOT rearmed)
         DO UPDATE SET last_seen_at = GREATEST(ops_alerts.last_seen_at, EXCLUDED.last_seen_at),
                       ends_at = EXCLUDED.ends_at,
                       annotations = EXCLUDED.annotations, title = EXCLUDED.title,
                       message = EXCLUDED.message, generator_url = EXCLUDED.generator_url
         RETURNING {COLUMNS}, fingerprint, (xmax = 0) AS opened"
    );
    let returned: Vec<Returned> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(column(alerts, |a| a.alert_id.clone()))
        .bind(column(alerts, |a| a.fingerprint.clone()))
        .bind(column(alerts, |a| a.rule.clone()))
        .bind(column(alerts, |a| a.severity))
        .bind(column(alerts, |a| a.title.clone()))
        .bind(column(alerts, |a| a.message.clone()))
        .bind(column(alerts, |a| a.component.clone()))
        .bind(column(alerts, |a| a.labels.clone()))
        .bind(column(alerts, |a| a.annotations.clone()))
        .bind(column(alerts, |a| a.generator_url.clone()))
        .bind(column(alerts, |a| a.starts_at))
        .bind(column(alerts, |a| a.ends_at))
        .bind(column(alerts, |a| a.seen_at))
        .fetch_all(db)
        .await?;
    Ok(returned.into_iter().map(Raised::from).collect())
}

/// Refreshes the open episodes of `alerts` (re-sends: `last_seen_at`, `ends_at`,
/// annotations, title, message, generator URL), locking them in fingerprint order;
/// returns the fingerprints refreshed. An alert whose episode has closed meanwhile is
/// left out (the caller decides whether it opens a new one).
pub async fn refresh_open(
    db: &mut PgConnection,
    alerts: &[PostedRow],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH locked AS (
             SELECT alert_id FROM ops_alerts
              WHERE fingerprint = ANY($1)
                AND (state = 'firing' OR (state = 'cleared' AND NOT rearmed))
              ORDER BY fingerprint
                FOR UPDATE)
         UPDATE ops_alerts a
            SET last_seen_at = GREATEST(a.last_seen_at, e.seen_at), ends_at = e.ends_at,
                annotations = e.annotations, title = e.title, message = e.message,
                generator_url = e.generator_url
           FROM locked,
                unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::jsonb[],
                       $5::text[], $6::text[], $7::text[])
                  AS e(fingerprint, seen_at, ends_at, annotations, title, message, generator_url)
          WHERE a.alert_id = locked.alert_id AND a.fingerprint = e.fingerprint
         RETURNING a.fingerprint",
    )
    .bind(column(alerts, |a| a.fingerprint.clone()))
    .bind(column(alerts, |a| a.seen_at))
    .bind(column(alerts, |a| a.ends_at))
    .bind(column(alerts, |a| a.annotations.clone()))
    .bind(column(alerts, |a| a.title.clone()))
    .bind(column(alerts, |a| a.message.clone()))
    .bind(column(alerts, |a| a.generator_url.clone()))
    .fetch_all(db)
    .await
}

/// When each of `fingerprints` last closed (resolved or cleared), if it ever did.
pub async fn last_closed(
    db: &mut PgConnection,
    fingerprints: &[String],
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT fingerprint, max(resolved_at) FROM ops_alerts
          WHERE fingerprint = ANY($1) AND resolved_at IS NOT NULL
          GROUP BY fingerprint",
    )
    .bind(fingerprints)
    .fetch_all(db)
    .await
}

/// Posted alerts whose `endsAt` has come: their firing episodes resolve (returned),
/// resolved at that end; cleared ones are re-armed.
pub async fn resolve_posted(
    db: &mut PgConnection,
    ended: &[(String, DateTime<Utc>)],
) -> Result<Vec<AlertRow>, sqlx::Error> {
    let (fingerprints, ends): (Vec<String>, Vec<DateTime<Utc>>) = ended.iter().cloned().unzip();
    sqlx::query(
        "UPDATE ops_alerts SET rearmed = true
          WHERE fingerprint = ANY($1) AND state = 'cleared' AND NOT rearmed",
    )
    .bind(&fingerprints)
    .execute(&mut *db)
    .await?;
    // The ended alerts' columns are named apart from the table's, so RETURNING reads
    // the table's without a prefix.
    let sql = format!(
        "UPDATE ops_alerts SET state = 'resolved', ends_at = e.ended_at,
                resolved_at = GREATEST(started_at, LEAST(now(), e.ended_at))
           FROM unnest($1::text[], $2::timestamptz[]) AS e(ended_fingerprint, ended_at)
          WHERE fingerprint = e.ended_fingerprint AND state = 'firing'
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&fingerprints)
        .bind(&ends)
        .fetch_all(db)
        .await
}

/// Posted alerts not re-sent by their `ends_at`: firing episodes resolve (returned,
/// resolved at their end) and cleared ones are re-armed. Each row changes once, on
/// whichever replica's sweep takes it first.
pub async fn expire_ended(db: &PgPool) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query(
        "UPDATE ops_alerts SET rearmed = true
          WHERE ends_at <= now() AND state = 'cleared' AND NOT rearmed",
    )
    .execute(db)
    .await?;
    let sql = format!(
        "UPDATE ops_alerts SET state = 'resolved', resolved_at = GREATEST(started_at, ends_at)
          WHERE ends_at <= now() AND state = 'firing'
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}

/// The rule stopped holding for `fingerprint`: a firing episode is resolved (returned),
/// a cleared one is re-armed.
pub async fn resolve(
    db: &mut PgConnection,
    fingerprint: &str,
) -> Result<Option<AlertRow>, sqlx::Error> {
    sqlx::query("UPDATE ops_alerts SET rearmed = true WHERE fingerprint = $1 AND state = 'cleared' AND NOT rearmed")
        .bind(fingerprint)
        .execute(&mut *db)
        .await?;
    let sql = format!(
        "UPDATE ops_alerts SET state = 'resolved', resolved_at = now()
          WHERE fingerprint = $1 AND state = 'firing'
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(fingerprint)
        .fetch_optional(db)
        .await
}

/// Why an operator's change did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    /// Not firing any more (its state now).
    Closed(String),
}

/// Clears the firing episode `alert_id` (an operator's decision).
pub async fn clear(db: &PgPool, alert_id: &str) -> Result<Result<AlertRow, Refused>, sqlx::Error> {
    let sql = format!(
        "UPDATE ops_alerts SET state = 'cleared', resolved_at = now()
          WHERE alert_id = $1 AND state = 'firing' RETURNING {COLUMNS}"
    );
    let changed = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(alert_id)
        .fetch_optional(db)
        .await?;
    explain(db, alert_id, changed).await
}

/// Acknowledges the firing episode `alert_id`: it stays active, not notified again.
pub async fn acknowledge(
    db: &PgPool,
    alert_id: &str,
    by: &str,
) -> Result<Result<AlertRow, Refused>, sqlx::Error> {
    let sql = format!(
        "UPDATE ops_alerts SET acknowledged = true, acknowledged_at = now(), acknowledged_by = $2
          WHERE alert_id = $1 AND state = 'firing' RETURNING {COLUMNS}"
    );
    let changed = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(alert_id)
        .bind(by)
        .fetch_optional(db)
        .await?;
    explain(db, alert_id, changed).await
}

/// The changed row, or why there was none.
async fn explain(
    db: &PgPool,
    alert_id: &str,
    changed: Option<AlertRow>,
) -> Result<Result<AlertRow, Refused>, sqlx::Error> {
    if let Some(row) = changed {
        return Ok(Ok(row));
    }
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM ops_alerts WHERE alert_id = $1")
            .bind(alert_id)
            .fetch_optional(db)
            .await?;
    Ok(Err(state.map_or(Refused::Unknown, Refused::Closed)))
}

/// Every firing episode, most recent first.
pub async fn active(db: &PgPool) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ops_alerts WHERE state = 'firing'
          ORDER BY started_at DESC, alert_id DESC"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}

/// Filters of the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub rule: Option<String>,
    pub severity: Option<String>,
    pub component: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Keyset cursor: episodes strictly older than this (started_at, alert_id).
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// Episodes in every state, newest first.
pub async fn history(db: &PgPool, filter: &HistoryFilter) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ops_alerts
          WHERE ($1::text IS NULL OR rule = $1)
            AND ($2::text IS NULL OR severity = $2)
            AND ($3::text IS NULL OR component = $3)
            AND ($4::timestamptz IS NULL OR started_at >= $4)
            AND ($5::timestamptz IS NULL OR (started_at, alert_id) < ($5, $6))
          ORDER BY started_at DESC, alert_id DESC
          LIMIT $7"
    );
    let (before_at, before_id) = filter.before.clone().unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&filter.rule)
        .bind(&filter.severity)
        .bind(&filter.component)
        .bind(filter.since)
        .bind(before_at)
        .bind(before_id)
        .bind(filter.limit)
        .fetch_all(db)
        .await
}

/// Deletes closed episodes (resolved or cleared) that closed before `before`; returns
/// how many.
pub async fn remove_closed_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed =
        sqlx::query("DELETE FROM ops_alerts WHERE state <> 'firing' AND resolved_at < $1")
            .bind(before)
            .execute(db)
            .await?;
    Ok(removed.rows_affected())
}

/// The route's firing episodes due a notification — never notified, or last notified
/// `repeat` ago — unacknowledged, locked for the caller's transaction. Rows a raise is
/// touching right now are skipped (taken at the next pass), so a claim never waits on
/// a producer's transaction and the two can never deadlock.
pub async fn due_firing(
    tx: &mut PgConnection,
    severity: &str,
    repeat: std::time::Duration,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ops_alerts
          WHERE severity = $1 AND state = 'firing' AND NOT acknowledged
            AND (notified_at IS NULL OR notified_at <= now() - make_interval(secs => $2))
          ORDER BY started_at, alert_id
          FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(severity)
        .bind(repeat.as_secs_f64())
        .fetch_all(tx)
        .await
}

/// The route's resolved episodes that were notified firing and whose resolved message
/// is not out yet, locked for the caller's transaction.
pub async fn due_resolved(
    tx: &mut PgConnection,
    severity: &str,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ops_alerts
          WHERE severity = $1 AND state = 'resolved' AND notified_at IS NOT NULL
            AND NOT resolved_notified
          ORDER BY resolved_at, alert_id
          FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(severity)
        .fetch_all(tx)
        .await
}

/// Records that `alert_ids`' firing notification went out now.
pub async fn mark_notified(tx: &mut PgConnection, alert_ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ops_alerts SET notified_at = now() WHERE alert_id = ANY($1)")
        .bind(alert_ids)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records that `alert_ids`' resolved message is out (or will never be: silenced).
pub async fn mark_resolved_notified(
    tx: &mut PgConnection,
    alert_ids: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ops_alerts SET resolved_notified = true WHERE alert_id = ANY($1)")
        .bind(alert_ids)
        .execute(tx)
        .await?;
    Ok(())
}

/// Sets whether `alert_ids` are silenced now (silences start and end over time).
pub async fn set_silenced(
    tx: &mut PgConnection,
    alert_ids: &[String],
    silenced: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ops_alerts SET silenced = $2 WHERE alert_id = ANY($1) AND silenced <> $2")
        .bind(alert_ids)
        .bind(silenced)
        .execute(tx)
        .await?;
    Ok(())
}

/// The episodes `alert_ids`, oldest first.
pub async fn by_ids(db: &PgPool, alert_ids: &[String]) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ops_alerts WHERE alert_id = ANY($1) ORDER BY started_at, alert_id"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(alert_ids)
        .fetch_all(db)
        .await
}

/// How many episodes there are by rule, severity and state.
pub async fn counts(db: &PgPool) -> Result<Vec<(String, String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT rule, severity, state, count(*) FROM ops_alerts GROUP BY rule, severity, state",
    )
    .fetch_all(db)
    .await
}
