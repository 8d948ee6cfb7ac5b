//! The `workflow_schedules` table, all of its SQL: the signals synapse-api wants
//! re-analysed at each close of their candle interval, and their progress (status,
//! re-analyses, error streak).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// One schedule.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub workflow_type: String,
    /// The signal.
    pub entity_id: Uuid,
    pub trader_id: Uuid,
    pub interval: String,
    pub symbol: String,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Open time (Unix ms) of the last analysed candle.
    pub last_candle_time: Option<i64>,
    pub consecutive_errors: i32,
    pub is_active: bool,
    /// `monitoring`, `in_position`, `expired` or `error`.
    pub status: String,
    pub reanalysis_count: i32,
    pub max_reanalyses: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, workflow_type, entity_id, trader_id, interval, symbol, last_run_at,
    last_candle_time, consecutive_errors, is_active, status, reanalysis_count, max_reanalyses,
    created_at, updated_at";

/// Every schedule being monitored (active, status `monitoring`).
pub async fn active(db: &PgPool) -> Result<Vec<ScheduleRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM workflow_schedules
          WHERE is_active AND status = 'monitoring' AND workflow_type = 'signal_monitoring'"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}

/// One schedule.
pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<ScheduleRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM workflow_schedules WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One schedule locked for the caller's transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<ScheduleRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM workflow_schedules WHERE id = $1 FOR UPDATE");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// What an analysis changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub status: String,
    pub is_active: bool,
    pub reanalysis_count: i32,
    pub consecutive_errors: i32,
    pub last_candle_time: i64,
}

/// Writes `progress` to schedule `id` (in the caller's transaction).
pub async fn save_progress(
    conn: &mut PgConnection,
    id: Uuid,
    progress: &Progress,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE workflow_schedules
            SET status = $2, is_active = $3, reanalysis_count = $4, consecutive_errors = $5,
                last_candle_time = greatest(coalesce(last_candle_time, $6), $6),
                last_run_at = now(), updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&progress.status)
    .bind(progress.is_active)
    .bind(progress.reanalysis_count)
    .bind(progress.consecutive_errors)
    .bind(progress.last_candle_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts one more failed analysis of schedule `id`; at `max_errors` in a row it goes
/// to `error` (and leaves the monitored set). Answers the streak and whether it did.
pub async fn record_error(
    db: &PgPool,
    id: Uuid,
    max_errors: i32,
) -> Result<Option<(i32, bool)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE workflow_schedules
            SET consecutive_errors = consecutive_errors + 1,
                status = CASE WHEN consecutive_errors + 1 >= $2 AND status = 'monitoring'
                              THEN 'error' ELSE status END,
                last_run_at = now(), updated_at = now()
          WHERE id = $1
      RETURNING consecutive_errors, status = 'error'",
    )
    .bind(id)
    .bind(max_errors)
    .fetch_optional(db)
    .await
}

/// Schedules in `error` (the `analysis_failing` alert's count).
pub async fn count_in_error(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM workflow_schedules WHERE status = 'error' AND is_active",
    )
    .fetch_one(db)
    .await
}
