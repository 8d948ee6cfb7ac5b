//! Faults with real processes: the binary, stopped at a fail
//! point and killed with SIGKILL, then another one started on the same Postgres and
//! Redis — after the claim (`every_time`, `once`, `once_per_bar_close`), after a channel
//! accepted, with a channel edited meanwhile — and a slow delivery of an old period
//! while a second replica starts. What arrives at a local recorder is counted against
//! what the strategies should have sent.

use std::time::Duration;

use market_sim::SimConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::process::{Service, base_vars, migrate};
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

/// A migrated scratch database and a pool on it.
async fn migrated() -> (ScratchDatabase, PgPool) {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    (database, pool)
}

/// What each fault test runs on: a migrated scratch database, the market simulator in
/// real time (the binary's clock and the market's agree) and a recorder of alerts.
struct Scene {
    database: ScratchDatabase,
    pool: PgPool,
    sim: market_sim::SimHandle,
    recorder: Recorder,
    address: std::net::SocketAddr,
}

impl Scene {
    async fn new() -> Self {
        let (database, pool) = migrated().await;
        let sim = market_sim::start(SimConfig::default()).await.unwrap();
        let (recorder, address) = Recorder::start().await;
        Self {
            database,
            pool,
            sim,
            recorder,
            address,
        }
    }
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

/// Waits for `line` in the service's log: up to 100 s, as a `1m` bar's close (the
/// `once_per_bar_close` test) may be a minute away, plus the start on a busy machine.
async fn logged(log: &std::path::Path, line: &str) {
    eventually(Duration::from_secs(100), line, || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.contains(line).then_some(())
    })
    .await;
}

fn settings(
    database: &ScratchDatabase,
    sim: &market_sim::SimHandle,
) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(&database.url, &redis_url());
    vars.push(("BINANCE_BASE_URL", sim.binance_url()));
    vars
}

/// Runs the binary with fail point `point` armed until it gets there, then kills it
/// with SIGKILL. Returns the unarmed settings and the log, for the restart.
async fn killed_at(
    point: &str,
    database: &ScratchDatabase,
    sim: &market_sim::SimHandle,
) -> (Vec<(&'static str, String)>, std::path::PathBuf) {
    let log = std::env::temp_dir().join(format!("monitoring-fault-{}.log", Uuid::new_v4()));
    let vars = settings(database, sim);
    let mut armed = vars.clone();
    armed.push(("MONITORING_FAIL_POINT", point.to_owned()));
    let first = Service::start(&armed, &log);
    logged(&log, "fail point reached").await;
    first.kill();
    (vars, log)
}

/// `monitoring_deliveries_ambiguous_total` of the service on `vars`' port, by channel.
async fn ambiguous(vars: &[(&str, String)]) -> Vec<String> {
    let scrape = reqwest::get(format!("http://127.0.0.1:{}/metrics", port(vars)))
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
    let Scene {
        database,
        pool,
        sim,
        recorder,
        address,
    } = Scene::new().await;
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
    let (vars, log) = killed_at("after_claim", &database, &sim).await;
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
    let second = Service::start(&vars, &log);
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
    second.kill();
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
    let Scene {
        database,
        pool,
        sim,
        recorder,
        address,
    } = Scene::new().await;
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]),
    )
    .await;
    let (vars, log) = killed_at("after_accept", &database, &sim).await;
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

    let second = Service::start(&vars, &log);
    eventually(Duration::from_secs(90), "the outcome recorded", || async {
        (statuses(&pool, id).await == ["delivered"]).then_some(())
    })
    .await;
    assert_eq!(
        ambiguous(&vars).await,
        ["monitoring_deliveries_ambiguous_total{channel=\"webhook\"} 1"],
        "the repeat is counted"
    );
    second.kill();
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

