//! The `engine_state` table, all of its SQL: each engine's latest tick and the rules
//! holding for it, shared by every replica. Ticks of one engine are applied under its
//! row lock, so two replicas taking alternate ticks reach the outcome one would.
//!
//! Rows are read with their JSON as text and decoded here, one by one: a row that
//! cannot be decoded (an earlier version stored numbers Postgres prints back past what
//! serde_json reads) is logged, counted and read as "no previous metrics" for that
//! engine alone, never failing the statement, the route or the monitor that read it.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// Rows whose JSON could not be decoded, since the process started.
static UNREADABLE: AtomicU64 = AtomicU64::new(0);

/// How many rows could not be decoded since the process started
/// (`monitoring_engine_state_unreadable_total`).
pub fn unreadable_rows() -> u64 {
    UNREADABLE.load(Ordering::Relaxed)
}

/// One engine's state.
#[derive(Debug, Clone, PartialEq)]
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

/// A row as read: its JSON as text, decoded by [`RawRow::decode`].
#[derive(sqlx::FromRow)]
struct RawRow {
    engine_id: String,
    last_recorded_at: Option<DateTime<Utc>>,
    last_received_at: Option<DateTime<Utc>>,
    last_metrics: Option<String>,
    holding: String,
}

impl RawRow {
    fn decode(self) -> EngineStateRow {
        let last_metrics = self.last_metrics.and_then(|text| {
            serde_json::from_str(&text)
                .inspect_err(|error| unreadable(&self.engine_id, "last_metrics", error))
                .ok()
        });
        let holding = serde_json::from_str(&self.holding)
            .inspect_err(|error| unreadable(&self.engine_id, "holding", error))
            .unwrap_or_else(|_| Value::Object(Default::default()));
        EngineStateRow {
            engine_id: self.engine_id,
            last_recorded_at: self.last_recorded_at,
            last_received_at: self.last_received_at,
            last_metrics,
            holding,
        }
    }
}

fn unreadable(engine_id: &str, column: &str, error: &serde_json::Error) {
    UNREADABLE.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(engine_id, column, %error,
        "an engine's stored state cannot be read; taken as no previous state for it");
}

async fn decoded(
    rows: Result<Vec<RawRow>, sqlx::Error>,
) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    Ok(rows?.into_iter().map(RawRow::decode).collect())
}

const COLUMNS: &str = "engine_id, last_recorded_at, last_received_at,
                       last_metrics::text AS last_metrics, holding::text AS holding";

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
    decoded(
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(engine_ids)
            .fetch_all(conn)
            .await,
    )
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
    decoded(
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(rule)
            .fetch_all(conn)
            .await,
    )
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
    decoded(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await).await
}

/// Every engine known: those that ticked and those expected that never did.
pub async fn all(db: &PgPool) -> Result<Vec<EngineStateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM engine_state ORDER BY engine_id");
    decoded(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await).await
}

/// Repairs what earlier versions could store (run at startup): metrics that cannot be
/// read back are dropped (the engine's next tick writes them anew), and a latest-tick
/// time further ahead of `now` than `max_skew` is brought back to when the tick was
/// received, so later ticks are judged again. Answers the rows repaired.
pub async fn repair(
    db: &PgPool,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<u64, sqlx::Error> {
    let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM engine_state"
    )))
    .fetch_all(db)
    .await?;
    let unreadable: Vec<String> = rows
        .into_iter()
        .filter(|row| {
            row.last_metrics
                .as_deref()
                .is_some_and(|text| serde_json::from_str::<Value>(text).is_err())
        })
        .map(|row| row.engine_id)
        .collect();
    let dropped = sqlx::query(
        "UPDATE engine_state SET last_metrics = NULL, updated_at = now()
          WHERE engine_id = ANY($1::text[])",
    )
    .bind(&unreadable)
    .execute(db)
    .await?
    .rows_affected();
    let future = sqlx::query(
        "UPDATE engine_state SET last_recorded_at = LEAST(last_received_at, $1), updated_at = now()
          WHERE last_recorded_at > $1 + $2::interval",
    )
    .bind(now)
    .bind(format!("{} seconds", max_skew.num_seconds()))
    .execute(db)
    .await?
    .rows_affected();
    if dropped + future > 0 {
        tracing::warn!(
            unreadable = dropped,
            ahead_of_clock = future,
            "repaired engine states stored by an earlier version"
        );
    }
    Ok(dropped + future)
}
