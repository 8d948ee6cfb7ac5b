//! RSI(14) `crosses_below` 30 on 1h candles, bar-close mode: the backtest's fires are
//! the ones TA-Lib finds on the same candles (`tests/golden/backtest_rsi.json`, made by
//! `scripts/golden/generate_backtest.py`), with TA-Lib's values; a second backtest of
//! the span reads the candle store and asks Binance nothing.

use market_sim::{Script, SimConfig};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{app_on, backtest, draft, fire_times, rfc3339};
use crate::support::golden_market::assert_close;
use crate::support::market::{KLINES, binance_requests};

#[sqlx::test]
async fn rsi_crossing_below_30_fires_where_talib_says_and_a_second_run_asks_binance_nothing(
    pool: PgPool,
) {
    let golden: Value =
        serde_json::from_str(include_str!("../../golden/backtest_rsi.json")).unwrap();
    let script: Script = serde_json::from_value(golden["script"].clone()).unwrap();
    let sim = market_sim::start(SimConfig {
        start_ms: golden["now_ms"].as_i64(),
        speed: 0.0,
        script: Some(script),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let app = app_on(pool, &sim, &[]).await;
    let rsi = json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                     "indicator": "rsi", "period": 14, "operator": "crosses_below", "value": 30});
    let body = json!({
        "strategy": draft("candle_close", "once_per_bar_close", 0, "technical_indicator", rsi),
        "from": rfc3339(golden["from_ms"].as_i64().unwrap()),
        "to": rfc3339(golden["to_ms"].as_i64().unwrap()),
    });

    let (status, first) = backtest(&app, body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let expected = golden["fires"].as_array().unwrap();
    assert!(expected.len() >= 10, "the golden walk crosses often enough");
    let wanted: Vec<i64> = expected.iter().map(|f| f["at"].as_i64().unwrap()).collect();
    assert_eq!(fire_times(&first), wanted);
    for (ours, theirs) in first["fires"].as_array().unwrap().iter().zip(expected) {
        let condition = &ours["conditions"][0];
        assert_close(
            "value",
            &condition["value"],
            theirs["value"].as_f64().unwrap(),
        );
        assert_close(
            "previous",
            &condition["previous"],
            theirs["previous"].as_f64().unwrap(),
        );
        assert_eq!(condition["compare_to"], 30.0);
        assert_eq!(condition["result"], true);
        assert_eq!(
            ours["bar_open_time"],
            rfc3339(theirs["bar_open_time"].as_i64().unwrap())
        );
    }
    assert_eq!(first["moments"], 60 * 24, "one moment per hourly close");
    assert_eq!(first["unknown"], 0, "the warm-up was read before the span");
    assert_eq!(first["price_model"], "last_1m_close");
    assert_eq!(first["fires_total"], expected.len());
    let candles = golden["closes"].as_array().unwrap().len();
    assert_eq!(
        first["series"],
        json!([{"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                "candles": candles, "from_store": 0, "fetched": candles}])
    );
    assert_eq!(first["gaps"], json!([]));
    let requests = binance_requests(&sim, KLINES);
    assert_eq!(requests, candles.div_ceil(1000), "1,000 candles a request");

    let (status, second) = backtest(&app, body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["fires"], first["fires"]);
    assert_eq!(second["series"][0]["from_store"], candles);
    assert_eq!(second["series"][0]["fetched"], 0);
    assert_eq!(
        binance_requests(&sim, KLINES),
        requests,
        "the second backtest asked Binance nothing"
    );
}
