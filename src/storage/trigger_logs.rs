//! The `strategy_trigger_logs` table, all of its SQL: one row per trigger, claimed by
//! its unique `dedup_key` (two replicas, or a retry after a crash, can never both claim
//! one), with the sanitized snapshot, the message and each channel's delivery.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::notify::Delivery;

/// A trigger to claim.
#[derive(Debug, Clone)]
pub struct NewTriggerLog<'a> {
    pub strategy_id: Uuid,
    pub triggered_at: DateTime<Utc>,
    pub dedup_key: &'a str,
    /// Sanitized: conditions and values only, never channels or secrets.
    pub snapshot: &'a Value,
    pub message: &'a str,
    /// One pending delivery per channel.
    pub deliveries: &'a [Delivery],
}

/// A trigger claimed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub log_id: i64,
    pub strategy_id: Uuid,
    pub dedup_key: String,
    pub triggered_at: DateTime<Utc>,
}

/// A trigger log left with pending deliveries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingLog {
    pub id: i64,
    pub strategy_id: Uuid,
    pub dedup_key: String,
    pub message: Option<String>,
    pub snapshot: SqlJson<Value>,
    pub deliveries: SqlJson<Vec<Delivery>>,
}

/// Inserts the rows whose keys are free (one statement) and answers those claimed
/// here; a key already taken is left out.
pub async fn claim(
    tx: &mut PgConnection,
    rows: &[NewTriggerLog<'_>],
) -> Result<Vec<Claimed>, sqlx::Error> {
    let strategy_ids: Vec<Uuid> = rows.iter().map(|r| r.strategy_id).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.triggered_at).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.dedup_key).collect();
    let snapshots: Vec<&Value> = rows.iter().map(|r| r.snapshot).collect();
    let messages: Vec<&str> = rows.iter().map(|r| r.message).collect();
    let deliveries: Vec<Value> = rows.iter().map(|r| json!(r.deliveries)).collect();
    let claimed: Vec<(i64, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO strategy_trigger_logs (strategy_id, triggered_at, dedup_key, snapshot, message, deliveries)
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::text[], $6::jsonb[])
         ON CONFLICT (dedup_key) DO NOTHING
         RETURNING id, strategy_id, dedup_key, triggered_at",
    )
    .bind(&strategy_ids)
    .bind(&at)
    .bind(&keys)
    .bind(&snapshots)
    .bind(&messages)
    .bind(&deliveries)
    .fetch_all(tx)
    .await?;
    Ok(claimed
        .into_iter()
        .map(|(log_id, strategy_id, dedup_key, triggered_at)| Claimed {
            log_id,
            strategy_id,
            dedup_key,
            triggered_at,
        })
        .collect())
}

/// Whether `dedup_key` is already claimed.
pub async fn is_claimed(db: &PgPool, dedup_key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM strategy_trigger_logs WHERE dedup_key = $1)")
        .bind(dedup_key)
        .fetch_one(db)
        .await
}

/// Writes delivery outcomes, many trigger logs in one statement.
pub async fn record_deliveries(
    db: &PgPool,
    rows: &[(i64, Vec<Delivery>)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let deliveries: Vec<Value> = rows.iter().map(|r| json!(r.1)).collect();
    sqlx::query(
        "UPDATE strategy_trigger_logs AS l SET deliveries = d.deliveries
           FROM UNNEST($1::bigint[], $2::jsonb[]) AS d(id, deliveries)
          WHERE l.id = d.id",
    )
    .bind(&ids)
    .bind(&deliveries)
    .execute(db)
    .await?;
    Ok(())
}

/// The oldest trigger log with a pending delivery, triggered more than `grace_ms` ago
/// and less than a day ago, locked for this transaction (`FOR UPDATE SKIP LOCKED`: two
/// replicas never take the same one).
pub async fn next_pending(
    tx: &mut PgConnection,
    grace_ms: i64,
) -> Result<Option<PendingLog>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, strategy_id, dedup_key, message, snapshot, deliveries
           FROM strategy_trigger_logs
          WHERE deliveries @> '[{\"status\": \"pending\"}]'
            AND triggered_at < now() - make_interval(secs => $1::double precision / 1000)
            AND triggered_at > now() - interval '1 day'
          ORDER BY id
          LIMIT 1
            FOR UPDATE SKIP LOCKED",
    )
    .bind(grace_ms as f64)
    .fetch_optional(tx)
    .await
}

/// Replaces one trigger log's deliveries.
pub async fn set_deliveries(
    tx: &mut PgConnection,
    id: i64,
    deliveries: &[Delivery],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE strategy_trigger_logs SET deliveries = $2 WHERE id = $1")
        .bind(id)
        .bind(SqlJson(deliveries))
        .execute(tx)
        .await?;
    Ok(())
}
