//! `POST /internal/simulate/{strategy_id}`: a dry run of one strategy on fresh market
//! data — what its next batch would see and decide — with nothing written and nothing
//! sent. Works for any stored strategy: one in `error` answers its validation error.

use crate::market::MarketData;
use crate::strategy::StrategyIndex;
use axum::Json;
use axum::extract::{Path, State};
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

use super::error::ApiError;
use crate::batches::{Simulation, simulate};
use crate::conditions::SymbolInterner;
use crate::strategy::{CompiledStrategy, store};

/// Evaluates the strategy now, without side effects.
#[utoipa::path(post, path = "/simulate/{strategy_id}", tag = "internal",
    security(("api_key" = [])),
    params(("strategy_id" = Uuid, Path, description = "The strategy's id", example = "00000000-0000-4000-8000-000000000001")),
    responses(
        (status = 200, description = "The snapshot: each condition's result and observed values, the tree's result, whether it would trigger and what would suppress it", body = Simulation),
        (status = 400, description = "Malformed id", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such strategy", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn simulate_strategy(
    State(db): State<PgPool>,
    State(index): State<Arc<StrategyIndex>>,
    State(market): State<MarketData>,
    Path(strategy_id): Path<Uuid>,
) -> Result<Json<Simulation>, ApiError> {
    let Some(resolved) = store::fetch(&db, &[strategy_id]).await?.pop() else {
        return Err(ApiError::not_found(format!("no strategy {strategy_id}")));
    };
    let status = resolved.row.status.clone();
    if status == "error" {
        let error = resolved.row.error.clone().unwrap_or_default();
        return Ok(Json(Simulation::invalid(strategy_id, status, error)));
    }
    // The version the next batch evaluates: the loaded one, or the stored row compiled
    // now (not loaded here: paused, finished, changed since the last reload).
    let strategy = match index.get(strategy_id) {
        Some(loaded) if loaded.version == resolved.row.updated_at => loaded,
        _ => match CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()) {
            Ok(compiled) => compiled.into(),
            Err(error) => {
                return Ok(Json(Simulation::invalid(
                    strategy_id,
                    status,
                    error.to_string(),
                )));
            }
        },
    };
    simulate(&db, &market, &strategy, &status)
        .await
        .map(Json)
        .map_err(ApiError::from)
}
