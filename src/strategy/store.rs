//! The `strategies` and `strategy_conditions` tables, all of their SQL: the loader's
//! reads (a constant number of set-based queries however many strategies there are),
//! batched status writes, `once` completion in the claim's transaction, and the reads of
//! the operator routes. JSON columns are read as text and replaced by NULL past their
//! size bound, so an oversized document never leaves Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::resolved::{
    ConditionRow, MAX_CHANNELS_BYTES, MAX_PARAMS_DB_BYTES, MAX_TEMPLATE_BYTES, MAX_TREE_BYTES,
    ResolvedStrategy, StrategyRow,
};
use crate::sharding::Ownership;
use crate::sharding::hash::SHARD_HASH_SQL;

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

/// Which strategies this replica loads: a static shard, or the virtual shards it holds
/// now (`SHARD_COUNT=auto`).
#[derive(Debug, Clone)]
pub enum ShardFilter {
    Static(Shard),
    Leased(Arc<Ownership>),
}

impl From<Shard> for ShardFilter {
    fn from(shard: Shard) -> Self {
        Self::Static(shard)
    }
}

impl ShardFilter {
    /// The SQL condition on a `user_id` column, built from integers only.
    fn sql(&self) -> String {
        match self {
            Self::Static(shard) => shard.sql(),
            Self::Leased(ownership) => ownership.sql(),
        }
    }

    /// Whether `user_id`'s strategies are this replica's.
    pub fn owns(&self, user_id: Uuid) -> bool {
        match self {
            Self::Static(shard) => crate::sharding::hash::owns(user_id, shard.index, shard.count),
            Self::Leased(ownership) => ownership.owns(user_id),
        }
    }
}

/// Marks strategies past `expires_at` as `expired`; returns their ids.
pub async fn expire(pool: &PgPool, shard: &ShardFilter) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = format!(
        "UPDATE strategies SET status = 'expired', error = NULL
         WHERE status IN ('active', 'error') AND expires_at <= now() AND {}
         RETURNING id",
        shard.sql()
    );
    // The shard clause is built from integers, never from input text.
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
}

