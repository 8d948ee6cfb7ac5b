//! Every refusal is a clear 4xx/5xx naming what is wrong, and nothing partial is
//! answered: an unsupported source, a span too long, an invalid draft, an unknown
//! strategy, too many backtests at once, a source failing mid-fetch; a stretch the
//! source lacks is reported as a gap.

use std::time::Duration;

use market_sim::{Fault, FaultKind, Provider};
use serde_json::json;
use sqlx::PgPool;

use super::{app_on, backtest, draft, rfc3339};
use crate::support::eventually;
use crate::support::market::{KLINES, binance_requests, frozen_sim, hour};

const HOUR: i64 = 3_600_000;

fn rsi_below_40() -> serde_json::Value {
    json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
           "indicator": "rsi", "period": 14, "operator": "below", "value": 40})
}

#[sqlx::test]
async fn bad_requests_are_named_400s(pool: PgPool) {
    let now = hour(70) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let app = app_on(pool, &sim, &[]).await;
    let coingecko =
        json!({"source": "coingecko", "symbol": "bitcoin", "operator": "above", "value": 1});
    let cases = [
        (
            json!({"strategy": draft("1h", "every_time", 0, "price_alert", coingecko)}),
            "backtest_unsupported_source",
            "strategy.conditions[0]: condition 00000000-0000-4000-8000-00000000c001 reads coingecko",
        ),
        (
            json!({"strategy": draft("1h", "every_time", 0, "technical_indicator", rsi_below_40()),
                   "from": rfc3339(now - 367 * 24 * HOUR)}),
            "range_too_large",
            "at most 366 days",
        ),
        (
            json!({"strategy": draft("1h", "every_time", 0, "technical_indicator", rsi_below_40()),
                   "from": rfc3339(now), "to": rfc3339(now - HOUR)}),
            "invalid_range",
            "from must be before to",
        ),
        (
            json!({"strategy": draft("1h", "every_time", 0, "technical_indicator",
                   json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                          "indicator": "rsi", "period": 14, "operator": "below", "value": 150}))}),
            "invalid_strategy",
            "strategy.conditions[0].params.value: rsi ranges from 0 to 100",
        ),
        (
            json!({"strategy": draft("2m", "every_time", 0, "technical_indicator", rsi_below_40())}),
            "invalid_strategy",
            "strategy.frequency: must be one of",
        ),
        (
            json!({"strategy": {"frequency": "1h", "trigger_mode": "once", "cooldown_seconds": "x",
                                "logic_tree": {}, "conditions": []}}),
            "invalid_body",
            "strategy.cooldown_seconds",
        ),
        (json!({"from": "yesterday"}), "invalid_body", "from: "),
        (
            json!({"strategy_id": null}),
            "invalid_strategy",
            "give strategy_id, strategy, or both",
        ),
        (json!([1, 2]), "invalid_body", "body: "),
    ];
    for (body, code, message) in cases {
        let (status, answer) = backtest(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], code, "{body}: {answer}");
        let text = answer["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, answer) = backtest(&app, json!({"strategy_id": unknown})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("not_found")),
        "{answer}"
    );
    assert_eq!(
        binance_requests(&sim, KLINES),
        0,
        "nothing refused reached Binance"
    );
}

#[sqlx::test]
async fn a_backtest_beyond_the_concurrency_limit_is_429(pool: PgPool) {
    let now = hour(71) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    let app = app_on(pool, &sim, &[("BACKTEST_MAX_CONCURRENCY", "1")]).await;
    sim.state.faults.push(Fault {
        provider: Provider::Binance,
        endpoint: Some(KLINES.into()),
        kind: FaultKind::Latency { ms: 2_000 },
        times: Some(1),
    });
    let body = json!({"strategy": draft("1h", "every_time", 0, "technical_indicator", rsi_below_40()),
                      "from": rfc3339(now - 48 * HOUR)});
    let slow = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/internal/backtest"));
        let body = body.clone();
        async move {
            let response = client
                .post(url)
                .header("X-MONITORING-KEY", crate::support::TEST_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    });
    eventually(
        Duration::from_secs(10),
        "the first backtest to fetch",
        || async { (binance_requests(&sim, KLINES) >= 1).then_some(()) },
    )
    .await;
    let (status, answer) = backtest(&app, body).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"], "backtest_busy");
    assert_eq!(slow.await.unwrap(), 200, "the first one finishes");
}

#[sqlx::test]
async fn a_source_failing_mid_fetch_is_503_naming_the_series_and_a_gap_is_reported(pool: PgPool) {
    let now = hour(72) + 30_000;
    let sim = frozen_sim(now, &[]).await;
    // Binance lacks three hours of BTCUSDT, ten hours back.
    let (gap_from, gap_to) = (hour(72) - 10 * HOUR, hour(72) - 7 * HOUR);
    sim.state
        .market
        .write()
        .unwrap()
        .kline_gaps
        .insert("BTCUSDT".into(), vec![(gap_from, gap_to)]);
    let app = app_on(pool, &sim, &[]).await;
    let strategy = draft("1h", "every_time", 0, "technical_indicator", rsi_below_40());
    let (status, report) = backtest(
        &app,
        json!({"strategy": strategy, "from": rfc3339(hour(72) - 24 * HOUR)}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["gaps"],
        json!([{"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                "from": rfc3339(gap_from), "to": rfc3339(gap_to)}])
    );

    // Again: the gap is still reported, and Binance is not asked for it twice.
    let requests = binance_requests(&sim, KLINES);
    let (status, again) = backtest(
        &app,
        json!({"strategy": strategy, "from": rfc3339(hour(72) - 24 * HOUR)}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["gaps"], report["gaps"]);
    assert_eq!(
        binance_requests(&sim, KLINES),
        requests,
        "a known gap is not asked again"
    );

    // A longer span needs candles not stored yet; Binance fails while they are fetched.
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
    let (status, answer) = backtest(
        &app,
        json!({"strategy": strategy, "from": rfc3339(hour(72) - 2_000 * HOUR)}),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "market_data_unavailable");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("binance BTCUSDT 1h"),
        "{answer}"
    );
}
