//! `POST /internal/simulate/{id}`: a dry run on the simulator's candles. The observed
//! indicator values are TA-Lib's (the golden vectors, on a path scripted from the
//! golden candles), the decision is the batch's, and nothing is written or sent.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::golden_market::{
    Golden, MINUTE, SYMBOL, assert_close, golden_market, indicator, simulate,
};
use crate::support::market::mirrored_clock;
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{TestApp, test_config};

const TOKEN: &str = "123456:SIMULATE-TOKEN";

/// Every table a batch or a trigger writes: row counts, and the strategies' and
/// states' full contents.
async fn fingerprint(pool: &PgPool) -> Vec<String> {
    let mut prints = Vec::new();
    for query in [
        "SELECT count(*)::text FROM strategy_trigger_logs",
        // Batches' rows: the monitors (expiry, retention, …) write their own meanwhile.
        "SELECT count(*)::text FROM monitor_ledger WHERE name LIKE 'batch:%'",
        "SELECT count(*)::text FROM strategy_state",
        "SELECT coalesce(md5(string_agg(s::text, ',' ORDER BY id)), '') FROM strategies s",
        "SELECT coalesce(md5(string_agg(s::text, ',' ORDER BY strategy_id)), '') FROM strategy_state s",
    ] {
        prints.push(sqlx::query_scalar(query).fetch_one(pool).await.unwrap());
    }
    prints
}

