//! The `strategy_state` table, all of its SQL: per strategy, the previous values crosses
//! compare against, the last result (edges), the last trigger (cooldowns, bars), the
//! last candle evaluated on its close and the count of consecutive unknown evaluations.
//! Read for a batch, written back for the whole batch in one statement; the trigger
//! fields are written by the claim, in its transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::ToSchema;

/// What a batch needs of a strategy's stored state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredState {
    /// Previous value per condition id.
    pub previous: HashMap<Uuid, f64>,
    pub consecutive_errors: i32,
    /// The tree's result at the last evaluation (`None`: unknown or never).
    pub last_result: Option<bool>,
    pub last_triggered_at: Option<DateTime<Utc>>,
    /// The last candle (open time) evaluated on its close.
    pub last_candle_open_time: Option<DateTime<Utc>>,
    /// The last timer period evaluated.
    pub last_period_at: Option<DateTime<Utc>>,
}

impl StoredState {
    /// The state [`save`] (or, with `triggered_at`, [`record_claimed`]) leaves after
    /// `update`, computed in memory: their upsert's rules, for the backtest's walk
    /// through past moments, which carries state from moment to moment without writing
    /// it. A test holds the two to the same answers.
    pub fn apply(&mut self, update: &StateUpdate, triggered_at: Option<DateTime<Utc>>) {
        self.last_result = update.result;
        for (id, value) in &update.previous {
            if let (Ok(id), Some(value)) = (id.parse(), value.as_f64()) {
                self.previous.insert(id, value);
            }
        }
        self.consecutive_errors = update.consecutive_errors;
        self.last_candle_open_time = update.candle_open_time.or(self.last_candle_open_time);
        self.last_period_at = update.period.or(self.last_period_at);
        if triggered_at.is_some() {
            self.last_triggered_at = triggered_at;
        }
    }
}

/// One strategy's state after an evaluation.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    pub strategy_id: Uuid,
    pub result: Option<bool>,
    /// Values to remember, by condition id (merged into what is stored).
    pub previous: Map<String, Value>,
    pub consecutive_errors: i32,
    /// For candle-close runs: the candle just evaluated.
    pub candle_open_time: Option<DateTime<Utc>>,
    /// For timer runs: the period just evaluated.
    pub period: Option<DateTime<Utc>>,
}

/// The strategies of `ids` whose last evaluated period began before `before`, with
/// that period: those that missed a period (never-evaluated ones are not listed).
pub async fn periods_behind(
    db: &PgPool,
    ids: &[Uuid],
    before: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT strategy_id, last_period_at FROM strategy_state
          WHERE strategy_id = ANY($1) AND last_period_at < $2",
    )
    .bind(ids)
    .bind(before)
    .fetch_all(db)
    .await
}

/// Reads the stored state of `ids` (strategies never evaluated are absent).
pub async fn load(db: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredState>, sqlx::Error> {
    type Row = (
        Uuid,
        sqlx::types::Json<Value>,
        i32,
        Option<bool>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT strategy_id, previous_values, consecutive_errors, last_result, last_triggered_at,
                last_candle_open_time, last_period_at
           FROM strategy_state WHERE strategy_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                values,
                consecutive_errors,
                last_result,
                last_triggered_at,
                last_candle,
                period,
            )| {
                let previous = values
                    .0
                    .as_object()
                    .map(|map| {
                        map.iter()
                            .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    id,
                    StoredState {
                        previous,
                        consecutive_errors,
                        last_result,
                        last_triggered_at,
                        last_candle_open_time: last_candle,
                        last_period_at: period,
                    },
                )
            },
        )
        .collect())
}

