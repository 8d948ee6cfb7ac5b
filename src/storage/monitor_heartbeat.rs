//! The `monitor_heartbeat` table, all of its SQL (DESIGN §13): one row per monitor —
//! when it last ran and how it went, and its live settings (`interval_seconds`,
//! `enabled`, `snoozed_until`), which operators change with an UPDATE or the PATCH
//! route and every replica reads at each cycle.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One monitor's row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeartbeatRow {
    pub monitor_name: String,
    pub last_run: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub interval_seconds: Option<i32>,
    pub enabled: bool,
    pub snoozed_until: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "monitor_name, last_run, last_status, interval_seconds, enabled, snoozed_until";

/// Creates the row of a monitor seen for the first time, with its default interval;
/// an existing row (and what operators set in it) is kept.
pub async fn ensure(
    db: &PgPool,
    name: &str,
    interval_seconds: Option<i32>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO monitor_heartbeat (monitor_name, interval_seconds) VALUES ($1, $2)
         ON CONFLICT (monitor_name) DO NOTHING",
    )
    .bind(name)
    .bind(interval_seconds)
    .execute(db)
    .await?;
    Ok(())
}

/// Every row, by name.
pub async fn all(db: &PgPool) -> Result<Vec<HeartbeatRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitor_heartbeat ORDER BY monitor_name"
    )))
    .fetch_all(db)
    .await
}

/// Claims this cycle of a monitor that runs once per cycle across replicas. The
/// cycles are windows of `interval_seconds` since the Unix epoch; the claim succeeds
/// (and sets `last_run` to now) only when no run started in this window nor in the
/// last half interval, so replicas whose jobs fire at different moments of the
/// window still run it once.
pub async fn claim_cycle(
    db: &PgPool,
    name: &str,
    interval_seconds: f64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE monitor_heartbeat SET last_run = now()
          WHERE monitor_name = $1
            AND (last_run IS NULL
                 OR (floor(extract(epoch FROM last_run) / $2) < floor(extract(epoch FROM now()) / $2)
                     AND last_run <= now() - make_interval(secs => $2 / 2)))",
    )
    .bind(name)
    .bind(interval_seconds)
    .execute(db)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Records a finished run — when it started and how it went — creating the row (with
/// `interval_seconds`) if it is missing.
pub async fn finish(
    db: &PgPool,
    name: &str,
    interval_seconds: Option<i32>,
    started_at: DateTime<Utc>,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO monitor_heartbeat (monitor_name, interval_seconds, last_run, last_status)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (monitor_name) DO UPDATE
            SET last_run = GREATEST(monitor_heartbeat.last_run, EXCLUDED.last_run),
                last_status = EXCLUDED.last_status",
    )
    .bind(name)
    .bind(interval_seconds)
    .bind(started_at)
    .bind(status)
    .execute(db)
    .await?;
    Ok(())
}

/// A change of a monitor's settings; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub interval_seconds: Option<i32>,
    pub enabled: Option<bool>,
    /// `Some(None)` lifts a snooze.
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
}

/// Applies `change`; answers the row after it, or `None` for an unknown monitor.
pub async fn update_settings(
    db: &PgPool,
    name: &str,
    change: &SettingsChange,
) -> Result<Option<HeartbeatRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE monitor_heartbeat
            SET interval_seconds = COALESCE($2, interval_seconds),
                enabled = COALESCE($3, enabled),
                snoozed_until = CASE WHEN $4 THEN $5 ELSE snoozed_until END,
                updated_at = now()
          WHERE monitor_name = $1
         RETURNING {COLUMNS}"
    )))
    .bind(name)
    .bind(change.interval_seconds)
    .bind(change.enabled)
    .bind(change.snoozed_until.is_some())
    .bind(change.snoozed_until.flatten())
    .fetch_optional(db)
    .await
}
