//! The candle feed against the simulator's WebSocket streams and REST klines, on a
//! sped-up market clock: every close published once, in order, whatever happens to
//! the connection.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use market_sim::{SimConfig, SimHandle};
use monitoring_service::market::{
    CandleClosed, ClosedVia, Interval, MarketConfig, MarketData, PrefetchSettings, SeriesKey,
    SharedCacheSettings, Source, WebsocketSettings,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::market::*;

/// Simulated milliseconds per real millisecond: an hour in ten seconds.
const SPEED: f64 = 360.0;

async fn running_sim(start_ms: i64) -> SimHandle {
    market_sim::start(SimConfig {
        start_ms: Some(start_ms),
        speed: SPEED,
        ws_ping_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn market(sim: &SimHandle, websocket: bool) -> MarketData {
    market_with_age(
        sim,
        websocket,
        WebsocketSettings::default().max_connection_age,
    )
}

fn market_with_age(sim: &SimHandle, websocket: bool, max_connection_age: Duration) -> MarketData {
    MarketData::new(
        MarketConfig {
            sources: sources_config(sim),
            prefetch: PrefetchSettings::default(),
            shared_cache: SharedCacheSettings::default(),
            websocket: websocket.then(|| WebsocketSettings {
                base_url: sim.binance_ws_url(),
                min_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                max_connection_age,
                ..WebsocketSettings::default()
            }),
            poll_delay: Duration::from_millis(20),
        },
        None,
        mirrored_clock(sim),
        metrics(),
    )
}

fn series(symbol: &str) -> SeriesKey {
    SeriesKey {
        source: Source::Binance,
        symbol: Arc::from(symbol),
        interval: Interval::M1,
    }
}

/// Collects closes until every series has published the close of `last_open`.
async fn collect_until(
    events: &mut broadcast::Receiver<CandleClosed>,
    keys: &[SeriesKey],
    last_open: i64,
) -> BTreeMap<SeriesKey, Vec<CandleClosed>> {
    let mut seen: BTreeMap<SeriesKey, Vec<CandleClosed>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !keys.iter().all(|k| {
        seen.get(k)
            .and_then(|v| v.last())
            .is_some_and(|e| e.open_time_ms >= last_open)
    }) {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("closes keep coming")
            .expect("no close is dropped from the channel");
        seen.entry(event.series.clone()).or_default().push(event);
    }
    seen
}

/// Each series' closes are consecutive candles, none twice, with the simulator's
/// close prices.
fn assert_every_close_once(
    sim: &SimHandle,
    seen: &BTreeMap<SeriesKey, Vec<CandleClosed>>,
    at_least: usize,
) {
    let market = sim.state.market.read().unwrap();
    for (key, closes) in seen {
        assert!(
            closes.len() >= at_least,
            "{}: only {} closes",
            key.symbol,
            closes.len()
        );
        for pair in closes.windows(2) {
            assert_eq!(
                pair[1].open_time_ms - pair[0].open_time_ms,
                60_000,
                "{}: {:?} then {:?}",
                key.symbol,
                pair[0],
                pair[1]
            );
        }
        for close in closes {
            let candle = market.binance[&*key.symbol].candle(close.open_time_ms, 60_000, i64::MAX);
            let expected: f64 = format!("{:.8}", candle.close).parse().unwrap();
            assert_eq!(
                close.close, expected,
                "{} close at {}",
                key.symbol, close.open_time_ms
            );
        }
    }
}

#[tokio::test]
async fn a_websocket_dropped_and_shut_down_mid_hour_loses_no_candle_close() {
    let start = hour(20);
    let sim = running_sim(start).await;
    let market = market(&sim, true);
    let keys = [series("BTCUSDT"), series("ETHUSDT")];
    let mut events = market.subscribe_closes();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    market.set_streams(keys.iter().cloned().collect::<BTreeSet<_>>());
    market.spawn_feed(&tasks, shutdown.clone());

    // A quarter of an hour on the stream, then a drop with reconnection refused for
    // about five simulated minutes.
    let first = collect_until(&mut events, &keys, start + 15 * 60_000).await;
    sim.state.drop_websockets(Duration::from_millis(800));
    let second = collect_until(&mut events, &keys, start + 35 * 60_000).await;
    // Then Binance announces a shutdown of the connection.
    sim.state.shutdown_websockets();
    let third = collect_until(&mut events, &keys, start + 60 * 60_000).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;

    let mut all: BTreeMap<SeriesKey, Vec<CandleClosed>> = BTreeMap::new();
    for part in [first, second, third] {
        for (key, closes) in part {
            all.entry(key).or_default().extend(closes);
        }
    }
    assert_every_close_once(&sim, &all, 50);
    for closes in all.values() {
        assert!(
            closes.iter().any(|c| c.via == ClosedVia::Backfill),
            "the outage was backfilled"
        );
        assert!(closes.iter().any(|c| c.via == ClosedVia::Websocket));
    }
    let reconnects = |reason| {
        market_metrics(&market)
            .ws_reconnects
            .with_label_values(&[reason])
            .get()
    };
    assert_eq!(reconnects("dropped"), 1);
    assert_eq!(reconnects("server_shutdown"), 1);
    // Three connections in all: the simulator pings every 200 ms and drops a client
    // that leaves its pings unanswered for 600 ms, so no other disconnect happened.
    assert_eq!(binance_requests(&sim, "/stream"), 3);
}

#[tokio::test]
async fn streams_are_resubscribed_on_the_open_connection_as_strategies_change() {
    let start = hour(23);
    let sim = running_sim(start).await;
    let market = market(&sim, true);
    let (btc, eth) = (series("BTCUSDT"), series("ETHUSDT"));
    let mut events = market.subscribe_closes();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    market.set_streams(BTreeSet::from([btc.clone()]));
    market.spawn_feed(&tasks, shutdown.clone());
    collect_until(&mut events, std::slice::from_ref(&btc), start + 5 * 60_000).await;
    // A strategy on ETHUSDT is loaded: subscribed on the same connection.
    market.set_streams(BTreeSet::from([btc.clone(), eth.clone()]));
    let both = collect_until(
        &mut events,
        &[btc.clone(), eth.clone()],
        start + 15 * 60_000,
    )
    .await;
    // The BTCUSDT strategies are gone: unsubscribed.
    market.set_streams(BTreeSet::from([eth.clone()]));
    let later = collect_until(&mut events, std::slice::from_ref(&eth), start + 30 * 60_000).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    assert_eq!(
        binance_requests(&sim, "/stream"),
        1,
        "one connection throughout"
    );
    assert_every_close_once(&sim, &both, 5);
    let last_btc = later
        .get(&btc)
        .and_then(|c| c.last())
        .map(|c| c.open_time_ms);
    assert!(
        last_btc.is_none_or(|t| t <= start + 17 * 60_000),
        "BTCUSDT closes stop after the unsubscribe (last {last_btc:?})"
    );
    assert!(later[&eth].len() >= 10);
}

#[tokio::test]
async fn connections_are_renewed_before_their_maximum_age_without_losing_a_close() {
    let start = hour(24);
    let sim = running_sim(start).await;
    // Binance cuts connections at 24 h; here they are renewed every 1.5 s of real time.
    let market = market_with_age(&sim, true, Duration::from_millis(1500));
    let keys = [series("XRPUSDT")];
    let mut events = market.subscribe_closes();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    market.set_streams(keys.iter().cloned().collect());
    market.spawn_feed(&tasks, shutdown.clone());
    let seen = collect_until(&mut events, &keys, start + 40 * 60_000).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    assert_every_close_once(&sim, &seen, 35);
    let renewed = market
        .metrics()
        .ws_reconnects
        .with_label_values(&["max_age"])
        .get();
    assert!(renewed >= 2, "renewed {renewed} times");
}

#[tokio::test]
async fn streamed_closes_fill_the_kline_cache_without_rest_calls() {
    let start = hour(21);
    let sim = running_sim(start).await;
    let market = market(&sim, true);
    let key = series("SOLUSDT");
    let mut events = market.subscribe_closes();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    market.set_streams(BTreeSet::from([key.clone()]));
    market.spawn_feed(&tasks, shutdown.clone());
    // A first prefetch fills the cache over REST.
    let needs = needs_of(&[strategy(&[rsi_below("SOLUSDT", "1m", 30.0)])]);
    let _ = collect_until(&mut events, std::slice::from_ref(&key), start + 2 * 60_000).await;
    market.fetch(&needs).await;
    let klines = || binance_requests(&sim, "/api/v3/klines");
    let after_first = klines();
    // Twenty closes later the series is still current without another REST call.
    let seen = collect_until(&mut events, std::slice::from_ref(&key), start + 22 * 60_000).await;
    let batch = market.fetch(&needs).await;
    let now = market.clock().now_ms();
    let cached = &batch.snapshot.candles[&key];
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    assert!(seen[&key].iter().all(|c| c.via == ClosedVia::Websocket));
    assert!(
        cached.last_open_time() >= Some(start + 21 * 60_000),
        "the cache follows the stream (now {now})"
    );
    // The batch may have raced a boundary and waited briefly, but never re-fetched
    // the whole history.
    assert!(
        klines() <= after_first + 1,
        "{} klines requests after the first {after_first}",
        klines()
    );
}

#[tokio::test]
async fn without_websockets_closes_are_polled_after_each_boundary() {
    let start = hour(22);
    let sim = running_sim(start).await;
    let market = market(&sim, false);
    let keys = [series("BNBUSDT")];
    let mut events = market.subscribe_closes();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    market.set_streams(keys.iter().cloned().collect());
    market.spawn_feed(&tasks, shutdown.clone());
    let seen = collect_until(&mut events, &keys, start + 12 * 60_000).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    assert_every_close_once(&sim, &seen, 10);
    assert!(seen[&keys[0]].iter().all(|c| c.via == ClosedVia::Poll));
    assert_eq!(sim.state.websockets_open(), 0);
}

fn market_metrics(market: &MarketData) -> &monitoring_service::metrics::MarketMetrics {
    market.metrics()
}
