//! Fixed indicator windows: RSI, EMA, MACD and ATR of one strategy read the same to the
//! last bit alone on their series, once an unrelated SMA(900) strategy makes the cache
//! hold a thousand candles of it, on a second replica, in simulate and in the trigger a
//! batch claims.

use std::collections::BTreeMap;

use monitoring_service::market::{Interval, SeriesKey, Source};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::market::{frozen_sim, hour, mirrored_clock};
use crate::support::strategies::insert_strategy;
use crate::support::{TestApp, test_config};

/// A symbol of this run's own: the shared Redis never holds its candles from an
/// earlier run.
fn own_symbol() -> String {
    format!(
        "W{}USDT",
        Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    )
}

fn on_series(symbol: &str, params: Value) -> (&'static str, Value) {
    let mut params = params;
    let object = params.as_object_mut().unwrap();
    object.insert("source".into(), json!("binance"));
    object.insert("symbol".into(), json!(symbol));
    object.insert("interval".into(), json!("1m"));
    ("technical_indicator", params)
}

/// Each condition's value and previous value (what crosses compare), by condition id,
/// as exact bits: from a simulate snapshot (`observed`) or a trigger snapshot.
fn bits(conditions: &Value) -> BTreeMap<String, [u64; 2]> {
    conditions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let observed = if c["observed"].is_object() {
                &c["observed"]
            } else {
                c
            };
            let read = |field: &str| {
                observed[field]
                    .as_f64()
                    .unwrap_or_else(|| panic!("no {field} in {c}"))
                    .to_bits()
            };
            let id = c["id"].as_str().unwrap().to_owned();
            (id, [read("value"), read("previous")])
        })
        .collect()
}

async fn simulated(app: &TestApp, id: Uuid) -> BTreeMap<String, [u64; 2]> {
    let (status, snapshot) = app
        .internal(reqwest::Method::POST, &format!("/internal/simulate/{id}"))
        .await;
    assert_eq!(status, 200, "{snapshot}");
    bits(&snapshot["conditions"])
}

#[sqlx::test]
async fn indicators_read_the_same_bits_alone_beside_a_long_one_on_another_replica_and_in_simulate(
    pool: PgPool,
) {
    let now = hour(95) + 20_000;
    let symbol = own_symbol();
    let sim = frozen_sim(now, std::slice::from_ref(&symbol)).await;
    let (watched, conditions) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[
            on_series(&symbol, json!({"indicator": "rsi", "period": 14, "operator": "above", "value": 0})),
            on_series(&symbol, json!({"indicator": "ema", "period": 20, "operator": "above", "value": 0})),
            on_series(&symbol, json!({"indicator": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "histogram",
                             "operator": "above", "value": -1e12}),
            ),
            on_series(&symbol, json!({"indicator": "atr", "period": 14, "operator": "above", "value": 0})),
        ],
        None,
    )
    .await;
    let binance = sim.binance_url();
    let config = || {
        test_config(
            true,
            &[
                ("BINANCE_BASE_URL", &binance),
                ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
            ],
        )
    };
    let first = TestApp::spawn_with_clock(pool.clone(), config(), mirrored_clock(&sim)).await;
    first.wait_ready().await;
    let alone = simulated(&first, watched).await;
    assert_eq!(alone.len(), conditions.len(), "{alone:?}");
    let series = SeriesKey {
        source: Source::Binance,
        symbol: symbol.as_str().into(),
        interval: Interval::M1,
    };
    let held_alone = first.state.market.klines().get(&series).unwrap().len();

    // An unrelated strategy that needs 900 candles of the same series.
    insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[on_series(
            &symbol,
            json!({"indicator": "sma", "period": 900, "operator": "above", "value": 0}),
        )],
        None,
    )
    .await;
    let (status, _) = first
        .internal(reqwest::Method::POST, "/internal/reload-strategies")
        .await;
    assert_eq!(status, 200);
    let (status, report) = first
        .internal(reqwest::Method::POST, "/internal/run/1m")
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["triggered"], 2, "{report}");
    first.state.triggers.wait_for_deliveries().await;
    let held_beside = first.state.market.klines().get(&series).unwrap().len();
    assert!(
        held_alone < 900 && held_beside >= 900,
        "the cache grew from {held_alone} to {held_beside} candles"
    );
    let beside = simulated(&first, watched).await;
    let snapshot: Value =
        sqlx::query_scalar("SELECT snapshot FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(watched)
            .fetch_one(&pool)
            .await
            .unwrap();
    let claimed = bits(&snapshot["conditions"]);

    let second = TestApp::spawn_with_clock(pool.clone(), config(), mirrored_clock(&sim)).await;
    second.wait_ready().await;
    let on_second = simulated(&second, watched).await;

    assert_eq!(beside, alone, "beside SMA(900) as alone");
    assert_eq!(claimed, alone, "the batch's trigger as simulate");
    assert_eq!(on_second, alone, "the second replica as the first");
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}
