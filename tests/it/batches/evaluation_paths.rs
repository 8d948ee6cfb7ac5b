//! Batches and simulate share one evaluation: for the same strategy, stored state and
//! market data, the trigger a batch claims (its dedup key, the conditions and values
//! its snapshot records) and the state it stores are what simulate reported — for a
//! price cross over a remembered value, a bar mode on a timer batch, and a bar-close
//! strategy on its candle's close.

use std::sync::Arc;

use monitoring_service::market::{CandleClosed, ClosedVia, Interval, SeriesKey, Source};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::golden_market::{Golden, MINUTE, SYMBOL, golden_market, indicator, simulate};
use crate::support::market::mirrored_clock;
use crate::support::strategies::insert_strategy;
use crate::support::{TestApp, test_config};

/// The conditions of a simulate snapshot as a trigger snapshot records them.
fn as_facts(conditions: &Value) -> Vec<Value> {
    let mut facts: Vec<Value> = conditions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({
                "id": c["id"], "kind": c["kind"], "source": c["source"], "symbol": c["symbol"],
                "interval": c["interval"], "result": c["result"],
                "value": c["observed"]["value"], "previous": c["observed"]["previous"],
                "compare_to": c["observed"]["compare_to"],
                "subject": c["subject"], "relation": c["relation"],
                "compare_label": c["compare_label"],
            })
        })
        .collect();
    facts.sort_by_key(|c| c["id"].to_string());
    facts
}

/// The trigger log a batch wrote for `id`: its key and its conditions, by id.
async fn claimed(pool: &PgPool, id: Uuid) -> (String, Vec<Value>) {
    let (key, snapshot): (String, Value) = sqlx::query_as(
        "SELECT dedup_key, snapshot FROM strategy_trigger_logs WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conditions = snapshot["conditions"].as_array().unwrap().clone();
    conditions.sort_by_key(|c| c["id"].to_string());
    // The summary line is made from the rest (checked in the message's unit tests).
    for condition in &mut conditions {
        let summary = condition
            .as_object_mut()
            .unwrap()
            .remove("summary")
            .unwrap();
        let subject = condition["subject"].as_str().unwrap();
        assert!(summary.as_str().unwrap().starts_with(subject), "{summary}");
    }
    (key, conditions)
}

async fn stored_result(pool: &PgPool, id: Uuid) -> Option<bool> {
    sqlx::query_scalar("SELECT last_result FROM strategy_state WHERE strategy_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_batch_claims_and_stores_what_simulate_reported(pool: PgPool) {
    let golden = Golden::load();
    let (sim, start, n) = golden_market(&golden).await;
    let (sma, sma_before) = golden.last_two("sma", json!({"period": 20}), "value");

    // A price cross over the remembered value 0.5 (the price is far above 1), with an
    // indicator beside it.
    let (cross, cross_conditions) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[
            (
                "price_alert",
                json!({"source": "binance", "symbol": SYMBOL,
                                   "operator": "crosses_above", "value": 1.0}),
            ),
            indicator(
                json!({"indicator": "sma", "period": 20, "operator": "above",
                             "value": sma - 1.0}),
            ),
        ],
        None,
    )
    .await;
    sqlx::query(
        "INSERT INTO strategy_state (strategy_id, previous_values, last_result)
         VALUES ($1, $2, false)",
    )
    .bind(cross)
    .bind(json!({cross_conditions[0].to_string(): 0.5}))
    .execute(&pool)
    .await
    .unwrap();

    // A bar mode on the 1m timer: claimed under the current bar.
    let (per_bar, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[indicator(
            json!({"indicator": "rsi", "period": 14, "operator": "below", "value": 100}),
        )],
        None,
    )
    .await;
    sqlx::query("UPDATE strategies SET trigger_mode = 'once_per_bar' WHERE id = $1")
        .bind(per_bar)
        .execute(&pool)
        .await
        .unwrap();

    // A candle-close strategy whose SMA crosses between the last two closed candles.
    let (operator, level) = if sma > sma_before {
        ("crosses_above", (sma + sma_before) / 2.0)
    } else {
        ("crosses_below", (sma + sma_before) / 2.0)
    };
    let (on_close, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[indicator(
            json!({"indicator": "sma", "period": 20, "operator": operator, "value": level}),
        )],
        None,
    )
    .await;
    sqlx::query("UPDATE strategies SET frequency = 'candle_close' WHERE id = $1")
        .bind(on_close)
        .execute(&pool)
        .await
        .unwrap();

    let binance = sim.binance_url();
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("ENABLE_SCHEDULER", "false"),
        ],
    );
    let app = TestApp::spawn_with_clock(pool.clone(), config, mirrored_clock(&sim)).await;
    app.wait_ready().await;

    let mut simulated = Vec::new();
    for id in [cross, per_bar, on_close] {
        let (status, snapshot) = simulate(&app, &id.to_string()).await;
        assert_eq!(status, 200, "{snapshot}");
        assert_eq!(snapshot["would_trigger"], true, "{snapshot}");
        simulated.push(snapshot);
    }
    let bar = start + n * MINUTE;
    assert_eq!(simulated[0]["dedup_key"], format!("{cross}:at:{bar}"));
    assert_eq!(simulated[1]["dedup_key"], format!("{per_bar}:bar:{bar}"));
    // every_time on candle_close: keyed by the close of the last closed candle.
    let closed_bar = bar - MINUTE;
    assert_eq!(simulated[2]["dedup_key"], format!("{on_close}:at:{bar}"));
    let cross_price = simulated[0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "price_alert")
        .unwrap()["observed"]
        .clone();
    assert_eq!(cross_price["previous"], json!(0.5), "{cross_price}");

    let (status, report) = app
        .internal(reqwest::Method::POST, "/internal/run/1m")
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["triggered"], 2, "{report}");
    let close = CandleClosed {
        series: SeriesKey {
            source: Source::Binance,
            symbol: Arc::from(SYMBOL),
            interval: Interval::M1,
        },
        open_time_ms: closed_bar,
        close: *golden.closes.last().unwrap(),
        via: ClosedVia::Backfill,
    };
    let reports = app.state.batches.run_closes(&[close]).await.unwrap();
    assert_eq!(reports.iter().map(|r| r.triggered).sum::<usize>(), 1);
    app.state.triggers.wait_for_deliveries().await;

    for (id, snapshot) in [cross, per_bar, on_close].into_iter().zip(&simulated) {
        let (key, conditions) = claimed(&pool, id).await;
        assert_eq!(json!(key), snapshot["dedup_key"], "{id}");
        assert_eq!(conditions, as_facts(&snapshot["conditions"]), "{id}");
        assert_eq!(stored_result(&pool, id).await, Some(true), "{id}");
    }
    app.stop().await.unwrap();
}
