//! Strategies as synapse-api writes them: rows in `strategies` and
//! `strategy_conditions`, and the condition kinds the tests use most.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Inserts a strategy whose conditions are `params` (kind, params); the tree is the
/// `and` of all of them unless `tree` is given. Returns (strategy id, condition ids).
pub async fn insert_strategy(
    pool: &PgPool,
    user_id: Uuid,
    conditions: &[(&str, Value)],
    tree: Option<Value>,
) -> (Uuid, Vec<Uuid>) {
    let id = Uuid::new_v4();
    let condition_ids: Vec<Uuid> = conditions.iter().map(|_| Uuid::new_v4()).collect();
    let tree = tree.unwrap_or_else(|| {
        json!({"and": condition_ids.iter().map(|c| json!({"condition": c})).collect::<Vec<_>>()})
    });
    sqlx::query(
        "INSERT INTO strategies (id, user_id, name, logic_tree, frequency)
         VALUES ($1, $2, 'test strategy', $3, '1m')",
    )
    .bind(id)
    .bind(user_id)
    .bind(&tree)
    .execute(pool)
    .await
    .unwrap();
    for (cid, (kind, params)) in condition_ids.iter().zip(conditions) {
        sqlx::query(
            "INSERT INTO strategy_conditions (id, strategy_id, kind, params) VALUES ($1, $2, $3, $4)",
        )
        .bind(cid)
        .bind(id)
        .bind(kind)
        .bind(params)
        .execute(pool)
        .await
        .unwrap();
    }
    (id, condition_ids)
}

pub fn rsi_below(value: f64) -> (&'static str, Value) {
    (
        "technical_indicator",
        json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
               "indicator": "rsi", "period": 14, "operator": "below", "value": value}),
    )
}

pub fn price_above(value: f64) -> (&'static str, Value) {
    (
        "price_alert",
        json!({"source": "binance", "symbol": "ETHUSDT", "operator": "above", "value": value}),
    )
}

pub async fn set_frequency(pool: &PgPool, id: Uuid, frequency: &str) {
    sqlx::query("UPDATE strategies SET frequency = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(frequency)
        .execute(pool)
        .await
        .unwrap();
}
