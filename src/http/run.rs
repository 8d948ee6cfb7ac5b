//! `POST /internal/run/{frequency}`: run that frequency's batch now and answer its
//! counts (operators, tests, and a scheduler disabled with `ENABLE_SCHEDULER=false`).

use crate::batches::BatchRunner;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

use super::error::ApiError;
use crate::batches::{BatchError, BatchReport};
use crate::frequency::Frequency;

/// Runs the batch of `frequency` (`1m`, `5m`, … or a URL-encoded cron expression).
#[utoipa::path(post, path = "/run/{frequency}", tag = "internal",
    security(("api_key" = [])),
    params(("frequency" = String, Path, description = "10s, 30s, 1m, 5m, 15m, 30m, 1h, 4h, 1d or a 6-field cron expression", example = "1m")),
    responses(
        (status = 200, description = "The batch ran", body = BatchReport),
        (status = 400, description = "Unknown frequency, or candle_close (which follows candle closes)", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody),
        (status = 409, description = "That batch is running now", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn run_batch(
    State(batches): State<Arc<BatchRunner>>,
    Path(frequency): Path<String>,
) -> Result<Json<BatchReport>, ApiError> {
    let frequency = Frequency::parse(&frequency)
        .map_err(|message| ApiError::bad_request("invalid_frequency", message))?;
    match batches.run(&frequency).await {
        Ok(report) => Ok(Json(report)),
        Err(BatchError::CandleClose) => Err(ApiError::bad_request(
            "invalid_frequency",
            "candle_close strategies run when their candle closes, not on demand",
        )),
        Err(error @ BatchError::AlreadyRunning(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "batch_running",
            error.to_string(),
        )),
        Err(BatchError::Storage(error)) => Err(error.into()),
    }
}
