//! `GET /internal/strategies/{strategy_id}`: one strategy as an operator needs it — its
//! stored definition (channels by kind only: their addresses and secrets never leave),
//! whether and which version is loaded, its status and validation error, and its
//! runtime state.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use crate::storage::strategy_state::{self, RuntimeState};
use crate::strategy::StrategyIndex;
use crate::strategy::store;
use sqlx::PgPool;
use std::sync::Arc;

/// One condition as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionView {
    pub id: Uuid,
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: Value,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyView {
    pub strategy_id: Uuid,
    pub name: String,
    /// `active`, `paused`, `error`, `completed` or `expired`.
    pub status: String,
    /// The validation error of a strategy in `error`.
    pub error: Option<String>,
    /// Whether this replica holds it compiled (active, unexpired, in its shard).
    pub loaded: bool,
    /// The version (`updated_at`) this replica holds, when loaded.
    pub loaded_version: Option<DateTime<Utc>>,
    /// The version in the database.
    pub version: DateTime<Utc>,
    pub frequency: String,
    pub trigger_mode: String,
    pub cooldown_seconds: i32,
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub logic_tree: Value,
    pub conditions: Vec<ConditionView>,
    /// Channel kinds, in order (`telegram`, `slack`, …).
    pub channels: Vec<String>,
    pub has_message_template: bool,
    /// Null until the strategy was first evaluated.
    pub state: Option<RuntimeState>,
}

/// The kinds of a `channels` document, whatever else it holds.
fn channel_kinds(channels: &Value) -> Vec<String> {
    channels
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|c| {
                    c.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One strategy: definition, loaded version, status and runtime state.
#[utoipa::path(get, path = "/strategies/{strategy_id}", tag = "internal",
    security(("api_key" = [])),
    params(("strategy_id" = Uuid, Path, description = "The strategy's id", example = "00000000-0000-4000-8000-000000000001")),
    responses(
        (status = 200, description = "The strategy", body = StrategyView),
        (status = 400, description = "Malformed id", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such strategy", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn get_strategy(
    State(db): State<PgPool>,
    State(index): State<Arc<StrategyIndex>>,
    Path(strategy_id): Path<Uuid>,
) -> Result<Json<StrategyView>, ApiError> {
    let Some(stored) = store::definition(&db, strategy_id).await? else {
        return Err(ApiError::not_found(format!("no strategy {strategy_id}")));
    };
    let runtime = strategy_state::runtime(&db, strategy_id).await?;
    let loaded = index.get(strategy_id);
    Ok(Json(StrategyView {
        strategy_id,
        name: stored.name,
        status: stored.status,
        error: stored.error,
        loaded: loaded.is_some(),
        loaded_version: loaded.map(|s| s.version),
        version: stored.updated_at,
        frequency: stored.frequency,
        trigger_mode: stored.trigger_mode,
        cooldown_seconds: stored.cooldown_seconds,
        expires_at: stored.expires_at,
        logic_tree: stored.logic_tree.0,
        conditions: stored
            .conditions
            .into_iter()
            .map(|(id, kind, params)| ConditionView { id, kind, params })
            .collect(),
        channels: channel_kinds(&stored.channels.0),
        has_message_template: stored.has_message_template,
        state: runtime,
    }))
}