/// The id and version of every loadable strategy of the shard.
pub async fn versions(
    pool: &PgPool,
    shard: &ShardFilter,
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

/// The channels of each strategy in `wanted` still at the given version (text, NULL
/// past its bound): what the Redis cache of versions never holds. A strategy changed
/// since is absent, so the caller reads it whole.
pub async fn channels_at(
    pool: &PgPool,
    wanted: &[(Uuid, DateTime<Utc>)],
) -> Result<HashMap<Uuid, Option<String>>, sqlx::Error> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, versions): (Vec<Uuid>, Vec<DateTime<Utc>>) = wanted.iter().copied().unzip();
    let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT s.id,
                CASE WHEN octet_length(t.channels) > {MAX_CHANNELS_BYTES} THEN NULL ELSE t.channels END
           FROM strategies s
           JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS w(id, version)
             ON s.id = w.id AND s.updated_at = w.version,
                LATERAL (SELECT s.channels::text AS channels OFFSET 0) t"
    )))
    .bind(&ids)
    .bind(&versions)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The strategies columns, each JSON document converted to text once (the `OFFSET 0`
/// keeps Postgres from inlining the conversion into both the size test and the output)
/// and replaced by NULL past its bound.
fn strategies_select(filter: &str) -> String {
    format!(
        "SELECT s.id, s.user_id, s.name, s.status,
                CASE WHEN octet_length(t.logic_tree) > {MAX_TREE_BYTES} THEN NULL ELSE t.logic_tree END AS logic_tree,
                s.frequency, s.trigger_mode, s.cooldown_seconds,
                CASE WHEN octet_length(t.channels) > {MAX_CHANNELS_BYTES} THEN NULL ELSE t.channels END AS channels,
                CASE WHEN octet_length(s.message_template) > {MAX_TEMPLATE_BYTES} THEN NULL ELSE s.message_template END AS message_template,
                s.expires_at, s.error, s.updated_at
         FROM strategies s,
              LATERAL (SELECT s.logic_tree::text AS logic_tree, s.channels::text AS channels OFFSET 0) t
         WHERE {filter}"
    )
}

fn conditions_select(filter: &str) -> String {
    format!(
        "SELECT c.id, c.strategy_id, c.kind,
                CASE WHEN octet_length(t.params) > {MAX_PARAMS_DB_BYTES} THEN NULL ELSE t.params END AS params
         FROM strategy_conditions c,
              LATERAL (SELECT c.params::text AS params OFFSET 0) t
         WHERE {filter}"
    )
}

/// The rows and conditions of `ids` (any status), read in one snapshot so a strategy and
/// its conditions agree. Two queries.
pub async fn fetch(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ResolvedStrategy>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    fetch_where(pool, "s.id = ANY($1)", "c.strategy_id = ANY($1)", Some(ids)).await
}

/// Every loadable strategy of the shard with its conditions: the cold-start load, with
/// no id list to send. Two queries.
pub async fn fetch_loadable(
    pool: &PgPool,
    shard: &ShardFilter,
) -> Result<Vec<ResolvedStrategy>, sqlx::Error> {
    // Unqualified columns resolve to `strategies`: the lateral part only has the texts.
    let strategies = format!("{LOADABLE} AND {}", shard.sql());
    let conditions = format!(
        "c.strategy_id IN (SELECT id FROM strategies WHERE {LOADABLE} AND {})",
        shard.sql()
    );
    fetch_where(pool, &strategies, &conditions, None).await
}

async fn fetch_where(
    pool: &PgPool,
    strategies_filter: &str,
    conditions_filter: &str,
    ids: Option<&[Uuid]>,
) -> Result<Vec<ResolvedStrategy>, sqlx::Error> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    // The filters are built in this module from constants and integers only.
    let mut conditions_query = sqlx::query_as::<_, ConditionRow>(sqlx::AssertSqlSafe(
        conditions_select(conditions_filter),
    ));
    let mut strategies_query =
        sqlx::query_as::<_, StrategyRow>(sqlx::AssertSqlSafe(strategies_select(strategies_filter)));
    if let Some(ids) = ids {
        conditions_query = conditions_query.bind(ids);
        strategies_query = strategies_query.bind(ids);
    }
    let conditions: Vec<ConditionRow> = conditions_query.fetch_all(&mut *tx).await?;
    let rows: Vec<StrategyRow> = strategies_query.fetch_all(&mut *tx).await?;
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
        .map(|row| {
            let mut conditions = by_strategy.remove(&row.id).unwrap_or_default();
            // Condition order (`conditions[i]` in messages) is by id; sorting here
            // spares Postgres a sort of every condition row.
            conditions.sort_unstable_by_key(|c| c.id);
            ResolvedStrategy { conditions, row }
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

/// Which of `ids` are still strategies (the others were deleted since they were read).
pub async fn existing(
    db: impl sqlx::PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM strategies WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Completes `once` strategies that just fired (inside the claim's transaction).
pub async fn complete(tx: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE strategies SET status = 'completed' WHERE id = ANY($1) AND status = 'active'",
    )
    .bind(ids)
    .execute(tx)
    .await?;
    Ok(())
}

/// How many strategies have each status, over the whole table.
pub async fn count_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, count(*) FROM strategies GROUP BY status")
        .fetch_all(pool)
        .await
}

/// One strategy as stored, for operators (channels as stored: callers show kinds only).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredDefinition {
    pub name: String,
    pub status: String,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub frequency: String,
    pub trigger_mode: String,
    pub cooldown_seconds: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub logic_tree: SqlJson<Value>,
    pub channels: SqlJson<Value>,
    pub has_message_template: bool,
    /// Id, kind and params of each condition, by id.
    #[sqlx(skip)]
    pub conditions: Vec<(Uuid, String, Value)>,
}

/// The stored definition of `id`, with its conditions; `None` when there is none.
pub async fn definition(pool: &PgPool, id: Uuid) -> Result<Option<StoredDefinition>, sqlx::Error> {
    let found: Option<StoredDefinition> = sqlx::query_as(
        "SELECT name, status, error, updated_at, frequency, trigger_mode, cooldown_seconds,
                expires_at, logic_tree, channels,
                message_template IS NOT NULL AS has_message_template
           FROM strategies WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(mut definition) = found else {
        return Ok(None);
    };
    let conditions: Vec<(Uuid, String, SqlJson<Value>)> = sqlx::query_as(
        "SELECT id, kind, params FROM strategy_conditions WHERE strategy_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    definition.conditions = conditions
        .into_iter()
        .map(|(id, kind, params)| (id, kind, params.0))
        .collect();
    Ok(Some(definition))
}

/// Where a trigger of a strategy is delivered now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryTarget {
    /// The channels document as stored.
    pub channels: String,
    pub frequency: String,
    /// The owner, whose share of the delivery capacity the delivery takes.
    pub user_id: Uuid,
}

/// Where a trigger of `id` is delivered now, whatever the strategy's status (a `once`
/// strategy that fired is `completed`; a resumed delivery still goes out); `None` when
/// the strategy is gone.
pub async fn delivery_target(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<DeliveryTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channels::text AS channels, frequency, user_id FROM strategies WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}
