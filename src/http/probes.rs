//! The unauthenticated routes Kubernetes and Prometheus call: liveness, readiness and
//! the metrics scrape.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::storage;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `{"status": "ok"}`
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    pub status: &'static str,
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses((status = 200, description = "The process is serving", body = HealthBody)))]
pub async fn health() -> Json<HealthBody> {
    Json(HealthBody { status: "ok" })
}

/// The outcome of the readiness checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check by name (`postgres`, `redis`, `strategies_loaded`): `ok` or `failed`.
    pub checks: BTreeMap<&'static str, &'static str>,
    /// The names of the failing checks, empty when ready.
    pub failing: Vec<&'static str>,
}

/// Readiness: Postgres answers, Redis answers (when configured), and the strategies
/// were loaded once.
#[utoipa::path(get, path = "/ready", tag = "probes", responses(
    (status = 200, description = "Every check passed", body = ReadyBody),
    (status = 503, description = "At least one check failed; `failing` names them", body = ReadyBody)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = storage::postgres::ping_within(&state.db, CHECK_TIMEOUT);
    let redis = async {
        match &state.redis {
            None => None,
            Some(manager) => Some(storage::redis::ping_within(manager, CHECK_TIMEOUT).await),
        }
    };
    let (postgres, redis) = tokio::join!(postgres, redis);

    let mut results = vec![("postgres", postgres)];
    if let Some(redis) = redis {
        results.push(("redis", redis));
    }
    let loaded = if state.index.is_loaded() {
        Ok(())
    } else {
        Err("no strategy load has completed yet".to_owned())
    };
    results.push(("strategies_loaded", loaded));
    let mut checks = BTreeMap::new();
    let mut failing = Vec::new();
    for (name, result) in results {
        state
            .metrics
            .readiness_check
            .with_label_values(&[name])
            .set(i64::from(result.is_ok()));
        match result {
            Ok(()) => {
                checks.insert(name, "ok");
            }
            Err(error) => {
                tracing::warn!(check = name, %error, "readiness check failed");
                checks.insert(name, "failed");
                failing.push(name);
            }
        }
    }
    let (code, status) = if failing.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (
        code,
        Json(ReadyBody {
            status,
            checks,
            failing,
        }),
    )
}

/// The Prometheus scrape.
#[utoipa::path(get, path = "/metrics", tag = "probes", responses(
    (status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .strategies
        .live_reload_following
        .set(i64::from(state.live_reload.is_following()));
    // Counted where the rows are read; brought up to date for the scrape.
    let unreadable = &state.metrics.engine.unreadable_state;
    unreadable
        .inc_by(crate::storage::engine_state::unreadable_rows().saturating_sub(unreadable.get()));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
