//! The `health_snapshots` table, all of its SQL: each platform health cycle's snapshot,
//! the latest of which every replica serves.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// Stores a snapshot.
pub async fn insert(db: &PgPool, snapshot: &Value) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO health_snapshots (snapshot) VALUES ($1)")
        .bind(snapshot)
        .execute(db)
        .await?;
    Ok(())
}

/// The latest snapshot, if any.
pub async fn latest(db: &PgPool) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT snapshot FROM health_snapshots ORDER BY id DESC LIMIT 1")
        .fetch_optional(db)
        .await
}

/// Deletes snapshots taken before `before`; returns how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM health_snapshots WHERE taken_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}
