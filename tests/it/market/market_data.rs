//! Market data end to end: the real clients and prefetcher against the market
//! simulator (and the real Redis for the shared cache). Upstream calls are counted by
//! the simulator itself.

use std::sync::Arc;
use std::time::Duration;

use market_sim::{Fault, FaultKind, Provider};
use monitoring_service::logic_tree::{BatchContext, Tri};
use monitoring_service::market::sources::UpstreamError;
use monitoring_service::market::{Clock, Interval, Source};
use serde_json::json;

use crate::support::market::*;

#[tokio::test]
async fn ten_strategies_sharing_btcusdt_cause_one_upstream_request() {
    let now = hour(1) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let clock = Clock::manual(now);
    let prefetcher = prefetcher(&sim, clock.clone());

    let alerts: Vec<_> = (0..10)
        .map(|i| strategy(&[price_above("binance", "BTCUSDT", 60_000.0 + f64::from(i))]))
        .collect();
    let fetched = prefetcher.fetch(&needs_of(&alerts)).await;
    assert_eq!(binance_requests(&sim, TICKER), 1);
    assert_eq!(sim.state.request_count(Provider::Binance, None), 1);
    let quote = fetched.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")];
    assert_eq!(quote.price, sim_price(&sim, "BTCUSDT", now));
    assert_eq!(quote.answered_by, Source::Binance);
    assert_eq!(
        (
            fetched.report.demand,
            fetched.report.data,
            fetched.report.fetched
        ),
        (10, 1, 1)
    );

    // Ten RSI(14) 1h strategies on the same series: one klines request, closed candles only.
    let rsis: Vec<_> = (0..10)
        .map(|i| strategy(&[rsi_below("BTCUSDT", "1h", 20.0 + f64::from(i))]))
        .collect();
    let fetched = prefetcher.fetch(&needs_of(&rsis)).await;
    assert_eq!(binance_requests(&sim, KLINES), 1);
    let series = &fetched.snapshot.candles[&series_key("BTCUSDT", Interval::H1)];
    assert_eq!(
        series.last_open_time(),
        Some(hour(1) - 3_600_000),
        "the forming candle is left out"
    );
    let market = sim.state.market.read().unwrap();
    let expected = market.binance["BTCUSDT"].candle(hour(1) - 3_600_000, 3_600_000, now);
    assert_eq!(
        *series.close.last().unwrap(),
        format!("{:.8}", expected.close).parse::<f64>().unwrap()
    );
    assert!(series.len() >= 16);
}

#[tokio::test]
async fn a_hundred_strategies_over_fifty_symbols_cause_one_price_request() {
    let now = hour(2) + 10_000;
    let symbols: Vec<String> = (0..50).map(|i| format!("SIM{i}USDT")).collect();
    let sim = frozen_sim(now, &symbols).await;
    let prefetcher = prefetcher(&sim, Clock::manual(now));
    let strategies: Vec<_> = (0..100)
        .map(|i| strategy(&[price_above("binance", &symbols[i % 50], 1.0)]))
        .collect();
    let fetched = prefetcher.fetch(&needs_of(&strategies)).await;
    assert_eq!(binance_requests(&sim, TICKER), 1);
    assert_eq!(fetched.snapshot.prices.len(), 50);
    for symbol in &symbols {
        assert_eq!(
            fetched.snapshot.prices[&price_key(Source::Binance, symbol)].price,
            sim_price(&sim, symbol, now)
        );
    }
    // Within the price TTL the next batch is served from memory.
    let again = prefetcher.fetch(&needs_of(&strategies)).await;
    assert_eq!(binance_requests(&sim, TICKER), 1);
    assert_eq!(again.report.fetched, 0);
}

#[tokio::test]
async fn an_unknown_symbol_is_found_by_bisection_and_only_its_conditions_are_unknown() {
    let now = hour(3) + 10_000;
    let sim = frozen_sim(now, &[]).await;
    let prefetcher = prefetcher(&sim, Clock::manual(now));
    let good = strategy(&[price_above("binance", "ETHUSDT", 1.0)]);
    let bad = strategy(&[price_above("binance", "NOSUCHUSDT", 1.0)]);
    let fetched = prefetcher
        .fetch(&needs_of(&[good.clone(), bad.clone()]))
        .await;
    assert_eq!(fetched.snapshot.prices.len(), 1);
    assert_eq!(fetched.report.failures.len(), 1);
    assert_eq!(
        fetched.report.failures[0].error,
        UpstreamError::UnknownSymbol
    );
    let ctx = BatchContext::prepare(Arc::new(fetched.snapshot), []);
    assert_eq!(good.evaluate(&ctx, &|_| None), Tri::True);
    assert_eq!(bad.evaluate(&ctx, &|_| None), Tri::Unknown);
    let requests = binance_requests(&sim, TICKER);
    // The batch of two, then each half.
    assert_eq!(requests, 3);
    // The invalid symbol is remembered: the next batch is one request again.
    set_time(&sim, prefetcher.clock(), now + 60_000);
    let fetched = prefetcher.fetch(&needs_of(&[good, bad])).await;
    assert_eq!(binance_requests(&sim, TICKER), requests + 1);
    assert_eq!(fetched.snapshot.prices.len(), 1);
}

