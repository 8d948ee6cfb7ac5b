//! Live and backtest agree: strategies run live by the batches over simulated time,
//! minute by minute, fire at exactly the moments a backtest of that span reports.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{backtest, fire_times, rfc3339, scripted_sim};
use crate::support::market::{hour, set_time};
use crate::support::strategies::insert_strategy;
use crate::support::trigger_apps::run_frequency;
use crate::support::{TestApp, test_config};
use monitoring_service::market::Clock;

const MINUTE: i64 = 60_000;

async fn set_mode(pool: &PgPool, id: Uuid, mode: &str, cooldown: i32) {
    sqlx::query("UPDATE strategies SET trigger_mode = $2, cooldown_seconds = $3 WHERE id = $1")
        .bind(id)
        .bind(mode)
        .bind(cooldown)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn strategies_run_live_fire_at_the_moments_their_backtest_reports(pool: PgPool) {
    let start = hour(80);
    // A 1m path with a slow and a fast wave: RSI dips, the price crosses 100 often.
    let points: Vec<f64> = (0..400)
        .map(|i| {
            let x = i as f64;
            100.0 * (1.0 + 0.02 * (x / 6.0).sin() + 0.008 * (x / 1.7).sin())
        })
        .collect();
    let first = start + 130 * MINUTE;
    let sim = scripted_sim(first, "BTCUSDT", start, MINUTE, points).await;

    let (rsi, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[(
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1m",
                  "indicator": "rsi", "period": 14, "operator": "below", "value": 45}),
        )],
        None,
    )
    .await;
    set_mode(&pool, rsi, "every_time", 180).await;
    let (edge, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[
            ("price_alert", json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 100})),
            ("technical_indicator",
             json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1m", "indicator": "ema",
                    "period": 9, "operator": "above", "compare_to": {"indicator": "sma", "period": 21}})),
        ],
        None,
    )
    .await;
    set_mode(&pool, edge, "on_rising_edge", 0).await;
    let cross = {
        let (id, _) = insert_strategy(
            &pool,
            Uuid::new_v4(),
            &[("price_alert", json!({"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_below", "value": 99}))],
            None,
        )
        .await;
        set_mode(&pool, id, "every_time", 0).await;
        id
    };

    let clock = Clock::manual(first);
    let binance = sim.binance_url();
    let config = test_config(false, &[("BINANCE_BASE_URL", binance.as_str())]);
    let app = TestApp::spawn_with_clock(pool.clone(), config, clock.clone()).await;
    app.wait_ready().await;
    for i in 0..90 {
        set_time(&sim, &clock, first + i * MINUTE);
        run_frequency(&app, "1m").await;
    }
    set_time(&sim, &clock, first + 90 * MINUTE);

    for id in [rsi, edge, cross] {
        let live: Vec<i64> = sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT triggered_at FROM strategy_trigger_logs WHERE strategy_id = $1 ORDER BY triggered_at",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.timestamp_millis())
        .collect();
        assert!(live.len() >= 3, "{id}: the path makes it fire: {live:?}");
        let (status, report) = backtest(
            &app,
            json!({"strategy_id": id, "from": rfc3339(first), "to": rfc3339(first + 90 * MINUTE)}),
        )
        .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["moments"], 90);
        assert_eq!(
            fire_times(&report),
            live,
            "{id}: backtest and live fired alike"
        );
    }
}
