//! Market data when the sources misbehave, against the market simulator's faults: a
//! 429's `Retry-After` pausing every call to the host, a dead Binance priced by
//! CoinGecko, malformed bodies, and Binance's request weight kept within budget.

use std::sync::Arc;
use std::time::Duration;

use market_sim::{Fault, FaultKind, Provider};
use monitoring_service::logic_tree::{BatchContext, Tri};
use monitoring_service::market::sources::UpstreamError;
use monitoring_service::market::{Clock, Source};

use crate::support::market::*;

#[tokio::test]
async fn a_429_with_retry_after_pauses_every_call_to_that_host() {
    let now = hour(6) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    let prefetcher = prefetcher(&sim, Clock::manual(now));
    // ETHBTC has no CoinGecko fallback, so the pause shows as a failure.
    let needs = needs_of(&[strategy(&[price_above("binance", "ETHBTC", 0.01)])]);
    sim.state.faults.push(Fault {
        provider: Provider::Binance,
        endpoint: None,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(2),
            body: None,
        },
        times: Some(1),
    });
    let first = prefetcher.fetch(&needs).await;
    assert!(matches!(
        first.report.failures[0].error,
        UpstreamError::RateLimited {
            status: 429,
            retry_after_ms: 2000
        }
    ));
    let limited_at = sim.state.requests.records().last().unwrap().at_ms;

    // Calls during the pause are not sent at all.
    let second = prefetcher.fetch(&needs).await;
    assert!(matches!(
        second.report.failures[0].error,
        UpstreamError::Paused { .. }
    ));
    assert_eq!(binance_requests(&sim, TICKER), 1);

    let price = crate::support::eventually(Duration::from_secs(10), "the pause to end", || async {
        prefetcher
            .fetch(&needs)
            .await
            .snapshot
            .prices
            .values()
            .next()
            .map(|q| q.price)
    })
    .await;
    assert_eq!(price, sim_price(&sim, "ETHBTC", now));
    let log = sim.state.requests.records();
    let after: Vec<i64> = log.iter().skip(1).map(|r| r.at_ms - limited_at).collect();
    assert_eq!(
        after.len(),
        1,
        "exactly one request after the 429: {after:?}"
    );
    assert!(after[0] >= 2_000, "a request {} ms after the 429", after[0]);
}

#[tokio::test]
async fn a_dead_binance_means_prices_from_coingecko_that_say_so() {
    let now = hour(7) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    let needs = needs_of(&[
        strategy(&[price_above("binance", "BTCUSDT", 1.0)]),
        strategy(&[price_above("binance", "ETHBTC", 0.01)]),
    ]);
    let coingecko_price = {
        let market = sim.state.market.read().unwrap();
        market.coingecko["bitcoin"].price_at(now)
    };

    // Binance answering 503 to everything (after retries).
    binance_answers_503(&sim);
    let metrics = metrics();
    let failing = prefetcher_with(
        sources_config(&sim),
        None,
        Clock::manual(now),
        metrics.clone(),
    );
    let fetched = failing.fetch(&needs).await;
    let quote = fetched.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")];
    assert_eq!(quote.answered_by, Source::Coingecko);
    assert!((quote.price / coingecko_price - 1.0).abs() < 1e-6);
    assert!(
        !fetched
            .snapshot
            .prices
            .contains_key(&price_key(Source::Binance, "ETHBTC")),
        "no fallback is configured for ETHBTC"
    );
    assert_eq!(
        binance_requests(&sim, TICKER),
        3,
        "the first attempt and two retries"
    );
    assert_eq!(
        metrics
            .fallbacks
            .with_label_values(&["binance", "coingecko"])
            .get(),
        1
    );
    assert_eq!(
        metrics
            .upstream_requests
            .with_label_values(&["binance", TICKER, "503"])
            .get(),
        3
    );

    // Nothing listening at all.
    let mut dead = sources_config(&sim);
    dead.binance_base_url = "http://127.0.0.1:9".into();
    let fetched = prefetcher_with(
        dead,
        None,
        Clock::manual(now),
        crate::support::market::metrics(),
    )
    .fetch(&needs)
    .await;
    assert_eq!(
        fetched.snapshot.prices[&price_key(Source::Binance, "BTCUSDT")].answered_by,
        Source::Coingecko
    );
}

