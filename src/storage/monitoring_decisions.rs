//! The `monitoring_decisions` table, all of its SQL: one row per (schedule, candle),
//! claimed as `pending` before the llm-proxy is called — the unique key is what makes
//! a close analysed at most once across the stream, backfills, replicas and restarts —
//! then completed with the decision (or `failed` / `skipped`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// One decision row.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: Uuid,
    pub schedule_id: Uuid,
    pub candle_open_time: i64,
    /// `pending`, `enter`, `abandon`, `continue`, `failed` or `skipped`.
    pub decision: String,
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub response: Option<Value>,
    pub latency_ms: Option<f64>,
    pub claimed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A schedule to claim a candle of.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    pub schedule_id: Uuid,
    pub entity_id: Uuid,
    pub trader_id: Uuid,
}

/// Claims `candle_open_time` for each schedule of `requests` in one statement; answers
/// (schedule, decision id) of those this call claimed (a row that exists already —
/// claimed by the stream, a backfill or another replica — is not claimed again).
pub async fn claim(
    db: &PgPool,
    requests: &[ClaimRequest],
    candle_open_time: i64,
    claimed_by: &str,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    let schedules: Vec<Uuid> = requests.iter().map(|r| r.schedule_id).collect();
    let entities: Vec<Uuid> = requests.iter().map(|r| r.entity_id).collect();
    let traders: Vec<Uuid> = requests.iter().map(|r| r.trader_id).collect();
    sqlx::query_as(
        "INSERT INTO monitoring_decisions
                (schedule_id, entity_id, trader_id, candle_open_time, decision, claimed_by)
         SELECT s, e, t, $4, 'pending', $5
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS u(s, e, t)
         ON CONFLICT (schedule_id, candle_open_time) DO NOTHING
      RETURNING schedule_id, id",
    )
    .bind(schedules)
    .bind(entities)
    .bind(traders)
    .bind(candle_open_time)
    .bind(claimed_by)
    .fetch_all(db)
    .await
}

/// A claim left `pending` longer than `older_than` (its claimer crashed): taken over
/// by `claimed_by`, at most `limit` at once. Answers (schedule, decision id, candle).
pub async fn take_over_stale(
    db: &PgPool,
    older_than: std::time::Duration,
    claimed_by: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE monitoring_decisions AS d SET claimed_at = now(), claimed_by = $2
           FROM (SELECT id FROM monitoring_decisions
                  WHERE decision = 'pending'
                    AND claimed_at < now() - make_interval(secs => $1)
                  ORDER BY claimed_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS stale
          WHERE d.id = stale.id
      RETURNING d.schedule_id, d.id, d.candle_open_time",
    )
    .bind(older_than.as_secs_f64())
    .bind(claimed_by)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// What an analysis produced.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub decision: &'a str,
    pub confidence: Option<f64>,
    pub reasoning: Option<&'a str>,
    pub response: Option<&'a Value>,
    pub latency_ms: Option<f64>,
}

/// Completes a pending claim (in the caller's transaction); false when it is no
/// longer pending (completed by a replica that took it over).
pub async fn complete(
    conn: &mut PgConnection,
    id: Uuid,
    completion: &Completion<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_decisions
            SET decision = $2, confidence = $3, reasoning = $4, response = $5, latency_ms = $6
          WHERE id = $1 AND decision = 'pending'",
    )
    .bind(id)
    .bind(completion.decision)
    .bind(completion.confidence)
    .bind(completion.reasoning)
    .bind(completion.response)
    .bind(completion.latency_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The latest `limit` decisions of a schedule, newest first.
pub async fn latest(
    db: &PgPool,
    schedule_id: Uuid,
    limit: i64,
) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, schedule_id, candle_open_time, decision, confidence, reasoning, response,
                latency_ms, claimed_at, created_at
           FROM monitoring_decisions WHERE schedule_id = $1
          ORDER BY candle_open_time DESC LIMIT $2",
    )
    .bind(schedule_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Marks pending claims `skipped` with `reason`; answers how many were still pending.
pub async fn skip_many(db: &PgPool, ids: &[Uuid], reason: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_decisions SET decision = 'skipped', reasoning = $2
          WHERE id = ANY($1) AND decision = 'pending'",
    )
    .bind(ids)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