#[tokio::test]
async fn two_replicas_sharing_redis_make_no_more_upstream_requests_than_one() {
    let now = hour(4) + 5_000;
    // Symbols of their own, so what an earlier run left in the test Redis is not found.
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase();
    let symbols: Vec<String> = (0..20).map(|i| format!("TWO{i}{run}USDT")).collect();
    let sim = frozen_sim(now, &symbols).await;
    let strategies: Vec<_> = symbols
        .iter()
        .map(|s| strategy(&[price_above("binance", s, 1.0), rsi_below(s, "15m", 30.0)]))
        .collect();
    let needs = needs_of(&strategies);

    // One replica alone, on its own simulator, sets the baseline.
    let alone_sim = frozen_sim(now, &symbols).await;
    let alone = prefetcher(&alone_sim, Clock::manual(now));
    alone.fetch(&needs).await;
    let baseline = alone_sim.state.request_count(Provider::Binance, None);
    assert_eq!(
        baseline,
        1 + 20,
        "one price request and one klines request per series"
    );

    let clock = Clock::manual(now);
    let a = prefetcher_with(
        sources_config(&sim),
        Some(test_redis().await),
        clock.clone(),
        metrics(),
    );
    let b = prefetcher_with(
        sources_config(&sim),
        Some(test_redis().await),
        clock.clone(),
        metrics(),
    );
    let (from_a, from_b) = tokio::join!(a.fetch(&needs), b.fetch(&needs));
    assert_eq!(sim.state.request_count(Provider::Binance, None), baseline);
    assert_eq!(from_a.snapshot.prices, from_b.snapshot.prices);
    assert_eq!(from_a.snapshot.candles.len(), 20);
    for (key, series) in &from_a.snapshot.candles {
        assert_eq!(**series, *from_b.snapshot.candles[key]);
    }
    // A third replica started later reads everything from Redis.
    let c = prefetcher_with(
        sources_config(&sim),
        Some(test_redis().await),
        clock,
        metrics(),
    );
    let from_c = c.fetch(&needs).await;
    assert_eq!(sim.state.request_count(Provider::Binance, None), baseline);
    assert_eq!(from_c.report.fetched, 0);
    assert_eq!(from_c.snapshot.prices, from_a.snapshot.prices);
}

#[tokio::test]
async fn an_hour_of_one_minute_batches_hits_the_cache_and_fetches_each_close_once() {
    let start = hour(5);
    let symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"];
    let sim = frozen_sim(start, &[]).await;
    let clock = Clock::manual(start);
    let prefetcher = prefetcher(&sim, clock.clone());
    // 200 strategies over 5 symbols: a price alert, RSI(14) on 1m, EMA crosses on 5m,
    // MACD on 1h.
    let strategies: Vec<_> = (0..200)
        .map(|i| {
            let s = symbols[i % 5];
            strategy(&[
                price_above("binance", s, 1.0),
                rsi_below(s, "1m", 30.0 + (i % 7) as f64),
                (
                    "technical_indicator",
                    json!({"source": "binance", "symbol": s, "interval": "5m",
                    "indicator": "ema", "period": 9, "operator": "crosses_above",
                    "compare_to": {"indicator": "ema", "period": 21}}),
                ),
                (
                    "technical_indicator",
                    json!({"source": "binance", "symbol": s, "interval": "1h",
                    "indicator": "macd", "fast": 12, "slow": 26, "signal": 9,
                    "output": "histogram", "operator": "above", "value": 0}),
                ),
            ])
        })
        .collect();
    let needs = needs_of(&strategies);
    let (mut demand, mut fetched) = (0, 0);
    for minute in 0..60 {
        // Each batch runs a second after its minute's boundary.
        let now = start + minute * 60_000 + 1_000;
        set_time(&sim, &clock, now);
        let batch = prefetcher.fetch(&needs).await;
        assert!(
            batch.report.failures.is_empty(),
            "{:?}",
            batch.report.failures
        );
        assert_eq!(batch.snapshot.prices.len(), 5);
        assert_eq!(batch.snapshot.candles.len(), 15);
        for (key, series) in &batch.snapshot.candles {
            assert_eq!(
                series.last_open_time(),
                Some(key.interval.last_closed_open(now)),
                "{key:?} at minute {minute}"
            );
        }
        demand += batch.report.demand;
        fetched += batch.report.fetched;
    }
    let hit_rate = 1.0 - fetched as f64 / demand as f64;
    assert!(
        hit_rate > 0.95,
        "hit rate {hit_rate:.4} ({fetched} fetched of {demand} lookups)"
    );

    // Klines: one full fetch per series, then one request per closed candle.
    let log = sim.state.requests.records();
    for symbol in symbols {
        for (interval, closes) in [("1m", 59), ("5m", 11), ("1h", 0)] {
            let requests = log
                .iter()
                .filter(|r| r.endpoint == KLINES)
                .filter(|r| {
                    r.query.contains(&format!("symbol={symbol}&"))
                        && r.query.contains(&format!("interval={interval}&"))
                })
                .count();
            assert_eq!(requests, 1 + closes, "{symbol} {interval}");
        }
    }
    assert_eq!(
        binance_requests(&sim, TICKER),
        60,
        "prices expire between 1m batches"
    );
}

