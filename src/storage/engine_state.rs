//! The `engine_state` table, all of its SQL: each engine's latest tick and the rules
//! holding for it, shared by every replica. Ticks of one engine are applied under its
//! row lock, so two replicas taking alternate ticks reach the outcome one would.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// One engine's state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EngineStateRow {
    pub engine_id: String,
    /// The latest tick's own timestamp.
    pub last_recorded_at: Option<DateTime<Utc>>,
    /// When the latest tick was received (server clock); `None`: never.
    pub last_received_at: Option<DateTime<Utc>>,
    pub last_metrics: Option<Value>,
    /// `{"<rule>": "<severity>"}` for the rules holding now.
    pub holding: Value,
}

const COLUMNS: &str = "engine_id, last_recorded_at, last_received_at, last_metrics, holding";

/// Creates the rows of `engine_ids` that do not exist yet (never ticked).
pub async fn ensure(conn: &mut PgConnection, engine_ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO engine_state (engine_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(engine_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the rows of `engine_ids` (sorted: replicas lock in the same order and never
/// deadlock), creating those that do not exist yet, for the caller's transaction, and
/// answers them — one statement.
pub async fn lock(
    conn: &mut PgConnection,
    engine_ids: &[String],
) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO engine_state (engine_id) SELECT unnest($1::text[])
         ON CONFLICT (engine_id) DO UPDATE SET engine_id = EXCLUDED.engine_id
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(engine_ids)
        .fetch_all(conn)
        .await
}

/// Rows whose heartbeat the timer may judge now: not already lapsed, not locked by a
/// tick being applied; locked for the caller's transaction.
pub async fn lock_for_heartbeat(
    conn: &mut PgConnection,
    rule: &str,
) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM engine_state WHERE NOT holding ? $1
          ORDER BY engine_id FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(rule)
        .fetch_all(conn)
        .await
}

/// Writes `rows` back (each by its engine id).
pub async fn save(conn: &mut PgConnection, rows: &[EngineStateRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = rows.iter().map(|r| r.engine_id.as_str()).collect();
    let recorded: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.last_recorded_at).collect();
    let received: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.last_received_at).collect();
    let metrics: Vec<Option<Value>> = rows.iter().map(|r| r.last_metrics.clone()).collect();
    let holding: Vec<Value> = rows.iter().map(|r| r.holding.clone()).collect();
    sqlx::query(
        "UPDATE engine_state AS s SET last_recorded_at = u.recorded, last_received_at = u.received,
                last_metrics = u.metrics, holding = u.holding, updated_at = now()
           FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::jsonb[], $5::jsonb[])
                AS u(engine_id, recorded, received, metrics, holding)
          WHERE s.engine_id = u.engine_id",
    )
    .bind(ids)
    .bind(recorded)
    .bind(received)
    .bind(metrics)
    .bind(holding)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every engine that has ticked, with its latest metrics.
pub async fn latest(db: &PgPool) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM engine_state WHERE last_metrics IS NOT NULL ORDER BY engine_id"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}

/// Every engine known: those that ticked and those expected that never did.
pub async fn all(db: &PgPool) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM engine_state ORDER BY engine_id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}