#[sqlx::test]
async fn simulate_reports_talib_values_and_the_decision_and_writes_nothing(pool: PgPool) {
    let golden = Golden::load();
    let (sim, start, n) = golden_market(&golden).await;
    let (telegram, address) = Recorder::start().await;

    let (sma, sma_before) = golden.last_two("sma", json!({"period": 20}), "value");
    let (wma, _) = golden.last_two("wma", json!({"period": 30}), "value");
    let (upper, _) = golden.last_two("bbands", json!({"period": 20, "stddev": 2.0}), "upper");
    let (rsi_golden, _) = golden.last_two("rsi", json!({"period": 14}), "value");
    let conditions = [
        indicator(
            json!({"indicator": "sma", "period": 20, "operator": "above", "value": sma - 1.0}),
        ),
        indicator(
            json!({"indicator": "wma", "period": 30, "operator": "below", "value": wma + 1.0}),
        ),
        indicator(
            json!({"indicator": "bbands", "period": 20, "stddev": 2.0, "output": "upper",
                         "operator": "above", "value": upper - 1.0}),
        ),
        indicator(json!({"indicator": "rsi", "period": 14, "operator": "below", "value": 100})),
    ];
    let (id, condition_ids) = insert_strategy(&pool, Uuid::new_v4(), &conditions, None).await;
    sqlx::query(
        "UPDATE strategies SET cooldown_seconds = 300,
                channels = '[{\"type\": \"telegram\", \"chat_id\": \"987654\"}]'
          WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let (paused, _) = insert_strategy(&pool, Uuid::new_v4(), &conditions[..1], None).await;
    sqlx::query("UPDATE strategies SET status = 'paused' WHERE id = $1")
        .bind(paused)
        .execute(&pool)
        .await
        .unwrap();
    let (broken, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &conditions[..1],
        Some(json!({"xor": []})),
    )
    .await;

    let (binance, telegram_url) = (sim.binance_url(), format!("http://{address}"));
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("TELEGRAM_API_URL", &telegram_url),
            ("TELEGRAM_BOT_TOKEN", TOKEN),
        ],
    );
    let app = TestApp::spawn_with_clock(pool.clone(), config, mirrored_clock(&sim)).await;
    app.wait_ready().await;
    let before = fingerprint(&pool).await;

    let (status, snapshot) = simulate(&app, &id.to_string()).await;
    assert_eq!(status, 200, "{snapshot}");
    assert_eq!(snapshot["strategy_id"], json!(id));
    assert_eq!(snapshot["status"], "active");
    assert_eq!(snapshot["result"], true, "{snapshot}");
    assert_eq!(snapshot["would_trigger"], true, "{snapshot}");
    assert_eq!(snapshot["suppressed_by"], Value::Null);
    let due = (start + n * MINUTE) / MINUTE * MINUTE;
    assert_eq!(snapshot["dedup_key"], format!("{id}:at:{due}"));
    assert!(snapshot["duration_us"].as_u64().is_some(), "{snapshot}");
    // Conditions come in the strategy's order (by id): find each by its id.
    let reported = snapshot["conditions"].as_array().unwrap();
    assert_eq!(reported.len(), 4);
    let of = |i: usize| -> &Value {
        let condition = reported
            .iter()
            .find(|c| c["id"] == json!(condition_ids[i]))
            .unwrap_or_else(|| panic!("condition {i} missing: {snapshot}"));
        &condition["observed"]
    };
    let observed: Vec<&Value> = (0..4).map(of).collect();
    // Non-recursive indicators depend only on their window: exactly TA-Lib's values.
    assert_close("sma(20)", &observed[0]["value"], sma);
    assert_close("sma(20) previous", &observed[0]["previous"], sma_before);
    assert_close("wma(30)", &observed[1]["value"], wma);
    assert_close("bbands upper", &observed[2]["value"], upper);
    // RSI is recursive: the engine computes it on its last 116 candles (the spec's
    // warm-up), which is TA-Lib on those candles...
    let window = &golden.closes[golden.closes.len() - 116..];
    let talib_on_window = monitoring_service::indicators::rsi(window, 14);
    assert_close(
        "rsi(14)",
        &observed[3]["value"],
        *talib_on_window.last().unwrap(),
    );
    // ...and within 0.01 of TA-Lib's on all 600.
    let rsi = observed[3]["value"].as_f64().unwrap();
    assert!((rsi - rsi_golden).abs() < 0.01, "{rsi} vs {rsi_golden}");
    assert_eq!(observed[0]["compare_to"], json!(sma - 1.0));
    let first = reported
        .iter()
        .find(|c| c["id"] == json!(condition_ids[0]))
        .unwrap();
    assert_eq!(
        (
            first["kind"].clone(),
            first["source"].clone(),
            first["symbol"].clone()
        ),
        (
            json!("technical_indicator"),
            json!("binance"),
            json!(SYMBOL)
        )
    );
    assert_eq!(first["interval"], "1m");
    assert_eq!(
        first["bar_open_time"],
        json!(chrono::DateTime::from_timestamp_millis(start + (n - 1) * MINUTE).unwrap())
    );
    let text = snapshot.to_string();
    for secret in ["987654", "SIMULATE-TOKEN", "telegram"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Nothing written, nothing sent: the same answer again.
    assert_eq!(fingerprint(&pool).await, before);
    let path = format!("/bot{TOKEN}/sendMessage");
    assert_eq!(telegram.received(&path).len(), 0);
    let (_, again) = simulate(&app, &id.to_string()).await;
    assert_eq!(
        (
            again["would_trigger"].clone(),
            again["conditions"][3]["observed"].clone()
        ),
        (json!(true), snapshot["conditions"][3]["observed"].clone())
    );

    // Cooling down after a trigger 10 s ago: true, but suppressed by the cooldown.
    sqlx::query(
        "INSERT INTO strategy_state (strategy_id, last_triggered_at, trigger_count)
         VALUES ($1, $2, 1)",
    )
    .bind(id)
    .bind(chrono::DateTime::from_timestamp_millis(due - 10_000).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let before = fingerprint(&pool).await;
    let (_, cooling) = simulate(&app, &id.to_string()).await;
    assert_eq!(
        (
            cooling["result"].clone(),
            cooling["would_trigger"].clone(),
            cooling["suppressed_by"].clone()
        ),
        (json!(true), json!(false), json!("cooldown"))
    );
    assert_eq!(fingerprint(&pool).await, before);

    let (status, answer) = simulate(&app, &paused.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["status"].clone(),
            answer["result"].clone(),
            answer["suppressed_by"].clone()
        ),
        (json!("paused"), json!(true), json!("inactive"))
    );
    assert_close(
        "paused sma(20)",
        &answer["conditions"][0]["observed"]["value"],
        sma,
    );

    let (status, answer) = simulate(&app, &broken.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["status"].clone(),
            answer["would_trigger"].clone(),
            answer["suppressed_by"].clone()
        ),
        (json!("error"), json!(false), json!("invalid"))
    );
    assert!(
        answer["error"].as_str().unwrap().starts_with("logic_tree"),
        "{answer}"
    );

    let (status, answer) = simulate(&app, &Uuid::new_v4().to_string()).await;
    assert_eq!((status, answer["error"].clone()), (404, json!("not_found")));
    let (status, answer) = simulate(&app, "not-a-uuid").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(telegram.received(&path).len(), 0);
    assert_eq!(fingerprint(&pool).await, before);
    app.stop().await.unwrap();
}
