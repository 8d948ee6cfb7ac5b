//! A service wired to a market simulator and local receivers, configured to deliver:
//! the setup the trigger, delivery and secrets tests share.

use market_sim::SimHandle;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::{TEST_KEY, TestApp, test_config};

pub async fn app(pool: PgPool, sim: &SimHandle) -> TestApp {
    app_with(pool, sim, &[]).await
}

/// A test app on the simulator's Binance, allowed to notify local receivers.
pub async fn app_with(pool: PgPool, sim: &SimHandle, extra: &[(&str, &str)]) -> TestApp {
    let binance = sim.binance_url();
    let mut vars = vec![
        ("BINANCE_BASE_URL", binance.as_str()),
        ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
    ];
    vars.extend_from_slice(extra);
    let config = test_config(false, &vars);
    let app = TestApp::spawn_with(pool, config).await;
    app.wait_ready().await;
    app
}

pub async fn run(app: &TestApp) -> Value {
    run_frequency(app, "1m").await
}

/// `POST /internal/run/{frequency}` (200 expected), then waits for its deliveries.
pub async fn run_frequency(app: &TestApp, frequency: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/internal/run/{frequency}")))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report = response.json().await.unwrap();
    // Alerts go out in the background once claimed.
    app.state.triggers.wait_for_deliveries().await;
    report
}

pub async fn configure(
    pool: &PgPool,
    id: Uuid,
    mode: &str,
    channels: Value,
    template: Option<&str>,
) {
    sqlx::query(
        "UPDATE strategies SET trigger_mode = $2, channels = $3, message_template = $4,
                name = 'BTC strength', updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(mode)
    .bind(channels)
    .bind(template)
    .execute(pool)
    .await
    .unwrap();
}

pub fn btc_above_one() -> (&'static str, Value) {
    (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    )
}
