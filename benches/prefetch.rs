//! Prefetching a batch of 10,000 strategies over 500 symbols and 3 intervals against
//! the market simulator (in this process, over loopback HTTP): the upstream requests
//! a cold batch makes and its wall time, a warm batch (everything in L1), and a second
//! replica served by the shared Redis cache when `BENCH_REDIS_URL` is set.
//!
//!     scripts/bench.sh prefetch

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use market_sim::{Provider, SimConfig};
use monitoring_service::conditions::SymbolInterner;
use monitoring_service::market::sources::UpstreamSettings;
use monitoring_service::market::{
    Clock, DataNeeds, KlineCache, PrefetchSettings, Prefetcher, SharedCache, SharedCacheSettings,
    Sources, SourcesConfig,
};
use monitoring_service::metrics::Metrics;
use monitoring_service::strategy::{CompiledStrategy, ConditionRow, ResolvedStrategy, StrategyRow};
use serde_json::json;
use uuid::Uuid;

const STRATEGIES: usize = 10_000;
const SYMBOLS: usize = 500;
const INTERVALS: [&str; 3] = ["15m", "1h", "4h"];
const WARM_RUNS: usize = 200;

fn strategy(i: usize, interner: &mut SymbolInterner) -> CompiledStrategy {
    let symbol = format!("B{i:03}USDT", i = i % SYMBOLS);
    let interval = INTERVALS[(i / SYMBOLS) % INTERVALS.len()];
    let id = Uuid::from_u128(i as u128 + 1);
    let conditions = [
        (
            "price_alert",
            json!({"source": "binance", "symbol": symbol, "operator": "above", "value": 1.0}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": symbol, "interval": interval,
            "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
        ),
    ];
    let rows: Vec<ConditionRow> = conditions
        .iter()
        .enumerate()
        .map(|(k, (kind, params))| ConditionRow {
            id: Uuid::from_u128(((i as u128 + 1) << 8) | k as u128),
            strategy_id: id,
            kind: (*kind).into(),
            params: Some(params.to_string()),
        })
        .collect();
    let tree = json!({"and": [{"condition": rows[0].id}, {"condition": rows[1].id}]});
    let resolved = ResolvedStrategy {
        row: StrategyRow {
            id,
            user_id: Uuid::from_u128(i as u128),
            name: format!("strategy {i}"),
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
    CompiledStrategy::compile(&resolved, interner).expect("valid strategy")
}

fn prefetcher(sources: &SourcesConfig, shared: Option<SharedCache>, clock: Clock) -> Prefetcher {
    let metrics = Arc::new(Metrics::new().market);
    Prefetcher::new(
        Arc::new(Sources::new(sources, metrics.clone())),
        Arc::new(KlineCache::default()),
        shared,
        clock,
        PrefetchSettings {
            // Long enough that the warm runs all fall within it.
            price_ttl: Duration::from_secs(9),
            ..PrefetchSettings::default()
        },
        metrics,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let now = 1_800_000_000_000 + 1_000;
    let symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("B{i:03}USDT")).collect();
    let sim = market_sim::start(SimConfig {
        start_ms: Some(now),
        speed: 0.0,
        extra_symbols: symbols,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let sources = SourcesConfig {
        binance_base_url: sim.binance_url(),
        coingecko_base_url: sim.coingecko_url(),
        eth_rpc_url: None,
        binance_weight_budget: 4800,
        fallback_coingecko_ids: HashMap::new(),
        upstream: UpstreamSettings::default(),
    };

    let mut interner = SymbolInterner::default();
    let strategies: Vec<CompiledStrategy> = (0..STRATEGIES)
        .map(|i| strategy(i, &mut interner))
        .collect();
    let started = Instant::now();
    let mut needs = DataNeeds::default();
    for s in &strategies {
        s.needs(&mut needs);
    }
    let union_time = started.elapsed();

    let clock = Clock::manual(now);
    let cold = prefetcher(&sources, None, clock.clone());
    let started = Instant::now();
    let batch = cold.fetch(&needs).await;
    let cold_time = started.elapsed();
    assert!(
        batch.report.failures.is_empty(),
        "{:?}",
        &batch.report.failures[..1]
    );
    let tickers = sim
        .state
        .request_count(Provider::Binance, Some("/api/v3/ticker/price"));
    let klines = sim
        .state
        .request_count(Provider::Binance, Some("/api/v3/klines"));

    let mut warm: Vec<Duration> = (0..WARM_RUNS).map(|_| Duration::ZERO).collect();
    for slot in &mut warm {
        let started = Instant::now();
        let batch = cold.fetch(&needs).await;
        *slot = started.elapsed();
        assert_eq!(batch.snapshot.candles.len(), SYMBOLS * INTERVALS.len());
    }
    warm.sort();
    let after_warm = sim.state.request_count(Provider::Binance, None);

    println!(
        "prefetch: {STRATEGIES} strategies, {SYMBOLS} symbols x {} intervals",
        INTERVALS.len()
    );
    println!(
        "  needs union ({} lookups -> {} data)     {}",
        needs.demand,
        needs.len(),
        ms(union_time)
    );
    println!(
        "  cold batch                               {}",
        ms(cold_time)
    );
    println!("    price requests                         {tickers} (for {SYMBOLS} symbols)");
    println!(
        "    klines requests                        {klines} (for {} series)",
        SYMBOLS * INTERVALS.len()
    );
    println!(
        "  warm batch (L1), {WARM_RUNS} runs: median {}  p99 {}  max {}",
        ms(warm[WARM_RUNS / 2]),
        ms(warm[WARM_RUNS * 99 / 100]),
        ms(warm[WARM_RUNS - 1])
    );
    println!(
        "    upstream requests during warm runs     {}",
        after_warm - tickers - klines
    );
    println!(
        "  cold / warm median                       {:.0}x",
        cold_time.as_secs_f64() / warm[WARM_RUNS / 2].as_secs_f64()
    );

    if let Ok(url) = std::env::var("BENCH_REDIS_URL") {
        if url.is_empty() {
            return;
        }
        let redis =
            monitoring_service::storage::redis::connect(&url.into(), Duration::from_secs(5))
                .await
                .expect("Redis answers");
        let shared = || {
            Some(SharedCache::new(
                redis.clone(),
                SharedCacheSettings::default(),
            ))
        };
        // A simulator of its own (Binance counts weight per IP and minute) and a day
        // later, so nothing in Redis is current yet.
        let later = now + 86_400_000;
        let sim = market_sim::start(SimConfig {
            start_ms: Some(later),
            speed: 0.0,
            extra_symbols: (0..SYMBOLS).map(|i| format!("B{i:03}USDT")).collect(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let sources = SourcesConfig {
            binance_base_url: sim.binance_url(),
            ..sources.clone()
        };
        clock.set(later);
        let first = prefetcher(&sources, shared(), clock.clone());
        let before = sim.state.request_count(Provider::Binance, None);
        let started = Instant::now();
        let a = first.fetch(&needs).await;
        assert!(
            a.report.failures.is_empty(),
            "{:?} {} failures; {:?}",
            a.report.failures.first(),
            a.report.failures.len(),
            sim.state.requests.counts()
        );
        let first_time = started.elapsed();
        let fetched = sim.state.request_count(Provider::Binance, None) - before;
        let second = prefetcher(&sources, shared(), clock.clone());
        let started = Instant::now();
        let batch = second.fetch(&needs).await;
        let second_time = started.elapsed();
        assert_eq!(
            batch.snapshot.candles.len(),
            SYMBOLS * INTERVALS.len(),
            "{:?}",
            batch.report.failures.first()
        );
        let more = sim.state.request_count(Provider::Binance, None) - before - fetched;
        println!(
            "  with Redis: replica A, cold (L2 writes) {}  {fetched} upstream requests",
            ms(first_time)
        );
        println!(
            "              replica B, empty L1 (L2 reads) {}  {more} upstream requests",
            ms(second_time)
        );
    }
}