/// Writes every update in one statement. A strategy deleted since it was evaluated
/// fails the statement with a foreign-key violation ([`is_deleted_strategy`]); the
/// caller writes again without it.
pub async fn save<'e>(
    db: impl sqlx::PgExecutor<'e>,
    evaluated_at: DateTime<Utc>,
    updates: &[StateUpdate],
) -> Result<(), sqlx::Error> {
    if updates.is_empty() {
        return Ok(());
    }
    // Rows are written (and locked) in strategy order, the same on every replica, so
    // two replicas saving the same batch never deadlock.
    let mut sorted: Vec<&StateUpdate> = updates.iter().collect();
    sorted.sort_unstable_by_key(|u| u.strategy_id);
    let updates = sorted;
    let ids: Vec<Uuid> = updates.iter().map(|u| u.strategy_id).collect();
    let results: Vec<Option<bool>> = updates.iter().map(|u| u.result).collect();
    let previous: Vec<sqlx::types::Json<Value>> = updates
        .iter()
        .map(|u| sqlx::types::Json(Value::Object(u.previous.clone())))
        .collect();
    let errors: Vec<i32> = updates.iter().map(|u| u.consecutive_errors).collect();
    let candles: Vec<Option<DateTime<Utc>>> = updates.iter().map(|u| u.candle_open_time).collect();
    let periods: Vec<Option<DateTime<Utc>>> = updates.iter().map(|u| u.period).collect();
    sqlx::query(
        "INSERT INTO strategy_state
             (strategy_id, last_evaluated_at, last_result, previous_values, consecutive_errors,
              last_candle_open_time, last_period_at, updated_at)
         SELECT u.id, $2, u.result, u.previous, u.errors, u.candle, u.period, now()
           FROM UNNEST($1::uuid[], $3::boolean[], $4::jsonb[], $5::integer[], $6::timestamptz[],
                       $7::timestamptz[])
                AS u(id, result, previous, errors, candle, period)
          ORDER BY u.id
         ON CONFLICT (strategy_id) DO UPDATE SET
             last_evaluated_at  = EXCLUDED.last_evaluated_at,
             last_result        = EXCLUDED.last_result,
             previous_values    = strategy_state.previous_values || EXCLUDED.previous_values,
             consecutive_errors = EXCLUDED.consecutive_errors,
             last_candle_open_time = COALESCE(EXCLUDED.last_candle_open_time,
                                              strategy_state.last_candle_open_time),
             last_period_at     = COALESCE(EXCLUDED.last_period_at, strategy_state.last_period_at),
             updated_at         = now()",
    )
    .bind(&ids)
    .bind(evaluated_at)
    .bind(&results)
    .bind(&previous)
    .bind(&errors)
    .bind(&candles)
    .bind(&periods)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether `error` is a state row refused because its strategy no longer exists.
pub fn is_deleted_strategy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

/// Locks the state rows of `ids` for the claim's transaction (in strategy order, the
/// same on every replica) and answers each one's last trigger: the cooldown and the bar
/// are checked again against what is committed, not what the batch read.
pub async fn lock_last_triggered(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Option<DateTime<Utc>>>, sqlx::Error> {
    let rows: Vec<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT strategy_id, last_triggered_at FROM strategy_state
          WHERE strategy_id = ANY($1) ORDER BY strategy_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Records claimed triggers in their strategies' state, inside the claim's transaction:
/// the evaluation's whole update (previous values, result, edge, candle) and the trigger
/// (`triggered_at`, count) together, so a crash or a failed write after the claim can
/// never make an edge or a cross fire again. At most one per strategy.
pub async fn record_claimed(
    tx: &mut PgConnection,
    evaluated_at: DateTime<Utc>,
    claimed: &[(&StateUpdate, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let mut sorted = claimed.to_vec();
    sorted.sort_unstable_by_key(|(u, _)| u.strategy_id);
    let ids: Vec<Uuid> = sorted.iter().map(|(u, _)| u.strategy_id).collect();
    let results: Vec<Option<bool>> = sorted.iter().map(|(u, _)| u.result).collect();
    let previous: Vec<SqlJson<Value>> = sorted
        .iter()
        .map(|(u, _)| SqlJson(Value::Object(u.previous.clone())))
        .collect();
    let errors: Vec<i32> = sorted.iter().map(|(u, _)| u.consecutive_errors).collect();
    let candles: Vec<Option<DateTime<Utc>>> =
        sorted.iter().map(|(u, _)| u.candle_open_time).collect();
    let at: Vec<DateTime<Utc>> = sorted.iter().map(|(_, at)| *at).collect();
    let periods: Vec<Option<DateTime<Utc>>> = sorted.iter().map(|(u, _)| u.period).collect();
    sqlx::query(
        "INSERT INTO strategy_state
             (strategy_id, last_evaluated_at, last_result, previous_values, consecutive_errors,
              last_candle_open_time, last_triggered_at, trigger_count, last_period_at, updated_at)
         SELECT u.id, $2, u.result, u.previous, u.errors, u.candle, u.at, 1, u.period, now()
           FROM UNNEST($1::uuid[], $3::boolean[], $4::jsonb[], $5::integer[],
                       $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
                AS u(id, result, previous, errors, candle, at, period)
          ORDER BY u.id
         ON CONFLICT (strategy_id) DO UPDATE SET
             last_evaluated_at  = EXCLUDED.last_evaluated_at,
             last_result        = EXCLUDED.last_result,
             previous_values    = strategy_state.previous_values || EXCLUDED.previous_values,
             consecutive_errors = EXCLUDED.consecutive_errors,
             last_candle_open_time = COALESCE(EXCLUDED.last_candle_open_time,
                                              strategy_state.last_candle_open_time),
             last_triggered_at  = EXCLUDED.last_triggered_at,
             trigger_count      = strategy_state.trigger_count + 1,
             last_period_at     = COALESCE(EXCLUDED.last_period_at, strategy_state.last_period_at),
             updated_at         = now()",
    )
    .bind(&ids)
    .bind(evaluated_at)
    .bind(&results)
    .bind(&previous)
    .bind(&errors)
    .bind(&candles)
    .bind(&at)
    .bind(&periods)
    .execute(tx)
    .await?;
    Ok(())
}

/// One strategy's runtime state as operators see it.
#[derive(Debug, serde::Serialize, ToSchema, sqlx::FromRow)]
pub struct RuntimeState {
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// true, false, or null for unknown.
    pub last_result: Option<bool>,
    pub last_triggered_at: Option<DateTime<Utc>>,
    pub last_candle_open_time: Option<DateTime<Utc>>,
    /// Consecutive evaluations with unknown data.
    pub consecutive_errors: i32,
    pub trigger_count: i64,
    /// Values crosses and edges compare against, by condition id.
    #[schema(value_type = Object)]
    pub previous_values: SqlJson<Value>,
    pub updated_at: DateTime<Utc>,
}

/// The runtime state of one strategy; `None` until it was first evaluated.
pub async fn runtime(db: &PgPool, strategy_id: Uuid) -> Result<Option<RuntimeState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT last_evaluated_at, last_result, last_triggered_at, last_candle_open_time,
                consecutive_errors, trigger_count, previous_values, updated_at
           FROM strategy_state WHERE strategy_id = $1",
    )
    .bind(strategy_id)
    .fetch_optional(db)
    .await
}
