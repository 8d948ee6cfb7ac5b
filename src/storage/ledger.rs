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
