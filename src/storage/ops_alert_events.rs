//! The `ops_alert_events` table, all of its SQL: every operational alert event in
//! order, so that a stream client reconnecting with `Last-Event-ID` gets what it missed.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// One stored event: its id (the stream's event id), its kind and its JSON line.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub event: String,
    pub line: Value,
}

/// Stores an event; returns its id.
pub async fn insert(
    db: &PgPool,
    alert_id: &str,
    event: &str,
    line: &Value,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO ops_alert_events (alert_id, event, line) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(alert_id)
    .bind(event)
    .bind(line)
    .fetch_one(db)
    .await
}

/// Up to `limit` events after `after`, oldest first.
pub async fn after(db: &PgPool, after: i64, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event, line FROM ops_alert_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes events recorded before `before`; returns how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM ops_alert_events WHERE recorded_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}
