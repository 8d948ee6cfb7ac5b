//! `GET /internal/status`: each batch's next and last run, the caches, each source's
//! health and the WebSocket feed — against the simulator, batches run on demand.

use monitoring_service::market::Clock;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::market::{binance_answers_503, frozen_sim, hour, rsi_below, set_time};
use crate::support::strategies::{insert_strategy, price_above};
use crate::support::{TestApp, test_config};

async fn internal(app: &TestApp, method: reqwest::Method, path: &str) -> Value {
    let (status, body) = app.internal(method, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn bucket<'a>(status: &'a Value, frequency: &str) -> &'a Value {
    status["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["frequency"] == frequency)
        .unwrap_or_else(|| panic!("no {frequency} bucket in {status}"))
}

fn at(ms: i64) -> Value {
    json!(chrono::DateTime::from_timestamp_millis(ms).unwrap())
}

#[sqlx::test]
async fn status_shows_runs_caches_and_source_health(pool: PgPool) {
    let minute = hour(80);
    let now = minute + 20_000;
    let sim = frozen_sim(now, &[]).await;
    let clock = Clock::manual(now);
    let user = Uuid::new_v4();
    insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    insert_strategy(&pool, user, &[price_above(2.0)], None).await;
    let (on_close, _) =
        insert_strategy(&pool, user, &[rsi_below("BTCUSDT", "1m", 30.0)], None).await;
    sqlx::query("UPDATE strategies SET frequency = 'candle_close' WHERE id = $1")
        .bind(on_close)
        .execute(&pool)
        .await
        .unwrap();
    insert_strategy(&pool, user, &[price_above(4.0)], Some(json!({"nor": []}))).await;

    let binance = sim.binance_url();
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("UPSTREAM_MAX_RETRIES", "0"),
        ],
    );
    let app = TestApp::spawn_with_clock(pool.clone(), config, clock.clone()).await;
    app.wait_ready().await;

    let before = internal(&app, reqwest::Method::GET, "/internal/status").await;
    let one_minute = bucket(&before, "1m");
    assert_eq!(
        (
            one_minute["strategies"].clone(),
            one_minute["next_run_at"].clone()
        ),
        (json!(2), at(minute + 60_000))
    );
    assert_eq!(one_minute["last_run"], Value::Null);
    assert_eq!(bucket(&before, "candle_close")["next_run_at"], Value::Null);
    assert_eq!(before["sources"]["binance"]["state"], "idle");
    assert_eq!(
        before["strategies"]["by_status"],
        json!({"active": 3, "error": 1})
    );
    assert_eq!(
        (
            before["strategies"]["loaded"].clone(),
            before["strategies"]["errors"].clone()
        ),
        (json!(3), json!(1))
    );
    assert_eq!(
        before["websocket"],
        json!({"enabled": false, "connections": 0, "streams": 0, "lag_seconds": 0.0, "reconnects": 0})
    );

    internal(&app, reqwest::Method::POST, "/internal/run/1m").await;
    let after = internal(&app, reqwest::Method::GET, "/internal/status").await;
    let last = &bucket(&after, "1m")["last_run"];
    assert_eq!(
        (
            last["evaluated"].clone(),
            last["triggered"].clone(),
            last["status"].clone(),
            last["due"].clone()
        ),
        (json!(2), json!(2), json!("ok"), at(minute)),
        "{after}"
    );
    // Two strategies read one price: one lookup, fetched.
    assert_eq!(
        after["cache"],
        json!({"lookups": 1, "l1_hits": 0, "l2_hits": 0, "hit_rate": 0.0})
    );
    let health = &after["sources"]["binance"];
    assert_eq!(
        (
            health["state"].clone(),
            health["consecutive_failures"].clone()
        ),
        (json!("ok"), json!(0))
    );
    assert!(health["last_success_at"].is_string(), "{health}");
    assert_eq!(after["sources"]["coingecko"]["state"], "idle");

    // Within the price's lifetime a second batch is answered from memory.
    internal(&app, reqwest::Method::POST, "/internal/run/1m").await;
    let cached = internal(&app, reqwest::Method::GET, "/internal/status").await;
    assert_eq!(
        cached["cache"],
        json!({"lookups": 2, "l1_hits": 1, "l2_hits": 0, "hit_rate": 0.5})
    );
    assert_eq!(bucket(&cached, "1m")["last_run"]["cache_hit_rate"], 1.0);

    // Binance down: the next minute's batch is partial and Binance is failing.
    binance_answers_503(&sim);
    set_time(&sim, &clock, minute + 60_000 + 1_000);
    internal(&app, reqwest::Method::POST, "/internal/run/1m").await;
    let down = internal(&app, reqwest::Method::GET, "/internal/status").await;
    let last = &bucket(&down, "1m")["last_run"];
    assert_eq!(
        (
            last["status"].clone(),
            last["data_failures"].clone(),
            last["errors"].clone()
        ),
        (json!("partial"), json!(1), json!(2)),
        "{down}"
    );
    let health = &down["sources"]["binance"];
    assert_eq!(
        (
            health["state"].clone(),
            health["last_failure"].clone(),
            health["consecutive_failures"].clone()
        ),
        (json!("failing"), json!("status"), json!(1)),
        "{health}"
    );
    assert_eq!(bucket(&down, "1m")["next_run_at"], at(minute + 120_000));

    // The scrape after those batches: valid for promtool, and saying what happened.
    let scrape = app.get("/metrics").await.text().await.unwrap();
    promtool_check_metrics(&scrape);
    for expected in [
        "monitoring_evaluations_total{frequency=\"1m\",result=\"true\"} 4",
        "monitoring_evaluations_total{frequency=\"1m\",result=\"unknown\"} 2",
        "monitoring_batches_total{frequency=\"1m\",status=\"partial\"} 1",
        "monitoring_evaluation_latency_seconds_count{frequency=\"1m\"} 3",
        "monitoring_strategies{status=\"loaded\"} 3",
        "monitoring_strategies{status=\"error\"} 1",
        "monitoring_strategy_reloads_total{kind=\"full\",result=\"ok\"}",
        "monitoring_strategy_reload_duration_seconds_count{kind=\"full\"}",
        "monitoring_last_batch_timestamp_seconds{frequency=\"1m\"}",
        "monitoring_live_reload_following 1",
        "monitoring_upstream_errors_total{endpoint=\"/api/v3/ticker/price\",kind=\"status\",source=\"binance\"} 1",
    ] {
        assert!(scrape.contains(expected), "{expected} missing:\n{scrape}");
    }
    app.stop().await.unwrap();
}

