//! The `strategy_trigger_logs` table, all of its SQL: one row per trigger, claimed by
//! its unique `dedup_key` (two replicas, or a retry after a crash, can never both claim
//! one), with the sanitized snapshot, the message, each channel's delivery, and the
//! lease (name and token) its deliveries run under. Outcome writes are fenced by that
//! token; a resume takes only triggers whose lease lapsed.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::leases::{self, Lease};
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
    /// The lease its deliveries run under.
    pub lease: &'a Lease,
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
    /// When a delivery run began sending (`None`: nothing was ever sent).
    pub sending_at: Option<DateTime<Utc>>,
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
    let lease_names: Vec<&str> = rows.iter().map(|r| r.lease.name.as_str()).collect();
    let lease_tokens: Vec<i64> = rows.iter().map(|r| r.lease.token).collect();
    let claimed: Vec<(i64, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO strategy_trigger_logs
             (strategy_id, triggered_at, dedup_key, snapshot, message, deliveries, lease_name, lease_token)
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::text[],
                              $6::jsonb[], $7::text[], $8::bigint[])
         ON CONFLICT (dedup_key) DO NOTHING
         RETURNING id, strategy_id, dedup_key, triggered_at",
    )
    .bind(&strategy_ids)
    .bind(&at)
    .bind(&keys)
    .bind(&snapshots)
    .bind(&messages)
    .bind(&deliveries)
    .bind(&lease_names)
    .bind(&lease_tokens)
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

/// Records, before the first request of these triggers goes out, that requests may have
/// been sent (fenced like the outcomes; one statement for a whole claim chunk): a later
/// take-over then counts what it sends again as possible duplicates.
pub async fn mark_sending(db: &PgPool, log_ids: &[i64], lease: &Lease) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE strategy_trigger_logs SET sending_at = now()
          WHERE id = ANY($1) AND lease_name = $2 AND lease_token = $3",
    )
    .bind(log_ids)
    .bind(&lease.name)
    .bind(lease.token)
    .execute(db)
    .await?;
    Ok(())
}

/// Delivery outcomes to write: a trigger log's deliveries as they stand, under the
/// lease (name, token) they were made under.
#[derive(Debug, Clone)]
pub struct Outcomes {
    pub log_id: i64,
    pub deliveries: Vec<Delivery>,
    pub lease_name: String,
    pub lease_token: i64,
}

/// Writes delivery outcomes, many trigger logs in one statement, each only while the
/// log is still under the lease they were made under (fencing: a log another replica
/// took over is not overwritten). Answers how many logs were written.
pub async fn record_deliveries(db: &PgPool, rows: &[Outcomes]) -> Result<u64, sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.log_id).collect();
    let deliveries: Vec<Value> = rows.iter().map(|r| json!(r.deliveries)).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.lease_name.as_str()).collect();
    let tokens: Vec<i64> = rows.iter().map(|r| r.lease_token).collect();
    let written = sqlx::query(
        "UPDATE strategy_trigger_logs AS l SET deliveries = d.deliveries
           FROM UNNEST($1::bigint[], $2::jsonb[], $3::text[], $4::bigint[])
                AS d(id, deliveries, lease_name, lease_token)
          WHERE l.id = d.id AND l.lease_name = d.lease_name AND l.lease_token = d.lease_token",
    )
    .bind(&ids)
    .bind(&deliveries)
    .bind(&names)
    .bind(&tokens)
    .execute(db)
    .await?
    .rows_affected();
    Ok(written)
}

/// Takes over up to `limit` trigger logs with a pending delivery whose lease lapsed (or
/// that never had one), claimed less than `max_age` ago: each is moved under `lease`, so
/// two replicas never take the same one and the replica that lost it can no longer
/// record its outcomes. The rows are locked (`FOR UPDATE SKIP LOCKED`) only for this
/// short transaction, never while delivering.
pub async fn take_lapsed(
    db: &PgPool,
    lease: &Lease,
    max_age: std::time::Duration,
    limit: i64,
) -> Result<Vec<PendingLog>, sqlx::Error> {
    // A lease is live while its row has the log's token and has not expired.
    let live = leases::live_sql("l.lease_name", "l.lease_token");
    let mut tx = db.begin().await?;
    // Candidates, locked. The lease check here reads the statement's snapshot, which may
    // predate another replica's take-over of a row this statement then waited for...
    let candidates: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT l.id FROM strategy_trigger_logs l
          WHERE l.deliveries @> '[{{\"status\": \"pending\"}}]'
            AND l.claimed_at > now() - make_interval(secs => $1)
            AND NOT {live}
          ORDER BY l.id
          LIMIT $2
            FOR UPDATE OF l SKIP LOCKED"
    )))
    .bind(max_age.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // ...so it is checked again on the locked rows, with a fresh snapshot.
    let taken = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE strategy_trigger_logs l SET lease_name = $2, lease_token = $3
          WHERE l.id = ANY($1) AND NOT {live}
         RETURNING l.id, l.strategy_id, l.dedup_key, l.message, l.snapshot, l.deliveries,
                   l.sending_at"
    )))
    .bind(&candidates)
    .bind(&lease.name)
    .bind(lease.token)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(taken)
}
