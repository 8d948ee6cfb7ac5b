//! Channel secrets live in Postgres only: after a service with its own Redis loaded,
//! evaluated and delivered a strategy with all five channel kinds, no key or value in
//! Redis holds any of them.

use market_sim::SimConfig;
use redis::AsyncCommands;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::own_services::OwnRedis;
use crate::support::recorder::Recorder;
use crate::support::trigger_apps::{btc_above_one, configure, run};
use crate::support::{TestApp, test_config};

/// Every key of the server with everything it holds, as text.
async fn everything(redis: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String)> {
    let keys: Vec<String> = redis.keys("*").await.unwrap();
    let mut all = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(redis)
            .await
            .unwrap();
        let value: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET")
                .arg(&key)
                .query_async(redis)
                .await
                .unwrap(),
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(redis)
                .await
                .unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(redis)
                .await
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(redis)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(redis)
                .await
                .unwrap(),
            "stream" => redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(redis)
                .await
                .unwrap(),
            other => panic!("a {other} at {key}"),
        };
        all.push((key, format!("{value:?}")));
    }
    all
}

#[sqlx::test]
async fn no_channel_secret_reaches_redis(pool: PgPool) {
    let own = OwnRedis::start().await;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let mark = Uuid::new_v4().simple().to_string();
    let chat_id = format!("-100{}", Uuid::new_v4().as_u128() % 10_000_000_000_000);
    let secrets = [
        chat_id.clone(),
        format!("slack{mark}"),
        format!("discord{mark}"),
        format!("mail{mark}"),
        format!("hook{mark}"),
        format!("secret{mark}"),
    ];
    let channels = json!([
        {"type": "telegram", "chat_id": secrets[0]},
        {"type": "slack", "webhook_url": format!("http://{address}/{}", secrets[1])},
        {"type": "discord", "webhook_url": format!("http://{address}/{}", secrets[2])},
        {"type": "email", "to": format!("{}@example.com", secrets[3])},
        {"type": "webhook", "url": format!("http://{address}/{}", secrets[4]), "secret": secrets[5]},
    ]);
    let (id, _) = crate::support::strategies::insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[btc_above_one()],
        None,
    )
    .await;
    configure(&pool, id, "every_time", channels, None).await;
    let (binance, telegram) = (sim.binance_url(), format!("http://{address}"));
    let config = test_config(
        false,
        &[
            ("REDIS_URL", own.url.as_str()),
            ("BINANCE_BASE_URL", &binance),
            ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
            ("TELEGRAM_API_URL", &telegram),
            ("TELEGRAM_BOT_TOKEN", "1:T"),
        ],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.wait_ready().await;
    let report = run(&app).await;
    assert_eq!(report["triggered"], 1);
    assert_eq!(
        recorder.received(&format!("/{}", secrets[4])).len(),
        1,
        "delivered"
    );
    // A dry run and the operator's view go through the same caches.
    let (status, _) = app
        .internal(reqwest::Method::POST, &format!("/internal/simulate/{id}"))
        .await;
    assert_eq!(status, 200);

    let client = redis::Client::open(own.url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let held = everything(&mut redis).await;
    assert!(
        held.iter()
            .any(|(key, _)| key.starts_with("monitoring:strategy:v2:")),
        "the strategy was cached: {:?}",
        held.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert!(
        held.iter().any(|(key, _)| key.contains("BTCUSDT")),
        "and its price"
    );
    for (key, value) in &held {
        for secret in &secrets {
            assert!(!key.contains(secret.as_str()), "{secret} in the key {key}");
            assert!(!value.contains(secret.as_str()), "{secret} under {key}");
        }
    }
    app.stop().await.unwrap();
}
