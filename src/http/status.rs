//! `GET /internal/status`: what an operator wants to know at a glance. Later parts of
//! the service (strategy index, scheduler, caches, sources) add their sections here.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The service's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    pub service: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub shard: ShardStatus,
    pub postgres: PoolStatus,
    /// `connected` or `not_configured` (caches and pub/sub in-process).
    pub redis: &'static str,
    pub strategies: StrategiesStatus,
    pub live_reload: LiveReloadStatus,
}

/// Announcements on `strategy:updated`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveReloadStatus {
    /// `redis` (pub/sub) or `postgres` (LISTEN/NOTIFY).
    pub via: &'static str,
    /// Subscribed and caught up; false while (re)connecting.
    pub following: bool,
}

/// The strategy index.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategiesStatus {
    /// Active strategies loaded and evaluated.
    pub loaded: usize,
    /// Strategies in status `error` (invalid).
    pub errors: usize,
    /// Index version: 0 until the first load, then +1 per reload.
    pub generation: u64,
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Loaded strategies per frequency (the batches).
    pub buckets: std::collections::BTreeMap<String, usize>,
}

/// Which slice of the strategies this replica owns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardStatus {
    pub index: u32,
    pub count: u32,
}

/// The Postgres pool's occupancy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolStatus {
    pub connections: u32,
    pub idle: u32,
    pub max_connections: u32,
}

/// The service's status: version, uptime, shard, dependencies.
#[utoipa::path(get, path = "/status", tag = "internal",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Service status", body = StatusBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>) -> Json<StatusBody> {
    let index = state.index.snapshot();
    Json(StatusBody {
        service: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        shard: ShardStatus {
            index: state.config.shard_index,
            count: state.config.shard_count,
        },
        postgres: PoolStatus {
            connections: state.db.size(),
            idle: u32::try_from(state.db.num_idle()).unwrap_or(u32::MAX),
            max_connections: state.config.db_max_connections,
        },
        redis: if state.redis.is_some() {
            "connected"
        } else {
            "not_configured"
        },
        strategies: StrategiesStatus {
            loaded: index.strategies.len(),
            errors: index.errors.len(),
            generation: index.generation,
            loaded_at: index.loaded_at,
            buckets: index
                .by_frequency
                .iter()
                .map(|(frequency, strategies)| (frequency.to_string(), strategies.len()))
                .collect(),
        },
        live_reload: LiveReloadStatus {
            via: if state.config.redis_url.is_some() {
                "redis"
            } else {
                "postgres"
            },
            following: state.live_reload.is_following(),
        },
    })
}
