//! The `ops_silences` table, all of its SQL: operators' silences over operational
//! alerts (DESIGN §10), each a list of matchers with a start and an end.

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
    /// `[{"name", "value", "is_regex"}]`.
    #[schema(value_type = Vec<Object>)]
    pub matchers: Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// Stores a silence (its matchers already checked).
pub async fn insert(db: &PgPool, silence: &SilenceRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ops_silences (id, matchers, starts_at, ends_at, created_by, comment)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(silence.id)
    .bind(&silence.matchers)
    .bind(silence.starts_at)
    .bind(silence.ends_at)
    .bind(&silence.created_by)
    .bind(&silence.comment)
    .execute(db)
    .await?;
    Ok(())
}

/// Silences not yet ended at `now` (current and future ones), soonest end first.
pub async fn unexpired<'e>(
    db: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
) -> Result<Vec<SilenceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, matchers, starts_at, ends_at, created_by, comment
           FROM ops_silences WHERE ends_at > $1 ORDER BY ends_at, id",
    )
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
