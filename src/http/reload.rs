//! `POST /internal/reload-strategies`: synapse-api's webhook after it changed strategies.
//! No body (or `{}`) reloads everything; `{"strategy_ids": [...]}` reloads only those,
//! at the cost of those strategies' queries, not a full reload.

use crate::analysis::Analysis;
use crate::strategy::StrategyLoader;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use crate::strategy::ReloadReport;

/// Most ids one request may name; a larger change is a full reload.
pub const MAX_RELOAD_IDS: usize = 10_000;

/// The optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    /// The strategies to reload; absent means all.
    pub strategy_ids: Option<Vec<Uuid>>,
}

/// Reloads all strategies, or those named.
#[utoipa::path(post, path = "/reload-strategies", tag = "internal",
    security(("api_key" = [])),
    request_body(content = Option<ReloadRequest>, content_type = "application/json",
        description = "Optional: `{\"strategy_ids\": [...]}`; no body reloads everything"),
    responses(
        (status = 200, description = "Reloaded; `errors` lists strategies that failed validation", body = ReloadReport),
        (status = 400, description = "Malformed body, wrong types or too many ids", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn reload_strategies(
    State(analysis): State<Analysis>,
    State(loader): State<Arc<StrategyLoader>>,
    body: Bytes,
) -> Result<Json<ReloadReport>, ApiError> {
    let request: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("expected {{\"strategy_ids\": [\"<uuid>\", ...]}}: {e}"),
            )
        })?
    };
    // The analysis schedules are read again too (cheap: one query, in the background).
    analysis.request_reload();
    let report = match request.strategy_ids {
        None => loader.reload_all().await,
        Some(ids) if ids.len() > MAX_RELOAD_IDS => {
            return Err(ApiError::bad_request(
                "too_many_ids",
                format!("at most {MAX_RELOAD_IDS} strategy_ids; reload all instead"),
            ));
        }
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            loader.reload_ids(&ids).await
        }
    };
    report.map(Json).map_err(ApiError::from)
}
