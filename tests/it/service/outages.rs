//! A running service (the binary) whose Postgres or Redis goes away for 30 s and comes
//! back (`pg_ctl stop`/`start`; `redis-server` killed and restarted), under a 10 s
//! strategy that alerts every period: the service stays up and says what is missing,
//! counts and records what failed, and delivers what follows — nothing twice.

use std::collections::BTreeSet;
use std::time::Duration;

use market_sim::SimConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use crate::support::own_services::{OwnPostgres, OwnRedis};
use crate::support::process::{Service, base_vars, migrate};
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

/// How long each dependency stays away.
const OUTAGE: Duration = Duration::from_secs(30);

/// "BTCUSDT above 1" every 10 s, every time, to the recorder's `/hook`.
async fn every_ten_seconds(pool: &PgPool, address: std::net::SocketAddr) -> Uuid {
    let above_one = (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    );
    let (id, _) = insert_strategy(pool, Uuid::new_v4(), &[above_one], None).await;
    sqlx::query(
        "UPDATE strategies SET frequency = '10s', trigger_mode = 'every_time',
                cooldown_seconds = 0, channels = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(json!([{"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]))
    .execute(pool)
    .await
    .unwrap();
    id
}

fn settings(postgres: &str, redis: &str, binance: String) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(postgres, redis);
    vars.push(("BINANCE_BASE_URL", binance));
    vars
}

/// `/ready`'s status and body.
async fn ready(service: &Service) -> (u16, Value) {
    let answer = reqwest::get(service.url("/ready")).await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// The value of the counter line starting with `series` in `/metrics` (0 if absent).
async fn counter(service: &Service, series: &str) -> u64 {
    service
        .metric_lines()
        .await
        .iter()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// The idempotency keys of what `/hook` received: each must come once.
fn distinct_keys(recorder: &Recorder) -> BTreeSet<String> {
    let received = recorder.received("/hook");
    let keys: BTreeSet<String> = received
        .iter()
        .map(|r| r.headers["x-idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), received.len(), "an alert arrived twice");
    keys
}

fn no_panic(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!text.contains("panicked"), "a panic in {}", log.display());
}

#[tokio::test]
async fn postgres_stopped_for_30_seconds_under_running_batches() {
    let postgres = OwnPostgres::start();
    migrate(&postgres.url);
    let pool = PgPool::connect(&postgres.url).await.unwrap();
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    every_ten_seconds(&pool, address).await;
    pool.close().await;
    let log = std::env::temp_dir().join(format!("monitoring-outage-{}.log", Uuid::new_v4()));
    let mut service = Service::start(
        &settings(&postgres.url, &redis_url(), sim.binance_url()),
        &log,
    );
    eventually(Duration::from_secs(60), "the first alert", || async {
        (!recorder.received("/hook").is_empty()).then_some(())
    })
    .await;

    postgres.stop();
    let stopped = Instant::now();
    eventually(
        Duration::from_secs(20),
        "/ready naming postgres",
        || async {
            let (status, body) = ready(&service).await;
            (status == 503 && body["failing"] == json!(["postgres"])).then_some(())
        },
    )
    .await;
    let failed = r#"monitoring_batches_total{frequency="10s",status="failed"}"#;
    eventually(
        Duration::from_secs(40),
        "two failed batches counted",
        || async { (counter(&service, failed).await >= 2).then_some(()) },
    )
    .await;
    // The outage lasts its full length whatever the checks took.
    tokio::time::sleep_until(stopped + OUTAGE).await;
    assert!(service.is_running(), "the service stayed up");
    assert_eq!(
        reqwest::get(service.url("/health")).await.unwrap().status(),
        200
    );

    postgres.start_again();
    let back = std::time::Instant::now();
    eventually(Duration::from_secs(60), "/ready again", || async {
        (ready(&service).await.0 == 200).then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "alerts after recovery", || async {
        let after = recorder
            .received("/hook")
            .iter()
            .filter(|r| r.at > back)
            .count();
        (after >= 2).then_some(())
    })
    .await;
    let pool = PgPool::connect(&postgres.url).await.unwrap();
    // Every failed batch is in the ledger, written once Postgres answered.
    eventually(
        Duration::from_secs(20),
        "the failed batches in the ledger",
        || async {
            let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM monitor_ledger WHERE name = 'batch:10s' AND status = 'failed'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
            (rows as u64 == counter(&service, failed).await).then_some(())
        },
    )
    .await;
    // The pool recovered: batches keep succeeding, and every claim was delivered once.
    let ok_after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM monitor_ledger
          WHERE name = 'batch:10s' AND status = 'ok' AND started_at > now() - interval '25 seconds'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ok_after >= 2, "{ok_after} ok batches since recovery");
    service.kill();
    let claimed: Vec<String> = sqlx::query_scalar("SELECT dedup_key FROM strategy_trigger_logs")
        .fetch_all(&pool)
        .await
        .unwrap();
    let received = distinct_keys(&recorder);
    for key in &received {
        assert!(claimed.contains(key), "{key} sent without a claim");
    }
    // No period lost: the periods missed while Postgres was away were evaluated once it
    // came back, in order, each under its own key, and marked late.
    let mut periods: Vec<i64> = claimed
        .iter()
        .filter_map(|key| key.rsplit(":at:").next()?.parse().ok())
        .collect();
    periods.sort_unstable();
    let gaps: Vec<(i64, i64)> = periods
        .windows(2)
        .filter(|w| w[1] - w[0] != 10_000)
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(gaps.is_empty(), "periods missing between {gaps:?}");
    let late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM strategy_trigger_logs WHERE (snapshot->>'late')::boolean",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(late >= 2, "{late} trigger logs marked late");
    let late_sent = recorder
        .received("/hook")
        .iter()
        .filter(|r| r.body["late"] == json!(true))
        .count();
    assert!(late_sent >= 2, "{late_sent} late events sent");
    no_panic(&log);
    pool.close().await;
}

#[tokio::test]
async fn redis_killed_for_30_seconds_under_running_batches() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    let mut redis = OwnRedis::start().await;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    every_ten_seconds(&pool, address).await;
    let log = std::env::temp_dir().join(format!("monitoring-outage-{}.log", Uuid::new_v4()));
    let mut service = Service::start(
        &settings(&database.url, &redis.url, sim.binance_url()),
        &log,
    );
    eventually(Duration::from_secs(60), "the first alert", || async {
        (!recorder.received("/hook").is_empty()).then_some(())
    })
    .await;

    redis.kill();
    let killed = Instant::now();
    let during = std::time::Instant::now();
    eventually(Duration::from_secs(20), "/ready naming redis", || async {
        let (status, body) = ready(&service).await;
        (status == 503 && body["failing"] == json!(["redis"])).then_some(())
    })
    .await;
    let status = |service: &Service| {
        let url = service.url("/internal/status");
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .header("X-MONITORING-KEY", TEST_KEY)
                .send()
                .await
                .unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };
    eventually(Duration::from_secs(20), "status saying so", || async {
        let body = status(&service).await;
        (body["redis"] == "unreachable"
            && body["live_reload"]["following"] == false
            && body["live_reload"]["polling_postgres"] == true)
            .then_some(())
    })
    .await;
    // Batches go on without the shared cache: alerts keep coming.
    eventually(
        Duration::from_secs(30),
        "alerts during the outage",
        || async {
            let count = recorder
                .received("/hook")
                .iter()
                .filter(|r| r.at > during)
                .count();
            (count >= 2).then_some(())
        },
    )
    .await;
    // A strategy added meanwhile is found by the fallback's reading of the table,
    // while Redis is still away (it is restarted below).
    let added = every_ten_seconds(&pool, address).await;
    let fired = |id: Uuid| {
        let pool = pool.clone();
        async move {
            let fired: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM strategy_trigger_logs WHERE strategy_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
            (fired > 0).then_some(())
        }
    };
    eventually(
        Duration::from_secs(40),
        "the added strategy alerting",
        || fired(added),
    )
    .await;
    tokio::time::sleep_until(killed + OUTAGE).await;
    assert!(service.is_running(), "the service stayed up");

    redis.start_again().await;
    eventually(Duration::from_secs(30), "following again", || async {
        let body = status(&service).await;
        (body["redis"] == "connected"
            && body["live_reload"]["following"] == true
            && body["live_reload"]["polling_postgres"] == false
            && ready(&service).await.0 == 200)
            .then_some(())
    })
    .await;

    // Live reload follows Redis again: a strategy announced now is loaded at once.
    let announced = every_ten_seconds(&pool, address).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("strategy:updated")
        .arg(json!({"strategy_id": announced, "action": "upsert"}).to_string())
        .query_async(&mut connection)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "the announced strategy loaded",
        || async {
            let body = reqwest::Client::new()
                .get(service.url(&format!("/internal/strategies/{announced}")))
                .header("X-MONITORING-KEY", TEST_KEY)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            (body["loaded"] == true).then_some(())
        },
    )
    .await;
    service.kill();
    // Nothing lost, nothing twice: every claimed trigger was delivered exactly once.
    let delivered: Vec<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM strategy_trigger_logs
          WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(deliveries) d
                             WHERE d->>'status' <> 'delivered')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let received = distinct_keys(&recorder);
    for key in &delivered {
        assert!(
            received.contains(key),
            "{key} recorded delivered, never received"
        );
    }
    no_panic(&log);
    pool.close().await;
    database.drop_now().await;
}
