//! Candle history against the simulator and real Postgres: a span is fetched once,
//! page by page, and stored; a second read asks the source nothing; two readers of one
//! series take turns; a source failing mid-fetch answers an error naming the series,
//! never a partial span.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use market_sim::{Fault, FaultKind, Provider};
use monitoring_service::market::candle_history::{CandleHistory, HistoryError};
use monitoring_service::market::{Interval, Sources};
use sqlx::PgPool;

use crate::support::market::*;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

#[sqlx::test]
async fn a_span_is_fetched_once_page_by_page_and_read_from_the_store_after(pool: PgPool) {
    let now = hour(40) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let history = CandleHistory::new(
        pool.clone(),
        Arc::new(Sources::new(&sources_config(&sim), metrics())),
    );
    let minute = 60_000;
    let (from, to) = (at(now - 2_500 * minute - 30_000), at(now));

    let first = history
        .span("BTCUSDT", Interval::M1, from, to, at(now))
        .await
        .unwrap();
    assert_eq!(first.candles.len(), 2_500, "the forming minute left out");
    assert_eq!((first.from_store, first.fetched), (0, 2_500));
    assert!(first.gaps.is_empty(), "{:?}", first.gaps);
    assert_eq!(binance_requests(&sim, KLINES), 3, "1,000 candles a request");
    assert!(
        first
            .candles
            .windows(2)
            .all(|w| w[1].open_time - w[0].open_time == chrono::Duration::minutes(1)),
        "consecutive and in order"
    );
    let last = first.candles.last().unwrap();
    let theirs = sim.state.market.read().unwrap().binance["BTCUSDT"].candle(
        last.open_time.timestamp_millis(),
        minute,
        now,
    );
    assert_eq!(
        last.close,
        format!("{:.8}", theirs.close).parse::<f64>().unwrap()
    );

    let second = history
        .span("BTCUSDT", Interval::M1, from, to, at(now))
        .await
        .unwrap();
    assert_eq!((second.from_store, second.fetched), (2_500, 0));
    assert_eq!(second.candles, first.candles);
    assert_eq!(binance_requests(&sim, KLINES), 3, "the store answered");

    // A wider span fetches only what it adds.
    let wider = history
        .span(
            "BTCUSDT",
            Interval::M1,
            at(now - 3_000 * minute - 30_000),
            to,
            at(now),
        )
        .await
        .unwrap();
    assert_eq!((wider.from_store, wider.fetched), (2_500, 500));
    assert_eq!(binance_requests(&sim, KLINES), 4);
}

#[sqlx::test]
async fn two_readers_of_one_series_take_turns_and_the_second_asks_nothing(pool: PgPool) {
    let now = hour(41) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let history = CandleHistory::new(
        pool.clone(),
        Arc::new(Sources::new(&sources_config(&sim), metrics())),
    );
    let (from, to) = (at(now - 1_500 * 3_600_000), at(now));
    let (a, b) = tokio::join!(
        history.span("ETHUSDT", Interval::H1, from, to, at(now)),
        history.span("ETHUSDT", Interval::H1, from, to, at(now)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.candles, b.candles);
    assert_eq!(a.fetched + b.fetched, 1_499, "fetched once between them");
    assert_eq!(binance_requests(&sim, KLINES), 2);
}

#[sqlx::test]
async fn a_source_failing_mid_fetch_answers_an_error_naming_the_series(pool: PgPool) {
    let now = hour(42) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let history = CandleHistory::new(
        pool.clone(),
        Arc::new(Sources::new(&sources_config(&sim), metrics())),
    );
    sim.state.faults.push(Fault {
        provider: Provider::Binance,
        endpoint: Some(KLINES.into()),
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        times: None,
    });
    let error = history
        .span(
            "BTCUSDT",
            Interval::M1,
            at(now - 2_000 * 60_000),
            at(now),
            at(now),
        )
        .await
        .unwrap_err();
    match &error {
        HistoryError::Unavailable { series, .. } => assert_eq!(series, "binance BTCUSDT 1m"),
        other => panic!("{other:?}"),
    }
}

#[sqlx::test]
async fn a_stretch_the_source_lacks_is_reported_as_a_gap_never_filled(pool: PgPool) {
    let now = hour(43) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let hour_ms = 3_600_000;
    // Binance has no klines of BTCUSDT for the three hours opened at now-30h … now-28h.
    let (gap_from, gap_to) = (hour(43) - 30 * hour_ms, hour(43) - 27 * hour_ms);
    sim.state
        .market
        .write()
        .unwrap()
        .kline_gaps
        .insert("BTCUSDT".into(), vec![(gap_from, gap_to)]);
    let history = CandleHistory::new(
        pool.clone(),
        Arc::new(Sources::new(&sources_config(&sim), metrics())),
    );
    let span = history
        .span(
            "BTCUSDT",
            Interval::H1,
            at(hour(43) - 48 * hour_ms),
            at(now),
            at(now),
        )
        .await
        .unwrap();
    assert_eq!(span.candles.len(), 48 - 3);
    assert_eq!(span.gaps.len(), 1);
    assert_eq!(
        (span.gaps[0].from, span.gaps[0].to),
        (at(gap_from), at(gap_to))
    );
    assert!(
        span.candles
            .iter()
            .all(|c| c.open_time < at(gap_from) || c.open_time >= at(gap_to)),
        "nothing invented inside the gap"
    );
}

#[sqlx::test]
async fn two_replicas_filling_one_series_fetch_it_once_between_them(pool: PgPool) {
    let now = hour(44) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    // Two replicas: each its own candle history (its own in-process turns), one store.
    let replica = || {
        CandleHistory::new(
            pool.clone(),
            Arc::new(Sources::new(&sources_config(&sim), metrics())),
        )
    };
    let (a, b) = (replica(), replica());
    let (from, to) = (at(now - 1_500 * 3_600_000), at(now));
    let (one, other) = tokio::join!(
        a.span("SOLUSDT", Interval::H1, from, to, at(now)),
        b.span("SOLUSDT", Interval::H1, from, to, at(now)),
    );
    let (one, other) = (one.unwrap(), other.unwrap());
    assert_eq!(
        binance_requests(&sim, KLINES),
        2,
        "the second replica waited its turn"
    );
    assert_eq!(
        one.fetched + other.fetched,
        1_499,
        "fetched once between them"
    );
    assert!(one.candles == other.candles, "both read the same candles");
}
