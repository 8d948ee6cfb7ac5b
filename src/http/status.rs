//! `GET /internal/status`: what an operator wants to know at a glance — the replica,
//! its strategies, each batch's next and last run, the market-data caches, the health
//! of each source and of the WebSocket feed, and live reload.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;
use prometheus::core::Collector;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::batches::LastRun;
use crate::market::sources::SourceHealthRecord;

/// The service's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    pub service: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub shard: ShardStatus,
    pub postgres: PoolStatus,
    /// `connected` (it answered a PING just now), `unreachable`, or `not_configured`
    /// (caches and pub/sub in-process).
    pub redis: &'static str,
    pub strategies: StrategiesStatus,
    /// One per frequency with loaded strategies.
    pub buckets: Vec<BucketStatus>,
    pub cache: CacheStatus,
    /// Each market-data source's health, by name.
    #[schema(value_type = Object)]
    pub sources: BTreeMap<&'static str, SourceHealthRecord>,
    pub websocket: WebsocketStatus,
    pub live_reload: LiveReloadStatus,
    pub analysis: AnalysisStatus,
}

/// Candle-close analysis on this replica.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisStatus {
    /// `ANALYSIS_URL` is set.
    pub enabled: bool,
    /// Schedules being monitored, as this replica last read them.
    pub schedules: usize,
    /// The (symbol, interval) series they follow.
    pub series: usize,
}

/// One batch: its strategies, when it runs next and what its last run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketStatus {
    /// `1m`, a cron expression, or `candle_close`.
    pub frequency: String,
    pub strategies: usize,
    /// Null for `candle_close` (it follows candle closes).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Null until it has run in this process.
    pub last_run: Option<LastRun>,
}

/// The market-data caches since the process started (distinct data per batch).
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatus {
    /// Lookups of the in-process cache (L1).
    pub lookups: u64,
    pub l1_hits: u64,
    /// Answered by Redis (L2) after an L1 miss.
    pub l2_hits: u64,
    /// Share of lookups answered by a cache, 0..1 (null before the first lookup).
    pub hit_rate: Option<f64>,
}

/// The Binance kline stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebsocketStatus {
    /// `ENABLE_WEBSOCKETS`; when false, closes are polled over REST.
    pub enabled: bool,
    /// Open connections (one per ≤ 1024 streams).
    pub connections: i64,
    pub streams: i64,
    /// Seconds between the last event's time and its arrival.
    pub lag_seconds: f64,
    /// Reconnections since the process started.
    pub reconnects: u64,
}

/// Announcements on `strategy:updated`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveReloadStatus {
    /// `redis` (pub/sub) or `postgres` (LISTEN/NOTIFY).
    pub via: &'static str,
    /// Subscribed and caught up; false while (re)connecting.
    pub following: bool,
    /// True while Redis cannot be followed: the strategies are re-read from Postgres
    /// every 10 s until the subscription is back.
    pub polling_postgres: bool,
}

/// The strategy index.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategiesStatus {
    /// Active strategies loaded and evaluated.
    pub loaded: usize,
    /// Strategies in status `error` (invalid) in this replica's shard.
    pub errors: usize,
    /// Index version: 0 until the first load, then +1 per reload.
    pub generation: u64,
    pub loaded_at: Option<DateTime<Utc>>,
    /// Every stored strategy by status (all shards); null when the database is
    /// unreachable.
    #[schema(value_type = Option<Object>)]
    pub by_status: Option<BTreeMap<String, i64>>,
}

/// Which slice of the strategies this replica owns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardStatus {
    /// `static` (`SHARD_INDEX`/`SHARD_COUNT`) or `auto` (leased virtual shards).
    pub mode: &'static str,
    /// The static shard (`0`/`1` in auto mode).
    pub index: u32,
    pub count: u32,
    /// This replica's identity (the holder of its leases).
    pub replica: String,
    /// Auto mode: the number of virtual shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_shards: Option<u16>,
    /// Auto mode: the virtual shards this replica holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Vec<u16>>,
    /// Auto mode: the live replicas it divides them with (null when Postgres could not
    /// be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_replicas: Option<Vec<String>>,
}