/// `promtool check metrics` (Debian's `prometheus` package, which `scripts/test.sh`
/// installs) accepts `scrape`: names, types, help texts and units by Prometheus' rules.
pub fn promtool_check_metrics(scrape: &str) {
    use std::io::Write;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[sqlx::test]
async fn status_says_redis_is_unreachable_when_it_does_not_answer(pool: PgPool) {
    let mut own = crate::support::own_services::OwnRedis::start().await;
    let config = test_config(false, &[("REDIS_URL", own.url.as_str())]);
    let app = TestApp::spawn_with(pool, config).await;
    app.wait_ready().await;
    let before = internal(&app, reqwest::Method::GET, "/internal/status").await;
    assert_eq!(before["redis"], "connected");
    own.kill();
    let during = internal(&app, reqwest::Method::GET, "/internal/status").await;
    assert_eq!(during["redis"], "unreachable", "asked, not assumed");
    own.start_again().await;
    crate::support::eventually(
        std::time::Duration::from_secs(20),
        "Redis connected again",
        || async {
            let after = internal(&app, reqwest::Method::GET, "/internal/status").await;
            (after["redis"] == "connected").then_some(())
        },
    )
    .await;
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_strategy_is_marked_expired_within_a_minute_of_its_expiry(pool: PgPool) {
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    sqlx::query("UPDATE strategies SET expires_at = now() + interval '2 seconds' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.wait_ready().await;
    assert!(app.state.index.snapshot().strategies.contains_key(&id));
    // No reload is asked for: the periodic pass (every 30 s) finds it.
    crate::support::eventually(
        std::time::Duration::from_secs(60),
        "the strategy expired",
        || async {
            let status: String = sqlx::query_scalar("SELECT status FROM strategies WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            (status == "expired").then_some(())
        },
    )
    .await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT expires_at FROM strategies WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(chrono::Utc::now() - expires_at < chrono::Duration::seconds(60));
    // The status row is written first and the index swapped right after: the
    // swap is awaited, not assumed to have happened in the same instant.
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the expired strategy out of the index",
        || async { (!app.state.index.snapshot().strategies.contains_key(&id)).then_some(()) },
    )
    .await;
    app.stop().await.unwrap();
}
