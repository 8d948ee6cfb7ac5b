//! Platform health against the real binary when things go away: its own Postgres
//! stopped for a while (the service stays up, reports CRITICAL naming postgres, then OK
//! again), its own Redis killed and restarted (CRITICAL, the `dependency_down` alert
//! after two cycles and resolved after two good ones, events published again), and
//! the replica running the cycle killed (another takes the lease over and the
//! snapshots go on).

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::own_services::{OwnPostgres, OwnRedis};
use crate::support::process::{Service, base_vars, migrate};
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

/// A healthy service at `/ok` and Binance's `/api/v3/ping`.
async fn healthy_listener() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/api/v3/ping", get(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// The settings of a replica checking every `interval` seconds, with one critical
/// service (`backend`, or `marker` in a test that must tell its snapshots from other
/// tests' on a shared Redis) besides its own dependencies.
fn settings(
    postgres: &str,
    redis: &str,
    address: std::net::SocketAddr,
    interval: &str,
    marker: &str,
) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(postgres, redis);
    vars.retain(|(key, _)| *key != "HEALTH_CHECK_INTERVAL");
    vars.extend([
        ("HEALTH_CHECK_INTERVAL", interval.to_owned()),
        ("HEALTH_CHECK_TIMEOUT_MS", "1000".to_owned()),
        ("BINANCE_BASE_URL", format!("http://{address}")),
        (
            "HEALTH_TARGETS",
            json!([{"name": marker, "url": format!("http://{address}/ok"), "critical": true}])
                .to_string(),
        ),
    ]);
    vars
}

fn log_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("monitoring-health-{}.log", Uuid::new_v4()))
}

/// `/internal/health/system` of `service`, when it answers 200.
async fn system(service: &Service) -> Option<Value> {
    let answer = reqwest::Client::new()
        .get(service.url("/internal/health/system"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .ok()?;
    (answer.status() == 200).then_some(())?;
    answer.json().await.ok()
}

/// Waits until `service` reports `status` with `name` (a target) in `check_status`.
async fn reported(service: &Service, status: &str, name: &str, check_status: &str) -> Value {
    let what = format!("{status} with {name} {check_status}");
    eventually(Duration::from_secs(60), &what, || async {
        let body = system(service).await?;
        (body["status"] == status && body["checks"][name]["status"] == check_status).then_some(body)
    })
    .await
}

/// The next snapshot published on `health.snapshot_updated` at `url` that has the
/// `marker` target (other tests' replicas publish on a shared Redis too).
async fn next_published(url: &str, marker: &str) -> Value {
    let mut pubsub = redis::Client::open(url)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe("health.snapshot_updated").await.unwrap();
    let mut messages = pubsub.on_message();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let payload: String = messages.next().await.unwrap().get_payload().unwrap();
            let snapshot: Value = serde_json::from_str(&payload).unwrap();
            if snapshot["targets"][marker].is_object() {
                return snapshot;
            }
        }
    })
    .await
    .expect("a snapshot published")
}

fn no_panic(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!text.contains("panicked"), "a panic in {}", log.display());
}