#[tokio::test]
async fn uniswap_pool_prices_come_from_slot0_with_one_batched_call_per_batch() {
    let now = hour(9) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    let clock = Clock::manual(now);
    let prefetcher = prefetcher(&sim, clock.clone());
    let pool = market_sim::USDC_WETH_POOL;
    let needs = needs_of(&[strategy(&[price_above("uniswap", pool, 0.0001)])]);
    let fetched = prefetcher.fetch(&needs).await;
    assert!(
        fetched.report.failures.is_empty(),
        "{:?}",
        fetched.report.failures
    );
    let expected = sim.state.market.read().unwrap().pools[pool]
        .path
        .price_at(now);
    let quote = fetched.snapshot.prices[&price_key(Source::Uniswap, pool)];
    assert!(
        (quote.price / expected - 1.0).abs() < 1e-9,
        "{} vs {expected}",
        quote.price
    );
    // token0/token1, then decimals, then slot0.
    assert_eq!(sim.state.request_count(Provider::Ethereum, None), 3);
    set_time(&sim, &clock, now + 60_000);
    prefetcher.fetch(&needs).await;
    assert_eq!(
        sim.state.request_count(Provider::Ethereum, None),
        4,
        "decimals are remembered"
    );
}

#[tokio::test]
async fn percent_change_windows_read_past_prices_from_candles_and_coingecko_charts() {
    let now = hour(10) + 90_000;
    let sim = frozen_sim(now, &[]).await;
    let prefetcher = prefetcher(&sim, Clock::manual(now));
    let binance = strategy(&[(
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT",
        "operator": "pct_change_above", "value": -100, "window": "1h"}),
    )]);
    let coingecko = strategy(&[(
        "price_alert",
        json!({"source": "coingecko", "symbol": "bitcoin",
        "operator": "pct_change_above", "value": -100, "window": "1h"}),
    )]);
    let fetched = prefetcher
        .fetch(&needs_of(&[binance.clone(), coingecko.clone()]))
        .await;
    assert!(
        fetched.report.failures.is_empty(),
        "{:?}",
        fetched.report.failures
    );
    let then = now - 3_600_000;
    let market = sim.state.market.read().unwrap().clone();
    // Binance: interpolated within the 1m candle containing `then`.
    let from_candles = fetched
        .snapshot
        .price_ago(&price_key(Source::Binance, "BTCUSDT"), 3_600)
        .unwrap();
    let candle = market.binance["BTCUSDT"].candle(then.div_euclid(60_000) * 60_000, 60_000, now);
    let decimal = |p: f64| format!("{p:.8}").parse::<f64>().unwrap();
    let fraction = (then % 60_000) as f64 / 60_000.0;
    let expected = decimal(candle.open) + (decimal(candle.close) - decimal(candle.open)) * fraction;
    assert!(
        (from_candles / expected - 1.0).abs() < 1e-12,
        "{from_candles} vs {expected}"
    );
    // CoinGecko: the 5-minute chart point at or before `then`.
    let from_chart = fetched
        .snapshot
        .price_ago(&price_key(Source::Coingecko, "bitcoin"), 3_600)
        .unwrap();
    let point = then.div_euclid(300_000) * 300_000;
    assert!((from_chart / market.coingecko["bitcoin"].price_at(point) - 1.0).abs() < 1e-7);
    let ctx = BatchContext::prepare(Arc::new(fetched.snapshot), []);
    assert_eq!(binance.evaluate(&ctx, &|_| None), Tri::True);
    assert_eq!(coingecko.evaluate(&ctx, &|_| None), Tri::True);
}