async fn shard_status(state: &AppState) -> ShardStatus {
    let mut status = ShardStatus {
        mode: "static",
        index: state.config.shard.index,
        count: state.config.shard.count,
        replica: state.replica.clone(),
        virtual_shards: None,
        held: None,
        live_replicas: None,
    };
    if let (Some(ownership), Some(settings)) = (&state.ownership, state.config.auto_shard) {
        status.mode = "auto";
        status.virtual_shards = Some(crate::sharding::VIRTUAL_SHARDS);
        status.held = Some(ownership.held());
        status.live_replicas = crate::storage::replicas::live(&state.db, settings.lease_ttl)
            .await
            .inspect_err(|error| tracing::warn!(%error, "replica registry unavailable"))
            .ok()
            .map(|live| live.into_iter().map(|r| r.id).collect());
    }
    status
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
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>) -> Json<StatusBody> {
    let index = state.index.snapshot();
    let by_status: Option<BTreeMap<String, i64>> =
        crate::strategy::store::count_by_status(&state.db)
            .await
            .inspect_err(|error| tracing::warn!(%error, "strategy counts unavailable"))
            .ok()
            .map(|rows| rows.into_iter().collect());
    let now =
        DateTime::from_timestamp_millis(state.market.clock().now_ms()).unwrap_or_else(Utc::now);
    let buckets = index
        .by_frequency
        .iter()
        .map(|(frequency, strategies)| BucketStatus {
            frequency: frequency.to_string(),
            strategies: strategies.len(),
            next_run_at: frequency.next_after(now),
            last_run: state.batches.last_run(&frequency.to_string()),
        })
        .collect();
    let market = &state.metrics.market;
    let l1_hits = sum(
        &market.cache_requests,
        &[("layer", "l1"), ("result", "hit")],
    );
    let l1_misses = sum(
        &market.cache_requests,
        &[("layer", "l1"), ("result", "miss")],
    );
    let l2_hits = sum(
        &market.cache_requests,
        &[("layer", "l2"), ("result", "hit")],
    );
    let lookups = l1_hits + l1_misses;
    Json(StatusBody {
        service: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        shard: shard_status(&state).await,
        postgres: PoolStatus {
            connections: state.db.size(),
            idle: u32::try_from(state.db.num_idle()).unwrap_or(u32::MAX),
            max_connections: state.config.database.max_connections,
        },
        redis: match &state.redis {
            None => "not_configured",
            Some(manager) => {
                match crate::storage::redis::ping_within(manager, super::probes::CHECK_TIMEOUT)
                    .await
                {
                    Ok(()) => "connected",
                    Err(_) => "unreachable",
                }
            }
        },
        strategies: StrategiesStatus {
            loaded: index.strategies.len(),
            errors: index.errors.len(),
            generation: index.generation,
            loaded_at: index.loaded_at,
            by_status,
        },
        buckets,
        cache: CacheStatus {
            lookups,
            l1_hits,
            l2_hits,
            hit_rate: (lookups > 0).then(|| (l1_hits + l2_hits) as f64 / lookups as f64),
        },
        sources: state.market.source_health(),
        websocket: WebsocketStatus {
            enabled: state.config.market.websocket.is_some(),
            connections: market.ws_connected.get(),
            streams: market.ws_streams.get(),
            lag_seconds: market.ws_lag.get(),
            reconnects: sum(&market.ws_reconnects, &[]),
        },
        live_reload: LiveReloadStatus {
            via: if state.config.database.redis_url.is_some() {
                "redis"
            } else {
                "postgres"
            },
            following: state.live_reload.is_following(),
            polling_postgres: state.live_reload.is_polling(),
        },
        analysis: {
            let book = state.analysis.book();
            AnalysisStatus {
                enabled: state.analysis.is_enabled(),
                schedules: book.len(),
                series: book.by_series.len(),
            }
        },
    })
}

/// The sum of a counter's series whose labels include every pair of `labels`.
fn sum(counter: &IntCounterVec, labels: &[(&str, &str)]) -> u64 {
    counter
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|metric| {
            labels.iter().all(|(name, value)| {
                metric
                    .get_label()
                    .iter()
                    .any(|pair| pair.name() == *name && pair.value() == *value)
            })
        })
        .map(|metric| metric.get_counter().value() as u64)
        .sum()
}