#[tokio::test]
async fn its_postgres_stopped_the_service_reports_critical_then_ok() {
    let postgres = OwnPostgres::start();
    migrate(&postgres.url);
    let address = healthy_listener().await;
    let log = log_file();
    let marker = format!("backend-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut service = Service::start(
        &settings(&postgres.url, &redis_url(), address, "1", &marker),
        &log,
    );
    reported(&service, "OK", "postgres", "OK").await;

    postgres.stop();
    let body = reported(&service, "CRITICAL", "postgres", "DOWN").await;
    assert_eq!(body["critical_failures"], json!(["postgres"]), "{body}");
    assert_eq!(body["checks"][&marker]["status"], "OK");
    assert_eq!(body["checks"]["redis"]["status"], "OK");
    // Every replica checks for itself meanwhile, and still tells the platform.
    let published = next_published(&redis_url(), &marker).await;
    assert_eq!(published["status"], "CRITICAL", "{published}");
    assert!(service.is_running(), "the service stayed up");
    assert_eq!(
        reqwest::get(service.url("/health")).await.unwrap().status(),
        200
    );

    postgres.start_again();
    let restarted: DateTime<Utc> = Utc::now();
    let body = reported(&service, "OK", "postgres", "OK").await;
    assert_eq!(body["critical_failures"], json!([]));
    // The lease holder's cycle stores snapshots again.
    let pool = PgPool::connect(&postgres.url).await.unwrap();
    eventually(Duration::from_secs(30), "a snapshot stored", || async {
        let stored: Option<Value> = sqlx::query_scalar(
            "SELECT snapshot FROM health_snapshots WHERE taken_at > $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(restarted)
        .fetch_optional(&pool)
        .await
        .ok()?;
        stored.filter(|s| s["status"] == "OK")
    })
    .await;
    assert!(service.is_running());
    service.kill();
    pool.close().await;
    no_panic(&log);
}

/// The `dependency_down` alert on `target`, as (state, severity), if any.
async fn dependency_down(pool: &PgPool, target: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "SELECT state, severity FROM ops_alerts
          WHERE rule = 'dependency_down' AND labels->>'target' = $1
          ORDER BY started_at DESC LIMIT 1",
    )
    .bind(target)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn its_redis_killed_and_restarted_alerts_after_two_cycles_and_resolves() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    let mut redis = OwnRedis::start().await;
    let address = healthy_listener().await;
    let log = log_file();
    let mut service = Service::start(
        &settings(&database.url, &redis.url, address, "1", "backend"),
        &log,
    );
    reported(&service, "OK", "redis", "OK").await;
    assert_eq!(next_published(&redis.url, "backend").await["status"], "OK");

    redis.kill();
    let body = reported(&service, "CRITICAL", "redis", "DOWN").await;
    assert_eq!(body["critical_failures"], json!(["redis"]), "{body}");
    eventually(
        Duration::from_secs(30),
        "dependency_down for redis",
        || async {
            (dependency_down(&pool, "redis").await
                == Some(("firing".to_owned(), "CRITICAL".to_owned())))
            .then_some(())
        },
    )
    .await;
    // One bad cycle did not open it: the cycle that first saw Redis down stored its
    // snapshot before the alert started.
    let first_bad: DateTime<Utc> = sqlx::query_scalar(
        "SELECT taken_at FROM health_snapshots
          WHERE snapshot->'targets'->'redis'->'streaks'->>'down' = '1' ORDER BY id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let opened: DateTime<Utc> = sqlx::query_scalar(
        "SELECT started_at FROM ops_alerts
          WHERE rule = 'dependency_down' AND labels->>'target' = 'redis'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(first_bad < opened, "{first_bad} {opened}");
    assert!(service.is_running());

    redis.start_again().await;
    reported(&service, "OK", "redis", "OK").await;
    eventually(
        Duration::from_secs(30),
        "dependency_down resolved",
        || async {
            let alert = dependency_down(&pool, "redis").await?;
            (alert.0 == "resolved").then_some(())
        },
    )
    .await;
    // Publishing resumed on the restarted server.
    assert_eq!(next_published(&redis.url, "backend").await["status"], "OK");
    service.kill();
    pool.close().await;
    no_panic(&log);
}

/// The lease's holder, if any.
async fn holder(pool: &PgPool) -> Option<String> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'platform_health'")
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// The timestamps of the snapshots stored, oldest first.
async fn snapshot_times(pool: &PgPool) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar("SELECT taken_at FROM health_snapshots ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cycle_holder_killed_another_replica_takes_over() {
    const INTERVAL: i64 = 2;
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    let address = healthy_listener().await;
    let log = log_file();
    let first = Service::start(
        &settings(&database.url, &redis_url(), address, "2", "backend"),
        &log,
    );
    let first_holder = eventually(Duration::from_secs(60), "a holder", || holder(&pool)).await;
    let second = Service::start(
        &settings(&database.url, &redis_url(), address, "2", "backend"),
        &log,
    );
    second.wait_ready().await;
    // The second serves the first's snapshots, and only one replica runs the cycle.
    eventually(
        Duration::from_secs(20),
        "the same snapshot on both",
        || async {
            let (a, b) = (system(&first).await?, system(&second).await?);
            (a["timestamp"] == b["timestamp"]).then_some(())
        },
    )
    .await;
    let before = snapshot_times(&pool).await;
    assert_eq!(holder(&pool).await.as_deref(), Some(first_holder.as_str()));
    let last_before = *before.last().unwrap();

    first.kill();
    let killed = Utc::now();
    let taken_over = eventually(Duration::from_secs(30), "a new holder", || async {
        let now = holder(&pool).await?;
        (now != first_holder).then_some(now)
    })
    .await;
    let resumed = eventually(
        Duration::from_secs(30),
        "snapshots after the kill",
        || async {
            snapshot_times(&pool)
                .await
                .into_iter()
                .find(|t| *t > killed)
        },
    )
    .await;
    let gap = (resumed - last_before).num_milliseconds();
    println!("takeover: last snapshot before the kill to the first after: {gap} ms");
    // The lease lapses 4 s (an interval and two seconds) after the last renewal and
    // the survivor's turns come every interval: at most 6 s, plus the scheduler's
    // half-second tick. Four intervals is the bound asserted, with room for a loaded
    // machine.
    assert!(gap <= 4 * INTERVAL * 1000, "{gap} ms, {taken_over}");
    eventually(
        Duration::from_secs(20),
        "the survivor serving its snapshots",
        || async {
            let body = system(&second).await?;
            let at: DateTime<Utc> = body["timestamp"].as_str()?.parse().ok()?;
            (at > killed && body["status"] == "OK").then_some(())
        },
    )
    .await;
    // One holder at a time: no two snapshots closer than half an interval.
    let times = snapshot_times(&pool).await;
    for pair in times.windows(2) {
        let apart = (pair[1] - pair[0]).num_milliseconds();
        assert!(apart >= INTERVAL * 1000 / 2, "{apart} ms apart: {times:?}");
    }
    second.kill();
    pool.close().await;
    no_panic(&log);
}
