//! The `monitor_ledger` table, all of its SQL: one row per batch (or skipped tick) and,
//! as monitors arrive, per monitor run, for operators and for alerting on work that
//! stops running.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// One ledger row.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// `batch:<frequency>`.
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub evaluated: usize,
    pub triggered: usize,
    pub errors: usize,
    pub skipped: usize,
    /// `ok`, `partial` (some data unavailable), `failed` or `skipped`.
    pub status: &'static str,
    pub details: Value,
}

impl LedgerEntry {
    /// The row of a run that did not happen, and why.
    pub fn skipped(name: String, reason: &str) -> Self {
        Self {
            name,
            started_at: Utc::now(),
            duration_ms: 0.0,
            evaluated: 0,
            triggered: 0,
            errors: 0,
            skipped: 1,
            status: "skipped",
            details: serde_json::json!({"reason": reason}),
        }
    }
}

/// Appends one row.
pub async fn record(db: &PgPool, entry: &LedgerEntry) -> Result<(), sqlx::Error> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO monitor_ledger
             (name, started_at, duration_ms, evaluated, triggered, errors, skipped, status, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&entry.name)
    .bind(entry.started_at)
    .bind(entry.duration_ms)
    .bind(count(entry.evaluated))
    .bind(count(entry.triggered))
    .bind(count(entry.errors))
    .bind(count(entry.skipped))
    .bind(entry.status)
    .bind(sqlx::types::Json(&entry.details))
    .execute(db)
    .await?;
    Ok(())
}

/// The newest row of `name` that started at or after `since`, as JSON (the row's
/// columns), for answering a run asked for by name.
pub async fn latest_since(
    db: &PgPool,
    name: &str,
    since: DateTime<Utc>,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT to_jsonb(l) FROM monitor_ledger l
          WHERE name = $1 AND started_at >= $2 - interval '1 millisecond'
          ORDER BY id DESC LIMIT 1",
    )
    .bind(name)
    .bind(since)
    .fetch_optional(db)
    .await
}

/// Deletes rows that started before `before`; answers how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM monitor_ledger WHERE started_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}
