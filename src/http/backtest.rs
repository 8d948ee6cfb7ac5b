//! `POST /internal/backtest` (DESIGN §15): when would this strategy have fired? A stored
//! strategy, a draft, or both (an edit's preview), over a past span.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::backtest::{BacktestError, BacktestReport, BacktestRequest, Backtester, SpanError};

/// Walks the strategy through the moments the live service would have evaluated it at.
#[utoipa::path(post, path = "/backtest", tag = "internal",
    security(("api_key" = [])),
    request_body(content = BacktestRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The fires with each condition's value, previous value and threshold; the suppressed counts; the series read (from the store, fetched) and their gaps; with both `strategy_id` and `strategy`, `compare`", body = BacktestReport),
        (status = 400, description = "Malformed body or invalid draft (`invalid_strategy`, the JSON path named), `backtest_unsupported_source` (a CoinGecko or Uniswap condition, named), `range_too_large` (over 366 days), `invalid_range`", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such strategy", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 429, description = "`backtest_busy`: BACKTEST_MAX_CONCURRENCY backtests are running on this replica; or over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "`market_data_unavailable`: the candle source failed mid-fetch (the series named; nothing partial is answered); or storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn backtest(
    State(backtester): State<Backtester>,
    body: Bytes,
) -> Result<Json<BacktestReport>, ApiError> {
    let request = BacktestRequest::parse(&body)
        .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
    backtester
        .run(request)
        .await
        .map(Json)
        .map_err(|error| match error {
            BacktestError::Invalid(error) => {
                ApiError::bad_request("invalid_strategy", error.to_string())
            }
            BacktestError::Unsupported(_) => {
                ApiError::bad_request("backtest_unsupported_source", error.to_string())
            }
            BacktestError::Span(SpanError::TooLarge) => ApiError::bad_request(
                "range_too_large",
                format!(
                    "a backtest spans at most {} days",
                    crate::backtest::request::MAX_DAYS
                ),
            ),
            BacktestError::Span(SpanError::Empty) => {
                ApiError::bad_request("invalid_range", "from must be before to (and before now)")
            }
            BacktestError::NotFound(_) => ApiError::not_found(error.to_string()),
            BacktestError::Busy(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "backtest_busy",
                error.to_string(),
            ),
            BacktestError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "market_data_unavailable",
                error.to_string(),
            ),
            BacktestError::Storage(cause) => ApiError::from(cause),
            BacktestError::Failed(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the backtest failed; the service log says why",
            ),
        })
}