#[tokio::test]
async fn concurrent_batches_in_one_process_share_one_fetch() {
    let now = hour(11) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    let prefetcher = prefetcher(&sim, Clock::manual(now));
    // A slow answer keeps the first fetch in flight while the second batch asks.
    sim.state.faults.push(Fault {
        provider: Provider::Binance,
        endpoint: None,
        kind: FaultKind::Latency { ms: 300 },
        times: None,
    });
    let first = needs_of(&[strategy(&[
        price_above("binance", "BTCUSDT", 1.0),
        rsi_below("BTCUSDT", "4h", 30.0),
    ])]);
    let second = needs_of(&[
        strategy(&[
            price_above("binance", "BTCUSDT", 2.0),
            rsi_below("BTCUSDT", "4h", 40.0),
        ]),
        strategy(&[price_above("binance", "ETHUSDT", 2.0)]),
    ]);
    let (a, b) = tokio::join!(prefetcher.fetch(&first), async {
        // Starts once the first batch's requests are on their way.
        crate::support::eventually(
            Duration::from_secs(5),
            "the first fetch to start",
            || async { (sim.state.request_count(Provider::Binance, None) >= 2).then_some(()) },
        )
        .await;
        prefetcher.fetch(&second).await
    });
    assert_eq!(
        a.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")],
        b.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")]
    );
    assert_eq!(
        binance_requests(&sim, KLINES),
        1,
        "the 4h series was fetched once"
    );
    // BTCUSDT once (shared), ETHUSDT in the second batch's own request.
    assert_eq!(binance_requests(&sim, TICKER), 2);
    let log = sim.state.requests.records();
    let tickers: Vec<&str> = log
        .iter()
        .filter(|r| r.endpoint == TICKER)
        .map(|r| r.query.as_str())
        .collect();
    assert!(
        tickers[1].contains("ETHUSDT") && !tickers[1].contains("BTCUSDT"),
        "{tickers:?}"
    );
}

#[tokio::test]
async fn a_scripted_path_crosses_its_level_at_the_scripted_candle() {
    let start = hour(13);
    let sim = market_sim::start(market_sim::SimConfig {
        start_ms: Some(start),
        speed: 0.0,
        script: Some(
            serde_json::from_value(json!({"paths": [{
                "source": "binance", "symbol": "BTCUSDT", "start_ms": start, "step_ms": 60_000,
                "points": [64_000.0, 64_200.0, 64_500.0, 65_100.0, 65_300.0]
            }]}))
            .unwrap(),
        ),
        ..market_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let clock = Clock::manual(start);
    let prefetcher = prefetcher(&sim, clock.clone());
    let cross = strategy(&[(
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT",
        "operator": "crosses_above", "value": 65_000}),
    )]);
    let needs = needs_of(std::slice::from_ref(&cross));
    let mut previous = None;
    let mut crossed_at = Vec::new();
    for minute in 1..=4 {
        set_time(&sim, &clock, start + minute * 60_000);
        let batch = prefetcher.fetch(&needs).await;
        let price = batch.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")].price;
        let ctx = BatchContext::prepare(Arc::new(batch.snapshot), []);
        if cross.evaluate(&ctx, &|_| previous) == Tri::True {
            crossed_at.push(minute);
        }
        previous = Some(price);
    }
    // The third candle closes at minute 3, at 65,100.
    assert_eq!(crossed_at, vec![3]);
    let candles = prefetcher
        .refresh_series(&series_key("BTCUSDT", Interval::M1), 4)
        .await
        .unwrap();
    assert_eq!(
        candles.close[candles.len() - 4..],
        [64_200.0, 64_500.0, 65_100.0, 65_300.0]
    );
}

#[tokio::test]
async fn the_simulator_is_controlled_over_http() {
    let sim = frozen_sim(hour(14), &[]).await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/__sim/{path}", sim.coingecko_url());
    let clock: serde_json::Value = http
        .post(control("clock"))
        .json(&json!({"now_ms": hour(14) + 5_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["now_ms"], hour(14) + 5_000);
    http.post(control("faults"))
        .json(&json!({"provider": "coingecko", "kind": "status", "status": 418, "retry_after": 7, "times": 1}))
        .send().await.unwrap().error_for_status().unwrap();
    let url = format!(
        "{}/api/v3/simple/price?ids=bitcoin&vs_currencies=usd",
        sim.coingecko_url()
    );
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 418);
    assert_eq!(refused.headers()["retry-after"], "7");
    let answered: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(answered["bitcoin"]["usd"].as_f64().unwrap() > 0.0);
    let counts: serde_json::Value = http
        .get(control("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["coingecko"]["/api/v3/simple/price"], 2);
}
