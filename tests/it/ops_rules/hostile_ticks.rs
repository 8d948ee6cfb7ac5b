//! Ticks that once broke an engine for good, against the real binary and Postgres: a
//! number past what round-trips through jsonb and serde_json (f64::MAX) and a timestamp
//! in 2099 are 400s naming their path; a stored state that cannot be decoded harms
//! only its own engine, never a route or the heartbeat monitor; and what earlier
//! versions stored is repaired at start.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::process::{Service, migrate, quiet_vars, temp_log};
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

async fn get(service: &Service, path: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .get(service.url(path))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or_default())
}

fn tripped(engine: &str) -> Value {
    json!({"engine_id": engine, "risk": {"circuit_breaker_active": true, "daily_loss_pct": -50.0}})
}

/// A state row as an earlier version stored it: `metrics` verbatim as jsonb text.
async fn plant(pool: &PgPool, engine: &str, metrics: &str, recorded_at: &str) {
    sqlx::query(
        "INSERT INTO engine_state (engine_id, last_recorded_at, last_received_at, last_metrics, holding)
         VALUES ($1, $3::timestamptz, now(), $2::jsonb, '{}')",
    )
    .bind(engine)
    .bind(metrics)
    .bind(recorded_at)
    .execute(pool)
    .await
    .unwrap();
}

fn rules_raised(answer: &Value) -> usize {
    answer["alerts"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn hostile_ticks_are_refused_and_one_engines_bad_state_breaks_no_other() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    // What earlier versions could store: metrics Postgres prints back as a 309-digit
    // integer, and a latest tick stamped 2099.
    plant(
        &pool,
        "stored-max",
        r#"{"engine_id": "stored-max", "risk": {"daily_loss_pct": -1.7976931348623157e308}}"#,
        "2026-12-01T00:00:00Z",
    )
    .await;
    plant(
        &pool,
        "stored-2099",
        r#"{"engine_id": "stored-2099"}"#,
        "2099-01-01T00:00:00Z",
    )
    .await;
    let log = temp_log("hostile");
    let vars = quiet_vars(&database.url, &redis_url());
    let service = Service::start(&vars, &log);
    service.wait_ready().await;

    // Repaired at start: the 2099 engine's rules judge its next tick.
    let (status, answer) = service
        .post_json("/internal/engine/ticks", &tripped("stored-2099"))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(rules_raised(&answer), 2, "breaker and daily loss: {answer}");
    let unreadable: Option<String> = sqlx::query_scalar(
        "SELECT last_metrics::text FROM engine_state WHERE engine_id = 'stored-max'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unreadable, None, "unreadable metrics dropped at start");

    // f64::MAX and friends: 400 naming the path, nothing stored.
    for (body, path) in [
        (
            r#"{"engine_id": "max", "risk": {"daily_loss_pct": -1.7976931348623157e308}}"#,
            "risk.daily_loss_pct",
        ),
        (
            r#"{"engine_id": "max", "pnl": {"daily": 1e301}}"#,
            "pnl.daily",
        ),
        (
            r#"{"engine_id": "max", "timestamp": "2099-01-01T00:00:00Z"}"#,
            "timestamp",
        ),
    ] {
        let answer = reqwest::Client::new()
            .post(service.url("/internal/engine/ticks"))
            .header("X-MONITORING-KEY", TEST_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_tick");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{path}: ")),
            "{body}: {message}"
        );
    }
    let symbol = "S".repeat(1 << 20);
    let (status, answer) = service
        .post_json(
            "/internal/engine/ticks",
            &json!({"engine_id": "max", "positions": {"symbols": [symbol]}}),
        )
        .await;
    assert!(status == 400 || status == 413, "{status} {answer}");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine_metrics WHERE engine_id = 'max'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing refused is stored");

    // A state that cannot be decoded appears while the service runs: its engine alone
    // starts afresh; every other engine, every route and the monitor keep working.
    plant(
        &pool,
        "poisoned",
        r#"{"engine_id": "poisoned", "pnl": {"daily": 1e400}}"#,
        "2026-12-01T00:00:00Z",
    )
    .await;
    let (status, answer) = service
        .post_json("/internal/engine/ticks", &tripped("healthy"))
        .await;
    assert_eq!((status, rules_raised(&answer)), (202, 2), "{answer}");
    let (status, engines) = get(&service, "/internal/engines").await;
    assert_eq!(status, 200, "{engines}");
    let listed = engines.to_string();
    assert!(
        listed.contains("healthy") && listed.contains("poisoned"),
        "{engines}"
    );
    // The heartbeat timer reads every engine's row: the bad one fails nothing.
    let ledger = eventually(Duration::from_secs(30), "ops_rules run by hand", || async {
        let (status, answer) = service
            .post_json("/internal/monitors/ops_rules/run", &json!({}))
            .await;
        (status != 409).then_some((status, answer))
    })
    .await;
    assert_eq!(
        (ledger.0, ledger.1["status"].as_str()),
        (200, Some("ok")),
        "{ledger:?}"
    );
    let (status, answer) = service
        .post_json("/internal/engine/ticks", &tripped("poisoned"))
        .await;
    assert_eq!((status, rules_raised(&answer)), (202, 2), "{answer}");
    let (status, _) = get(&service, "/internal/engine/metrics?engine_id=poisoned").await;
    assert_eq!(status, 200);
    let unreadable = service
        .metric_lines()
        .await
        .into_iter()
        .find(|line| line.starts_with("monitoring_engine_state_unreadable_total "))
        .expect("the unreadable-state metric");
    let count: f64 = unreadable.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{unreadable}");
    drop(service);
    pool.close().await;
    database.drop_now().await;
}
