//! The trigger modes carry from moment to moment as they do live: a cooldown spaces
//! `every_time` fires, `once` fires once, `on_rising_edge` fires on edges only — each
//! counted where it suppressed a true evaluation.

use serde_json::{Value, json};
use sqlx::PgPool;

use super::{app_on, backtest, draft, fire_times, rfc3339, scripted_sim};

const MINUTE: i64 = 60_000;

fn above_100() -> Value {
    json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 100})
}

/// A 1m path from `start`: the close of the minute ending at `start + i` minutes is
/// `price(i)`. Answers the simulator and the span `[start + 10m, start + 70m)`.
async fn minutes(price: impl Fn(i64) -> f64) -> (market_sim::SimHandle, i64, i64) {
    let start = crate::support::market::hour(50);
    let points: Vec<f64> = (0..100).map(price).collect();
    let sim = scripted_sim(
        start + 80 * MINUTE + 30_000,
        "BTCUSDT",
        start,
        MINUTE,
        points,
    )
    .await;
    (sim, start + 10 * MINUTE, start + 70 * MINUTE)
}

async fn run(
    sim: &market_sim::SimHandle,
    pool: PgPool,
    strategy: Value,
    from: i64,
    to: i64,
) -> Value {
    let app = app_on(pool, sim, &[]).await;
    let (status, report) = backtest(
        &app,
        json!({"strategy": strategy, "from": rfc3339(from), "to": rfc3339(to)}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["moments"], 60);
    report
}

#[sqlx::test]
async fn every_time_fires_as_often_as_its_cooldown_allows(pool: PgPool) {
    let (sim, from, to) = minutes(|_| 110.0).await;
    let strategy = draft("1m", "every_time", 300, "price_alert", above_100());
    let report = run(&sim, pool, strategy, from, to).await;
    let expected: Vec<i64> = (0..12).map(|k| from + k * 5 * MINUTE).collect();
    assert_eq!(fire_times(&report), expected, "every 300 s, from the first");
    assert_eq!(report["suppressed"]["cooldown"], 60 - 12);
    let fire = &report["fires"][0]["conditions"][0];
    assert_eq!(
        (fire["value"].as_f64(), fire["compare_to"].as_f64()),
        (Some(110.0), Some(100.0))
    );
}

#[sqlx::test]
async fn once_fires_once(pool: PgPool) {
    let (sim, from, to) = minutes(|_| 110.0).await;
    let strategy = draft("1m", "once", 0, "price_alert", above_100());
    let report = run(&sim, pool, strategy, from, to).await;
    assert_eq!(fire_times(&report), [from]);
    assert_eq!(report["suppressed"]["already_triggered"], 59);
}

#[sqlx::test]
async fn a_rising_edge_fires_on_edges_only(pool: PgPool) {
    // Above 100 for three minutes, below for two, over and over.
    let (sim, from, to) = minutes(|i| if i % 5 < 3 { 110.0 } else { 90.0 }).await;
    let strategy = draft("1m", "on_rising_edge", 0, "price_alert", above_100());
    let report = run(&sim, pool, strategy, from, to).await;
    // The first moment (i = 10) is true with nothing before it; then every i ≡ 0 mod 5.
    let expected: Vec<i64> = (0..12).map(|k| from + k * 5 * MINUTE).collect();
    assert_eq!(fire_times(&report), expected);
    assert_eq!(report["suppressed"]["not_rising_edge"], 12 * 2);
    assert_eq!(report["suppressed"]["cooldown"], 0);
}

#[sqlx::test]
async fn a_percent_change_reads_the_price_a_window_ago_from_the_minutes(pool: PgPool) {
    // One dollar a minute: over 5 minutes the change is 5 / (95 + i) %, above 4 % until
    // the close of minute 29.
    let (sim, from, to) = minutes(|i| 100.0 + i as f64).await;
    let change = json!({"source": "binance", "symbol": "BTCUSDT",
                        "operator": "pct_change_above", "value": 4, "window": "5m"});
    let strategy = draft("1m", "every_time", 0, "price_alert", change);
    let report = run(&sim, pool, strategy, from, to).await;
    let expected: Vec<i64> = (0..20).map(|k| from + k * MINUTE).collect();
    assert_eq!(fire_times(&report), expected);
    let first = &report["fires"][0]["conditions"][0];
    assert_eq!(
        first["previous"], 105.0,
        "the price at 10:05, five minutes before"
    );
    let value = first["value"].as_f64().unwrap();
    assert!((value - 5.0 / 105.0 * 100.0).abs() < 1e-9, "{value}");
}
