//! A strategy as stored: its `strategies` row and its `strategy_conditions` rows,
//! before validation. This is also the form cached in Redis (keyed by id and version),
//! so compiling from the cache and from Postgres is the same code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Documents larger than this are not even read (the loader selects NULL instead), so a
/// 50 MB tree costs nothing but its size in Postgres.
pub const MAX_TREE_BYTES: i32 = 256 * 1024;
/// Same bound for `channels`.
pub const MAX_CHANNELS_BYTES: i32 = 64 * 1024;
/// Same bound for `message_template`.
pub const MAX_TEMPLATE_BYTES: i32 = 16 * 1024;
/// Same bound for one condition's `params`.
pub const MAX_PARAMS_DB_BYTES: i32 = 16 * 1024;

/// One `strategies` row. JSON columns arrive as text (NULL when over their bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StrategyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub status: String,
    pub logic_tree: Option<String>,
    pub frequency: String,
    pub trigger_mode: String,
    pub cooldown_seconds: i32,
    pub channels: Option<String>,
    pub message_template: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One `strategy_conditions` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ConditionRow {
    pub id: Uuid,
    pub strategy_id: Uuid,
    pub kind: String,
    pub params: Option<String>,
}

/// A strategy row with its conditions, ordered by condition id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedStrategy {
    pub row: StrategyRow,
    pub conditions: Vec<ConditionRow>,
}

#[cfg(test)]
impl ResolvedStrategy {
    /// An active `1m`, `every_time` strategy `id` whose tree is its one condition:
    /// unit tests edit the row fields they are about.
    pub(crate) fn with_one_condition(
        id: Uuid,
        condition: Uuid,
        kind: &str,
        params: serde_json::Value,
    ) -> Self {
        ResolvedStrategy {
            row: StrategyRow {
                id,
                user_id: Uuid::from_u128(9),
                name: "t".into(),
                status: "active".into(),
                logic_tree: Some(serde_json::json!({"condition": condition}).to_string()),
                frequency: "1m".into(),
                trigger_mode: "every_time".into(),
                cooldown_seconds: 0,
                channels: Some("[]".into()),
                message_template: None,
                expires_at: None,
                error: None,
                updated_at: Utc::now(),
            },
            conditions: vec![ConditionRow {
                id: condition,
                strategy_id: id,
                kind: kind.into(),
                params: Some(params.to_string()),
            }],
        }
    }
}