#[tokio::test]
async fn malformed_upstream_bodies_give_unknown_conditions_and_a_counted_error() {
    let now = hour(8) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    let metrics = metrics();
    let prefetcher = prefetcher_with(
        sources_config(&sim),
        None,
        Clock::manual(now),
        metrics.clone(),
    );
    let price = strategy(&[price_above("binance", "ETHBTC", 0.01)]);
    let rsi = strategy(&[rsi_below("ETHBTC", "1h", 50.0)]);
    let cases = [
        (TICKER, r#"{"symbol":"ETHBTC","price":"#),
        (TICKER, r#"{"symbol":"ETHBTC","price":12.5}"#),
        (TICKER, r#"[{"symbol":"ETHBTC","price":"NaN"}]"#),
        (KLINES, r#"[[1,"1","1"]]"#),
        (KLINES, r#"{"code":0}"#),
        (KLINES, "<html>"),
    ];
    for (i, (endpoint, body)) in cases.into_iter().enumerate() {
        sim.state.faults.push(Fault {
            provider: Provider::Binance,
            endpoint: Some(endpoint.into()),
            kind: FaultKind::Malformed {
                body: Some(body.into()),
            },
            times: Some(1),
        });
        // A new minute each time, so nothing comes from the cache.
        set_time(&sim, prefetcher.clock(), now + i as i64 * 3_600_000);
        let fetched = prefetcher
            .fetch(&needs_of(&[price.clone(), rsi.clone()]))
            .await;
        assert_eq!(fetched.report.failures.len(), 1, "{body}");
        assert!(
            matches!(
                fetched.report.failures[0].error,
                UpstreamError::Malformed(_)
            ),
            "{body}"
        );
        let keys: Vec<_> = rsi.indicator_keys().cloned().collect();
        let ctx = BatchContext::prepare(Arc::new(fetched.snapshot), &keys);
        let broken = if endpoint == TICKER { &price } else { &rsi };
        let fine = if endpoint == TICKER { &rsi } else { &price };
        assert_eq!(broken.evaluate(&ctx, &|_| None), Tri::Unknown, "{body}");
        assert_ne!(fine.evaluate(&ctx, &|_| None), Tri::Unknown, "{body}");
    }
    let counted = |endpoint| {
        metrics
            .upstream_errors
            .with_label_values(&["binance", endpoint, "malformed"])
            .get()
    };
    assert_eq!((counted(TICKER), counted(KLINES)), (3, 3));
}

#[tokio::test]
async fn the_client_keeps_within_its_weight_budget_counting_what_binance_reports() {
    let now = hour(12) + 1_000;
    let sim = frozen_sim(now, &[]).await;
    // Another client on the same IP already used 40 of the minute's weight.
    let http = reqwest::Client::new();
    for _ in 0..2 {
        http.get(format!("{}/api/v3/exchangeInfo", sim.binance_url()))
            .send()
            .await
            .unwrap();
    }
    let metrics = metrics();
    let mut config = sources_config(&sim);
    config.binance_weight_budget = 50;
    let prefetcher = prefetcher_with(config, None, Clock::manual(now), metrics.clone());
    let symbols = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCBTC",
    ];
    // One series at a time, so the header of each answer is seen before the next call.
    let mut answered = 0;
    for symbol in symbols {
        let needs = needs_of(&[strategy(&[rsi_below(symbol, "1h", 30.0)])]);
        answered += prefetcher.fetch(&needs).await.snapshot.candles.len();
    }
    // 40 used by the other client, 2 per klines call: five calls fit in 50.
    assert_eq!(answered, 5);
    assert_eq!(binance_requests(&sim, KLINES), 5);
    assert_eq!(
        metrics
            .upstream_skipped
            .with_label_values(&["binance", "weight_budget"])
            .get(),
        3
    );
    assert_eq!(metrics.binance_used_weight.get(), 50);
}
