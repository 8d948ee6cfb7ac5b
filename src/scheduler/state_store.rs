//! Strategy runtime state (`strategy_state`): the previous values crosses compare
//! against and the count of consecutive unknown evaluations, read for a batch and
//! written back for the whole batch in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::engine::Tri;
use crate::strategy::CompiledStrategy;
use crate::trigger::TriggerContext;

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
}

/// Condition `i` of `strategy`: its value remembered from the last evaluation (what
/// crosses compare against), when there is one.
pub fn remembered(
    state: Option<&StoredState>,
    strategy: &CompiledStrategy,
    i: usize,
) -> Option<f64> {
    let id = strategy.condition_ids.get(i)?;
    state.and_then(|s| s.previous.get(id).copied())
}

/// What the trigger decision knows of an evaluation made at `scheduled_at` (for the
/// bar opening at `bar_open_ms`) over the strategy's stored `state`.
pub fn trigger_context(
    state: Option<&StoredState>,
    result: Tri,
    scheduled_at: DateTime<Utc>,
    bar_open_ms: Option<i64>,
) -> TriggerContext {
    TriggerContext {
        result,
        previous_result: state.and_then(|s| s.last_result),
        last_triggered_at: state.and_then(|s| s.last_triggered_at),
        scheduled_at,
        bar_open_ms,
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
}

pub async fn load(db: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredState>, sqlx::Error> {
    type Row = (
        Uuid,
        sqlx::types::Json<Value>,
        i32,
        Option<bool>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT strategy_id, previous_values, consecutive_errors, last_result, last_triggered_at,
                last_candle_open_time
           FROM strategy_state WHERE strategy_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, values, consecutive_errors, last_result, last_triggered_at, last_candle)| {
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
                    },
                )
            },
        )
        .collect())
}

/// Writes every update in one statement. Strategies deleted meanwhile are skipped.
pub async fn save(
    db: &PgPool,
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
    sqlx::query(
        "INSERT INTO strategy_state
             (strategy_id, last_evaluated_at, last_result, previous_values, consecutive_errors,
              last_candle_open_time, updated_at)
         SELECT u.id, $2, u.result, u.previous, u.errors, u.candle, now()
           FROM UNNEST($1::uuid[], $3::boolean[], $4::jsonb[], $5::integer[], $6::timestamptz[])
                AS u(id, result, previous, errors, candle)
           JOIN strategies s ON s.id = u.id
          ORDER BY u.id
         ON CONFLICT (strategy_id) DO UPDATE SET
             last_evaluated_at  = EXCLUDED.last_evaluated_at,
             last_result        = EXCLUDED.last_result,
             previous_values    = strategy_state.previous_values || EXCLUDED.previous_values,
             consecutive_errors = EXCLUDED.consecutive_errors,
             last_candle_open_time = COALESCE(EXCLUDED.last_candle_open_time,
                                              strategy_state.last_candle_open_time),
             updated_at         = now()",
    )
    .bind(&ids)
    .bind(evaluated_at)
    .bind(&results)
    .bind(&previous)
    .bind(&errors)
    .bind(&candles)
    .execute(db)
    .await?;
    Ok(())
}
