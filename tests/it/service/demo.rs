//! The run command's inbox: the simulator's stand-in for the Telegram Bot
//! API and for webhooks, which `scripts/dev.sh` points the demo's channels at. A batch
//! of the real service delivers to it through `TELEGRAM_API_URL` and a webhook, and
//! every message arrives once, as the service's notifier sent it.

use market_sim::{Inbox, SimConfig};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::insert_strategy;
use crate::support::{TEST_KEY, TestApp, test_config};

#[sqlx::test]
async fn a_batch_delivers_to_the_inbox_by_telegram_and_webhook(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let inbox = Inbox::start("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let (binance, telegram) = (sim.binance_url(), inbox.url());
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("TELEGRAM_API_URL", &telegram),
            ("TELEGRAM_BOT_TOKEN", "demo-bot-token"),
            ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    );
    let above_one = (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    );
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[above_one], None).await;
    let channels = json!([
        {"type": "telegram", "chat_id": "123456"},
        {"type": "webhook", "url": format!("{}/hook", inbox.url()), "secret": "demo-secret"},
    ]);
    sqlx::query("UPDATE strategies SET name = 'BTC above 1', channels = $2 WHERE id = $1")
        .bind(id)
        .bind(channels)
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.wait_ready().await;
    let response = app
        .client
        .post(app.url("/internal/run/1m"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.state.triggers.wait_for_deliveries().await;

    let received = inbox.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let chat = received.iter().find(|m| m.kind == "telegram").unwrap();
    assert_eq!(chat.to, "123456");
    assert!(chat.text.contains("BTC above 1"), "{}", chat.text);
    let hook = received.iter().find(|m| m.kind == "webhook").unwrap();
    assert_eq!(hook.to, "/hook");
    assert!(
        hook.idempotency_key
            .as_deref()
            .unwrap()
            .starts_with(&id.to_string())
    );
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT d->>'status' FROM strategy_trigger_logs, jsonb_array_elements(deliveries) d
          WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        ["delivered", "delivered"],
        "the inbox answered as Telegram does"
    );
    app.stop().await.unwrap();
}
