//! Faults with real processes: the binary, stopped at a fail point and killed with
//! SIGKILL, then another one started on the same Postgres and Redis. What arrives at a
//! local recorder is counted against what the strategies should have sent.

use std::process::{Child, Command};
use std::time::Duration;

use market_sim::SimConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::acceptance::start_service;
use crate::loader::insert_strategy;
use crate::support::recorder::Recorder;
use crate::support::{ScratchDatabase, eventually, redis_url};

/// A migrated scratch database and a pool on it.
async fn migrated() -> (ScratchDatabase, PgPool) {
    let database = ScratchDatabase::create().await;
    let migrated = Command::new(env!("CARGO_BIN_EXE_monitoring-service"))
        .arg("migrate")
        .env_clear()
        .env("POSTGRES_URL", &database.url)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let pool = PgPool::connect(&database.url).await.unwrap();
    (database, pool)
}

/// A 10 s strategy "BTCUSDT above 1" in `mode` (one alert an hour at most), to `url`.
async fn strategy(pool: &PgPool, mode: &str, channels: Value) -> Uuid {
    let above_one = (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    );
    let (id, _) = insert_strategy(pool, Uuid::new_v4(), &[above_one], None).await;
    sqlx::query(
        "UPDATE strategies SET frequency = '10s', trigger_mode = $2, cooldown_seconds = 3600,
                channels = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(mode)
    .bind(channels)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Waits for `line` in the service's log.
async fn logged(log: &std::path::Path, line: &str) {
    eventually(Duration::from_secs(40), line, || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.contains(line).then_some(())
    })
    .await;
}

fn kill(mut child: Child) {
    // SIGKILL: no shutdown, no lease released.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn settings(
    database: &ScratchDatabase,
    sim: &market_sim::SimHandle,
) -> Vec<(&'static str, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    vec![
        ("POSTGRES_URL", database.url.clone()),
        ("REDIS_URL", redis_url()),
        ("MONITORING_HOST", "127.0.0.1".to_owned()),
        ("MONITORING_PORT", port.to_string()),
        ("BINANCE_BASE_URL", sim.binance_url()),
        ("ENABLE_WEBSOCKETS", "false".to_owned()),
        ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
    ]
}

/// `monitoring_deliveries_ambiguous_total` of the service on `vars`' port, by channel.
async fn ambiguous(vars: &[(&str, String)]) -> Vec<String> {
    let port = &vars
        .iter()
        .find(|(k, _)| *k == "MONITORING_PORT")
        .unwrap()
        .1;
    let scrape = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    scrape
        .lines()
        .filter(|l| l.starts_with("monitoring_deliveries_ambiguous_total{"))
        .map(str::to_owned)
        .collect()
}

async fn statuses(pool: &PgPool, id: Uuid) -> Vec<String> {
    let deliveries: Value =
        sqlx::query_scalar("SELECT deliveries FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
    deliveries
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn killed_after_the_claim_and_before_the_send_each_alert_arrives_once() {
    let (database, pool) = migrated().await;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let every = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/every")}]),
    )
    .await;
    let once = strategy(
        &pool,
        "once",
        json!([{"type": "discord", "webhook_url": format!("http://{address}/once")},
               {"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]),
    )
    .await;
    let log = std::env::temp_dir().join(format!("monitoring-fault-{}.log", Uuid::new_v4()));
    let vars = settings(&database, &sim);
    let mut armed = vars.clone();
    armed.push(("MONITORING_FAIL_POINT", "after_claim".to_owned()));
    let first = start_service(&armed, &log);
    logged(&log, "fail point reached").await;
    kill(first);
    assert!(
        recorder.received("/every").is_empty(),
        "nothing was sent before the kill"
    );
    assert!(recorder.received("/once").is_empty());
    let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM strategy_trigger_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claimed, 2, "both triggers were claimed");

    // Restarted: the dead replica's lease lapses (30 s) and its deliveries are resumed.
    let second = start_service(&vars, &log);
    eventually(Duration::from_secs(90), "the resumed alerts", || async {
        (recorder.received("/every").len() == 1
            && recorder.received("/once").len() == 1
            && recorder.received("/hook").len() == 1)
            .then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "their outcomes recorded",
        || async {
            let done = statuses(&pool, every).await == ["delivered"]
                && statuses(&pool, once).await == ["delivered", "delivered"];
            done.then_some(())
        },
    )
    .await;
    assert!(
        ambiguous(&vars).await.is_empty(),
        "nothing had been sent before the kill: no possible duplicate"
    );
    kill(second);
    // Nothing is pending any more, so nothing can be sent again; the `once` strategy
    // stayed completed and the other is in its cooldown.
    assert_eq!(recorder.received("/every").len(), 1, "exactly once");
    assert_eq!(recorder.received("/once").len(), 1, "exactly once");
    let status: String = sqlx::query_scalar("SELECT status FROM strategies WHERE id = $1")
        .bind(once)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test]
async fn killed_after_a_channel_accepted_at_most_one_duplicate_with_the_same_key() {
    let (database, pool) = migrated().await;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]),
    )
    .await;
    let log = std::env::temp_dir().join(format!("monitoring-fault-{}.log", Uuid::new_v4()));
    let vars = settings(&database, &sim);
    let mut armed = vars.clone();
    armed.push(("MONITORING_FAIL_POINT", "after_accept".to_owned()));
    let first = start_service(&armed, &log);
    logged(&log, "fail point reached").await;
    kill(first);
    assert_eq!(
        recorder.received("/hook").len(),
        1,
        "accepted before the kill"
    );
    assert_eq!(
        statuses(&pool, id).await,
        ["pending"],
        "its outcome never written"
    );

    let second = start_service(&vars, &log);
    eventually(Duration::from_secs(90), "the outcome recorded", || async {
        (statuses(&pool, id).await == ["delivered"]).then_some(())
    })
    .await;
    assert_eq!(
        ambiguous(&vars).await,
        ["monitoring_deliveries_ambiguous_total{channel=\"webhook\"} 1"],
        "the repeat is counted"
    );
    kill(second);
    let hook = recorder.received("/hook");
    assert_eq!(
        hook.len(),
        2,
        "the one duplicate a crash after acceptance allows"
    );
    assert_eq!(
        hook[0].headers["x-idempotency-key"], hook[1].headers["x-idempotency-key"],
        "the receiver can drop it: the same idempotency key"
    );
    pool.close().await;
    database.drop_now().await;
}
