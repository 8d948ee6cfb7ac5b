//! The `replicas` table, all of its SQL (DESIGN §9, `SHARD_COUNT=auto`): every replica
//! in automatic sharding registers with a heartbeat; those whose heartbeat is recent are
//! live and divide the virtual shards among themselves.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A registered replica.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Replica {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub version: String,
}

/// Registers `id` or renews its heartbeat.
pub async fn heartbeat(db: &PgPool, id: &str, version: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replicas (id, version) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), version = EXCLUDED.version",
    )
    .bind(id)
    .bind(version)
    .execute(db)
    .await?;
    Ok(())
}

/// The replicas whose heartbeat is younger than `ttl`, by id.
pub async fn live(db: &PgPool, ttl: Duration) -> Result<Vec<Replica>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, started_at, heartbeat_at, version FROM replicas
          WHERE heartbeat_at > now() - make_interval(secs => $1)
          ORDER BY id",
    )
    .bind(ttl.as_secs_f64())
    .fetch_all(db)
    .await
}

/// Takes `id` out of the registry (a replica leaving on shutdown).
pub async fn leave(db: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM replicas WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Forgets replicas silent for longer than `after` (killed ones never leave).
pub async fn forget_silent(db: &PgPool, after: Duration) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM replicas WHERE heartbeat_at < now() - make_interval(secs => $1)")
            .bind(after.as_secs_f64())
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}
