//! Shared plumbing for the market-data tests: the simulator, the real clients pointed
//! at it, compiled strategies and their data needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use market_sim::{SimConfig, SimHandle};
use monitoring_service::conditions::SymbolInterner;
use monitoring_service::market::sources::UpstreamSettings;
use monitoring_service::market::{
    Clock, DataNeeds, Interval, KlineCache, PrefetchSettings, Prefetcher, PriceKey, SeriesKey,
    SharedCache, SharedCacheSettings, Source, Sources, SourcesConfig,
};
use monitoring_service::metrics::{MarketMetrics, Metrics};
use monitoring_service::strategy::{CompiledStrategy, ConditionRow, ResolvedStrategy, StrategyRow};
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use uuid::Uuid;

/// An hour boundary far from the others tests use (each test picks its own, so tests
/// sharing the test Redis never see each other's cached data as fresh).
pub fn hour(n: i64) -> i64 {
    // 1.8e12 ms is an hour boundary (2027-01-15T08:00:00Z).
    1_800_000_000_000 + n * 86_400_000
}

/// A frozen simulator at `start_ms` knowing `symbols` besides its defaults.
pub async fn frozen_sim(start_ms: i64, symbols: &[String]) -> SimHandle {
    market_sim::start(SimConfig {
        start_ms: Some(start_ms),
        speed: 0.0,
        extra_symbols: symbols.to_vec(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// Moves the simulator and the service's clock to `now_ms` together.
pub fn set_time(sim: &SimHandle, clock: &Clock, now_ms: i64) {
    sim.state.clock.set(now_ms);
    clock.set(now_ms);
}

/// The service's clock mirroring a running (sped-up) simulator's.
pub fn mirrored_clock(sim: &SimHandle) -> Clock {
    let anchor = sim.state.clock.anchor();
    Clock::scaled(anchor.anchor_sim_ms, anchor.anchor_real_ms, anchor.speed)
}

pub fn sources_config(sim: &SimHandle) -> SourcesConfig {
    SourcesConfig {
        binance_base_url: sim.binance_url(),
        coingecko_base_url: sim.coingecko_url(),
        eth_rpc_url: Some(sim.ethereum_url().into()),
        binance_weight_budget: 4800,
        fallback_coingecko_ids: HashMap::from([("BTCUSDT".into(), "bitcoin".into())]),
        upstream: UpstreamSettings {
            timeout: Duration::from_secs(3),
            max_retries: 2,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            default_pause: Duration::from_secs(30),
        },
    }
}

/// Fresh metrics for one test.
pub fn metrics() -> Arc<MarketMetrics> {
    Arc::new(Metrics::new().market)
}

/// The real prefetcher on `sources`, with its own L1 and (optionally) the shared Redis.
pub fn prefetcher_with(
    sources: SourcesConfig,
    redis: Option<ConnectionManager>,
    clock: Clock,
    metrics: Arc<MarketMetrics>,
) -> Prefetcher {
    let shared = redis.map(|r| SharedCache::new(r, SharedCacheSettings::default()));
    Prefetcher::new(
        Arc::new(Sources::new(&sources, metrics.clone())),
        Arc::new(KlineCache::default()),
        shared,
        clock,
        PrefetchSettings::default(),
        metrics,
    )
}

pub fn prefetcher(sim: &SimHandle, clock: Clock) -> Prefetcher {
    prefetcher_with(sources_config(sim), None, clock, metrics())
}

pub async fn test_redis() -> ConnectionManager {
    monitoring_service::storage::redis::connect(
        &secrecy::SecretString::from(crate::support::redis_url()),
        Duration::from_secs(5),
    )
    .await
    .expect("test Redis answers")
}

/// A compiled strategy whose tree is the `and` of `conditions` (kind, params).
pub fn strategy(conditions: &[(&str, Value)]) -> CompiledStrategy {
    let id = Uuid::new_v4();
    let rows: Vec<ConditionRow> = conditions
        .iter()
        .map(|(kind, params)| ConditionRow {
            id: Uuid::new_v4(),
            strategy_id: id,
            kind: (*kind).into(),
            params: Some(params.to_string()),
        })
        .collect();
    let tree = json!({"and": rows.iter().map(|c| json!({"condition": c.id})).collect::<Vec<_>>()});
    let resolved = ResolvedStrategy {
        row: StrategyRow {
            id,
            user_id: Uuid::new_v4(),
            name: "test".into(),
            status: "active".into(),
            logic_tree: Some(tree.to_string()),
            frequency: "1m".into(),
            trigger_mode: "every_time".into(),
            cooldown_seconds: 300,
            channels: Some("[]".into()),
            message_template: None,
            expires_at: None,
            error: None,
            updated_at: Utc::now(),
        },
        conditions: rows,
    };
    CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).expect("valid strategy")
}

pub fn price_above(source: &str, symbol: &str, value: f64) -> (&'static str, Value) {
    (
        "price_alert",
        json!({"source": source, "symbol": symbol, "operator": "above", "value": value}),
    )
}

pub fn rsi_below(symbol: &str, interval: &str, value: f64) -> (&'static str, Value) {
    (
        "technical_indicator",
        json!({"source": "binance", "symbol": symbol, "interval": interval,
               "indicator": "rsi", "period": 14, "operator": "below", "value": value}),
    )
}

/// The union of the strategies' needs.
pub fn needs_of(strategies: &[CompiledStrategy]) -> DataNeeds {
    let mut needs = DataNeeds::default();
    for strategy in strategies {
        strategy.needs(&mut needs);
    }
    needs
}

/// Requests the simulator served for one Binance endpoint.
pub fn binance_requests(sim: &SimHandle, endpoint: &str) -> usize {
    sim.state
        .request_count(market_sim::Provider::Binance, Some(endpoint))
}

/// The simulator's own price of a Binance symbol at `t_ms`, as it prints it.
pub fn sim_price(sim: &SimHandle, symbol: &str, t_ms: i64) -> f64 {
    let market = sim.state.market.read().unwrap();
    let price = market.binance[symbol].price_at(t_ms);
    format!("{price:.8}").parse().unwrap()
}

/// From now on the simulated Binance answers every request 503.
pub fn binance_answers_503(sim: &SimHandle) {
    sim.state.faults.push(market_sim::Fault {
        provider: market_sim::Provider::Binance,
        endpoint: None,
        kind: market_sim::FaultKind::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        times: None,
    });
}

/// Binance's endpoints, as the simulator counts them.
pub const TICKER: &str = "/api/v3/ticker/price";
pub const KLINES: &str = "/api/v3/klines";

/// A price of `symbol` on `source`.
pub fn price_key(source: Source, symbol: &str) -> PriceKey {
    PriceKey {
        source,
        symbol: Arc::from(symbol),
    }
}

/// The Binance series of `symbol` at `interval`.
pub fn series_key(symbol: &str, interval: Interval) -> SeriesKey {
    SeriesKey {
        source: Source::Binance,
        symbol: Arc::from(symbol),
        interval,
    }
}
