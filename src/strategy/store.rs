//! The loader's SQL: a constant number of set-based queries however many strategies
//! there are, and batched status writes. JSON columns are read as text and replaced by
//! NULL past their size bound, so an oversized document never leaves Postgres.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::resolved::{
    ConditionRow, MAX_CHANNELS_BYTES, MAX_PARAMS_DB_BYTES, MAX_TEMPLATE_BYTES, MAX_TREE_BYTES,
    ResolvedStrategy, StrategyRow,
};
use super::shard::SHARD_HASH_SQL;

/// The statuses the loader compiles: `active` to run, `error` to notice a fix.
const LOADABLE: &str =
    "status IN ('active', 'error') AND (expires_at IS NULL OR expires_at > now())";

/// This replica's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    fn sql(self) -> String {
        if self.count <= 1 {
            "TRUE".to_owned()
        } else {
            format!("({SHARD_HASH_SQL} % {} = {})", self.count, self.index)
        }
    }
}

/// Marks strategies past `expires_at` as `expired`; returns their ids.
pub async fn expire(pool: &PgPool, shard: Shard) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = format!(
        "UPDATE strategies SET status = 'expired', error = NULL
         WHERE status IN ('active', 'error') AND expires_at <= now() AND {}
         RETURNING id",
        shard.sql()
    );
    // The shard clause is built from two integers, never from input text.
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
}

/// The id and version of every loadable strategy of the shard.
pub async fn versions(
    pool: &PgPool,
    shard: Shard,
) -> Result<HashMap<Uuid, DateTime<Utc>>, sqlx::Error> {
    let sql = format!(
        "SELECT id, updated_at FROM strategies WHERE {LOADABLE} AND {}",
        shard.sql()
    );
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

fn bounded(column: &str, max: i32) -> String {
    format!(
        "CASE WHEN octet_length({column}::text) > {max} THEN NULL ELSE {column}::text END AS {column}"
    )
}

/// The rows and conditions of `ids` (any status), read in one snapshot so a strategy and
/// its conditions agree. Two queries.
pub async fn fetch(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ResolvedStrategy>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let strategies_sql = format!(
        "SELECT id, user_id, name, status, {}, frequency, trigger_mode, cooldown_seconds, {},
                {}, expires_at, error, updated_at
         FROM strategies WHERE id = ANY($1)",
        bounded("logic_tree", MAX_TREE_BYTES),
        bounded("channels", MAX_CHANNELS_BYTES),
        // message_template is text already; the cast is a no-op.
        bounded("message_template", MAX_TEMPLATE_BYTES),
    );
    let rows: Vec<StrategyRow> = sqlx::query_as(sqlx::AssertSqlSafe(strategies_sql))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    let conditions_sql = format!(
        "SELECT id, strategy_id, kind, {} FROM strategy_conditions
         WHERE strategy_id = ANY($1) ORDER BY strategy_id, id",
        bounded("params", MAX_PARAMS_DB_BYTES)
    );
    let conditions: Vec<ConditionRow> = sqlx::query_as(sqlx::AssertSqlSafe(conditions_sql))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    let mut by_strategy: HashMap<Uuid, Vec<ConditionRow>> = HashMap::with_capacity(rows.len());
    for condition in conditions {
        by_strategy
            .entry(condition.strategy_id)
            .or_default()
            .push(condition);
    }
    Ok(rows
        .into_iter()
        .map(|row| ResolvedStrategy {
            conditions: by_strategy.remove(&row.id).unwrap_or_default(),
            row,
        })
        .collect())
}

/// A strategy's validation outcome to record.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub id: Uuid,
    pub version: DateTime<Utc>,
    /// `Some(message)`: status `error`; `None`: back to `active`.
    pub error: Option<String>,
}

/// Records validation outcomes in two statements. A row changed since it was read (a
/// newer `updated_at`) is left alone: the next reload judges the new version.
pub async fn record_statuses(pool: &PgPool, changes: &[StatusChange]) -> Result<u64, sqlx::Error> {
    let (failed, fixed): (Vec<&StatusChange>, Vec<&StatusChange>) =
        changes.iter().partition(|c| c.error.is_some());
    let mut written = 0;
    if !failed.is_empty() {
        let ids: Vec<Uuid> = failed.iter().map(|c| c.id).collect();
        let versions: Vec<DateTime<Utc>> = failed.iter().map(|c| c.version).collect();
        let messages: Vec<String> = failed
            .iter()
            .map(|c| c.error.clone().unwrap_or_default())
            .collect();
        written += sqlx::query(
            "UPDATE strategies s SET status = 'error', error = v.message
             FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS v(id, version, message)
             WHERE s.id = v.id AND s.updated_at = v.version
               AND s.status IN ('active', 'error')
               AND (s.status <> 'error' OR s.error IS DISTINCT FROM v.message)",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&messages)
        .execute(pool)
        .await?
        .rows_affected();
    }
    if !fixed.is_empty() {
        let ids: Vec<Uuid> = fixed.iter().map(|c| c.id).collect();
        let versions: Vec<DateTime<Utc>> = fixed.iter().map(|c| c.version).collect();
        written += sqlx::query(
            "UPDATE strategies s SET status = 'active', error = NULL
             FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, version)
             WHERE s.id = v.id AND s.updated_at = v.version AND s.status = 'error'",
        )
        .bind(&ids)
        .bind(&versions)
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(written)
}

/// Whether `user_id` belongs to `shard` — for rows read by id, which the shard clause
/// did not filter.
pub fn in_shard(user_id: Uuid, shard: Shard) -> bool {
    super::shard::owns(user_id, shard.index, shard.count)
}
