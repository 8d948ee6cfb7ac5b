//! Platform health routes (DESIGN §11): the latest snapshot this replica holds (the
//! shared one, refreshed every half interval; its own while Postgres is unreachable)
//! — the system view and the metrics view. They never wait on a dependency.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::error::ApiError;
use crate::config::Config;
use crate::platform_health::LatestSnapshot;
use crate::platform_health::Snapshot;

fn snapshot(health: &LatestSnapshot, config: &Config) -> Result<Arc<Snapshot>, ApiError> {
    health.get().ok_or_else(|| {
        let message = if config.health.interval.is_zero() {
            "health checks are off on this replica (HEALTH_CHECK_INTERVAL=0)"
        } else {
            "no health cycle has completed yet"
        };
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_snapshot",
            message,
        )
    })
}

/// The platform status: each target, the system status, the critical failures.
#[utoipa::path(get, path = "/health/system", tag = "health",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "status (OK, DEGRADED, CRITICAL), timestamp, services and infrastructure by status, critical_failures, ess_tripped, performance, checks", body = Object),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "No health cycle yet (or health checks off on this replica)", body = crate::http::error::ErrorBody)))]
pub async fn health_system(
    State(health): State<LatestSnapshot>,
    State(config): State<Arc<Config>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(snapshot(&health, &config)?.system()))
}

/// The platform status as counters and gauges.
#[utoipa::path(get, path = "/health/metrics", tag = "health",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "timestamp, counters, gauges (system_status_code 0/1/2, latencies), alerts", body = Object),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "No health cycle yet (or health checks off on this replica)", body = crate::http::error::ErrorBody)))]
pub async fn health_metrics(
    State(health): State<LatestSnapshot>,
    State(config): State<Arc<Config>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(snapshot(&health, &config)?.metrics()))
}
