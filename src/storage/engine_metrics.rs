//! The `engine_metrics` table, all of its SQL: every engine tick as received, written in
//! batches, and its history aggregated per step.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// One tick to store.
#[derive(Debug, Clone)]
pub struct MetricsRow {
    pub engine_id: String,
    pub recorded_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub metrics: Value,
}

/// Stores `rows` in one statement.
pub async fn insert_many(conn: &mut PgConnection, rows: &[MetricsRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = rows.iter().map(|r| r.engine_id.as_str()).collect();
    let recorded: Vec<DateTime<Utc>> = rows.iter().map(|r| r.recorded_at).collect();
    let received: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let metrics: Vec<&Value> = rows.iter().map(|r| &r.metrics).collect();
    sqlx::query(
        "INSERT INTO engine_metrics (engine_id, recorded_at, received_at, metrics)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::jsonb[])",
    )
    .bind(ids)
    .bind(recorded)
    .bind(received)
    .bind(metrics)
    .execute(conn)
    .await?;
    Ok(())
}

/// One numeric field over one step.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepStats {
    /// The step's start.
    pub at: DateTime<Utc>,
    /// The field's dotted path, e.g. `pnl.daily`.
    pub field: String,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    /// The value of the step's latest tick carrying the field.
    pub last: f64,
    pub count: i64,
}

/// Min, max, avg and last of each of `fields` (dotted paths) per `step_seconds` of
/// engine `engine_id`'s ticks in `[since, until)`, by the ticks' own time.
pub async fn series(
    db: &PgPool,
    engine_id: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step_seconds: f64,
    fields: &[&str],
) -> Result<Vec<StepStats>, sqlx::Error> {
    sqlx::query_as(
        "SELECT to_timestamp(floor(extract(epoch FROM m.recorded_at) / $4) * $4) AS at,
                f.path AS field, min(x.v) AS min, max(x.v) AS max, avg(x.v) AS avg,
                (array_agg(x.v ORDER BY m.recorded_at DESC, m.id DESC))[1] AS last,
                count(*) AS count
           FROM engine_metrics m
          CROSS JOIN unnest($5::text[]) AS f(path)
          CROSS JOIN LATERAL (
                SELECT CASE WHEN jsonb_typeof(m.metrics #> string_to_array(f.path, '.')) = 'number'
                            THEN (m.metrics #>> string_to_array(f.path, '.'))::double precision
                       END AS v) x
          WHERE m.engine_id = $1 AND m.recorded_at >= $2 AND m.recorded_at < $3
            AND x.v IS NOT NULL
          GROUP BY 1, 2
          ORDER BY 1, 2",
    )
    .bind(engine_id)
    .bind(since)
    .bind(until)
    .bind(step_seconds)
    .bind(fields)
    .fetch_all(db)
    .await
}

/// Deletes ticks received before `before`; returns how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM engine_metrics WHERE received_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}
