//! The `ops_silences` table, all of its SQL: operators' silences over operational
//! alerts (DESIGN §10), each a list of matchers with a start and an end. The same table
//! serves the Alertmanager API's silences (DESIGN §18), whose expired ones stay listed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// One silence as stored and listed.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct SilenceRow {
    pub id: Uuid,
    /// `[{"name", "value", "is_regex", "is_equal"}]`.
    #[schema(value_type = Vec<Object>)]
    pub matchers: Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    /// When it was created, changed or expired last.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment, updated_at";

/// Runs `sql` with the silence's columns as `$1`…`$7` (id, matchers, starts_at, ends_at,
/// created_by, comment, updated_at); returns the rows it changed.
async fn write(db: &PgPool, sql: &'static str, silence: &SilenceRow) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(silence.id)
        .bind(&silence.matchers)
        .bind(silence.starts_at)
        .bind(silence.ends_at)
        .bind(&silence.created_by)
        .bind(&silence.comment)
        .bind(silence.updated_at)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Stores a silence (its matchers already checked).
pub async fn insert(db: &PgPool, silence: &SilenceRow) -> Result<(), sqlx::Error> {
    write(
        db,
        "INSERT INTO ops_silences (id, matchers, starts_at, ends_at, created_by, comment,
                                   updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        silence,
    )
    .await
    .map(drop)
}

/// Replaces silence `silence.id`'s matchers, period and texts, if it has not ended;
/// false when there is no such silence in force or to come.
pub async fn update_unexpired(db: &PgPool, silence: &SilenceRow) -> Result<bool, sqlx::Error> {
    let updated = write(
        db,
        "UPDATE ops_silences SET matchers = $2, starts_at = $3, ends_at = $4,
                created_by = $5, comment = $6, updated_at = $7
          WHERE id = $1 AND ends_at > now()",
        silence,
    )
    .await?;
    Ok(updated > 0)
}

/// Every silence, ended ones included, soonest end first.
pub async fn all(db: &PgPool) -> Result<Vec<SilenceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM ops_silences ORDER BY ends_at, id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await
}

/// Silence `id`, ended or not.
pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<SilenceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM ops_silences WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Ends silence `id` now (kept, listed as expired); one not yet begun begins and ends
/// now. False when there is no such silence; an ended one stays as it was.
pub async fn expire(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "WITH ended AS (
             UPDATE ops_silences
                SET ends_at = now(), starts_at = LEAST(starts_at, now() - interval '1 millisecond'),
                    updated_at = now()
              WHERE id = $1 AND ends_at > now()
          RETURNING true)
         SELECT true FROM ended UNION ALL SELECT true FROM ops_silences WHERE id = $1 LIMIT 1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// Deletes silences that ended before `before`; returns how many.
pub async fn remove_ended_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM ops_silences WHERE ends_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}

/// Silences not yet ended at `now` (current and future ones), soonest end first.
pub async fn unexpired<'e>(
    db: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
) -> Result<Vec<SilenceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM ops_silences WHERE ends_at > $1 ORDER BY ends_at, id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_all(db)
        .await
}

/// Deletes silence `id`; false when there was none.
pub async fn delete(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM ops_silences WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