/// The dedup keys of `id`'s trigger logs whose every channel was delivered.
async fn delivered_keys(pool: &PgPool, id: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT dedup_key FROM strategy_trigger_logs
          WHERE strategy_id = $1
            AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(deliveries) d
                             WHERE d->>'status' <> 'delivered')
          ORDER BY triggered_at",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn killed_after_claiming_a_bar_close_that_bar_alerts_once_after_the_restart() {
    let (database, pool) = migrated().await;
    // Real time: the binary's clock and the simulator's agree; a 1m bar closes each minute.
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let id = strategy(
        &pool,
        "once_per_bar_close",
        json!([{"type": "webhook", "url": format!("http://{address}/bar"), "secret": "k"}]),
    )
    .await;
    sqlx::query("UPDATE strategies SET frequency = '1m', cooldown_seconds = 0 WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    // A price condition: its 1m bar closes at each minute boundary of its timer.
    let (vars, log) = killed_at("after_claim", &database, &sim).await;
    assert!(
        recorder.received("/bar").is_empty(),
        "nothing sent before the kill"
    );
    let killed: String =
        sqlx::query_scalar("SELECT dedup_key FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("the bar's trigger was claimed before the kill");

    let second = Service::start(&vars, &log);
    eventually(
        Duration::from_secs(90),
        "the killed bar's alert",
        || async {
            delivered_keys(&pool, id)
                .await
                .contains(&killed)
                .then_some(())
        },
    )
    .await;
    assert!(
        ambiguous(&vars).await.is_empty(),
        "nothing possibly sent twice"
    );
    let delivered = delivered_keys(&pool, id).await;
    second.kill();

    // Every bar the two processes claimed (the killed one and any closed since) arrived
    // once: one request per key, and every delivered key among them.
    let mut keys: Vec<String> = recorder
        .received("/bar")
        .iter()
        .map(|r| r.headers["x-idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    let received = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), received, "no bar alerted twice: {keys:?}");
    assert_eq!(
        keys.iter().filter(|k| **k == killed).count(),
        1,
        "the killed bar alerted once"
    );
    for key in &delivered {
        assert!(
            keys.contains(key),
            "{key} recorded delivered but never received"
        );
    }
    pool.close().await;
    database.drop_now().await;
}

/// Where the Telegram stand-in receives the bot `1:T`'s messages.
const SEND: &str = "/bot1:T/sendMessage";

/// The service's `MONITORING_PORT` in `vars`.
fn port(vars: &[(&str, String)]) -> String {
    vars.iter()
        .find(|(k, _)| *k == "MONITORING_PORT")
        .unwrap()
        .1
        .clone()
}

#[tokio::test]
async fn a_slow_delivery_of_an_old_period_is_sent_once_while_a_second_replica_starts() {
    let Scene {
        database,
        pool,
        sim,
        recorder,
        address,
    } = Scene::new().await;
    // Each answer takes 8 s (under the 10 s request timeout): the replica started
    // meanwhile runs its first resume pass while the message is in flight.
    recorder.delay(SEND, Duration::from_secs(8));
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "telegram", "chat_id": "424242"}]),
    )
    .await;
    sqlx::query("UPDATE strategies SET frequency = '1d' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let log = std::env::temp_dir().join(format!("monitoring-fault-{}.log", Uuid::new_v4()));
    let replica = |vars: &mut Vec<(&'static str, String)>| {
        vars.push(("MONITORING_API_KEY", TEST_KEY.to_owned()));
        vars.push(("TELEGRAM_API_URL", format!("http://{address}")));
        vars.push(("TELEGRAM_BOT_TOKEN", "1:T".to_owned()));
    };
    let (mut a_vars, mut b_vars) = (settings(&database, &sim), settings(&database, &sim));
    replica(&mut a_vars);
    replica(&mut b_vars);
    let a = Service::start(&a_vars, &log);
    let client = reqwest::Client::new();
    let ready = |vars: Vec<(&'static str, String)>| {
        let client = client.clone();
        async move {
            let url = format!("http://127.0.0.1:{}/ready", port(&vars));
            eventually(Duration::from_secs(40), "ready", || async {
                let answer = client.get(&url).send().await.ok()?;
                answer.status().is_success().then_some(())
            })
            .await;
        }
    };
    ready(a_vars.clone()).await;
    // Today's period began at 00:00 UTC: the claim comes hours after it.
    let ran = client
        .post(format!(
            "http://127.0.0.1:{}/internal/run/1d",
            port(&a_vars)
        ))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), 200);
    eventually(Duration::from_secs(20), "the message in flight", || async {
        (recorder.received(SEND).len() == 1).then_some(())
    })
    .await;
    let b = Service::start(&b_vars, &log);
    ready(b_vars.clone()).await;
    assert_eq!(statuses(&pool, id).await, ["pending"], "still in flight");
    eventually(Duration::from_secs(40), "the delivery recorded", || async {
        (statuses(&pool, id).await == ["delivered"]).then_some(())
    })
    .await;
    // Both replicas resumed meanwhile; the claiming replica's lease was alive throughout.
    assert_eq!(recorder.received(SEND).len(), 1, "exactly one message");
    assert!(ambiguous(&a_vars).await.is_empty());
    assert!(ambiguous(&b_vars).await.is_empty());
    a.kill();
    b.kill();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test]
async fn a_channel_edited_while_its_replica_was_dead_is_not_sent_to() {
    let Scene {
        database,
        pool,
        sim,
        recorder,
        address,
    } = Scene::new().await;
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/old")},
               {"type": "discord", "webhook_url": format!("http://{address}/kept")}]),
    )
    .await;
    let (vars, log) = killed_at("after_claim", &database, &sim).await;
    // The user points the Slack channel elsewhere while the claim waits to be resumed.
    sqlx::query(
        "UPDATE strategies SET channels = jsonb_set(channels, '{0,webhook_url}', to_jsonb($2::text)),
                updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(format!("http://{address}/new"))
    .execute(&pool)
    .await
    .unwrap();
    let second = Service::start(&vars, &log);
    eventually(
        Duration::from_secs(90),
        "the resumed claim settled",
        || async { (statuses(&pool, id).await == ["failed", "delivered"]).then_some(()) },
    )
    .await;
    second.kill();
    let error: String = sqlx::query_scalar(
        "SELECT deliveries->0->>'error' FROM strategy_trigger_logs WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(error, monitoring_service::trigger::CHANNEL_CHANGED);
    assert!(
        recorder.received("/old").is_empty(),
        "the claim was never sent there"
    );
    // What the resume sent went to the unchanged channel only; the new address gets
    // only alerts claimed after the edit (the cooldown of an hour allows none here).
    assert!(
        recorder.received("/new").is_empty(),
        "not the alert meant for /old"
    );
    assert_eq!(recorder.received("/kept").len(), 1);
    pool.close().await;
    database.drop_now().await;
}
