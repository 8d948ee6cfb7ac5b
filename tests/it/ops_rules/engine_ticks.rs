//! Trading-engine ticks and the operational rules over them (DESIGN §12) on the real
//! server and Postgres: a tick raising and clearing an alert, dedup over repeated
//! ticks, levels from `alert_thresholds` applied from the next tick, heartbeat lapses,
//! two replicas taking alternate ticks, bad ticks, the history's aggregation,
//! snapshots, retention and the ticks' own rate limit.

use std::time::Duration;

use monitoring_service::ops_rules::judge_heartbeats;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::process::{Service, base_vars, migrate};
use crate::support::{ScratchDatabase, TEST_KEY, TestApp, eventually, redis_url, test_config};

async fn tick(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/internal/engine/ticks", &body).await
}

/// The episodes of `engine` as (rule, severity, state), oldest first.
async fn episodes(pool: &PgPool, engine: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT rule, severity, state FROM ops_alerts WHERE labels->>'engine_id' = $1
          ORDER BY started_at, alert_id",
    )
    .bind(engine)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn ep(rule: &str, severity: &str, state: &str) -> (String, String, String) {
    (rule.into(), severity.into(), state.into())
}

#[sqlx::test]
async fn a_circuit_breaker_tick_raises_once_and_a_clearing_tick_resolves(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let tripped = json!({"engine_id": "live-1", "timestamp": "2026-12-02T12:34:56Z",
        "risk": {"circuit_breaker_active": true, "daily_loss_pct": -0.25, "max_position_value": 50000.0}});
    let (status, answer) = tick(&app, tripped.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], true);
    let id = answer["alerts"][0].as_str().unwrap().to_owned();
    assert_eq!(answer["alerts"].as_array().unwrap().len(), 1);
    // The same state again: the same alert, one episode.
    for _ in 0..3 {
        let (_, again) = tick(&app, tripped.clone()).await;
        assert_eq!(again["alerts"], json!([id]));
    }
    let (_, active) = app
        .internal(reqwest::Method::GET, "/internal/alerts/active")
        .await;
    assert_eq!(active["count"], 1);
    assert_eq!(active["alerts"][0]["rule"], "circuit_breaker_triggered");
    assert_eq!(active["alerts"][0]["level"], "CRITICAL");
    assert_eq!(active["alerts"][0]["labels"]["engine_id"], "live-1");
    let (status, answer) = tick(
        &app,
        json!({"engine_id": "live-1", "timestamp": "2026-12-02T12:35:56Z",
        "risk": {"circuit_breaker_active": false}}),
    )
    .await;
    assert_eq!((status, answer["alerts"].clone()), (202, json!([])));
    assert_eq!(
        episodes(&pool, "live-1").await,
        [ep("circuit_breaker_triggered", "CRITICAL", "resolved")]
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine_metrics WHERE engine_id = 'live-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 5, "every tick stored");
    let lines = app.get("/metrics").await.text().await.unwrap();
    assert!(
        lines.contains(r#"monitoring_engine_ticks_total{engine_id="live-1"} 5"#),
        "{lines}"
    );
    assert!(lines.contains(r#"monitoring_engine_last_tick_timestamp_seconds{engine_id="live-1"}"#));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn bad_ticks_are_400s_naming_the_json_path_and_nothing_is_stored(pool: PgPool) {
    let config = test_config(true, &[("HTTP_BODY_LIMIT_BYTES", "2048")]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let cases = [
        (
            r#"{"risk": {"daily_loss_pct": "a lot"}}"#,
            "risk.daily_loss_pct: ",
        ),
        (r#"{"positions": {"count": -3}}"#, "positions.count: "),
        (r#"{"timestamp": "02/12/2026"}"#, "timestamp: "),
        (r#"{"engine_id": "no spaces please"}"#, "engine_id: "),
        (r#"{"pnl": {"daily": 1e400}}"#, "pnl.daily: "),
        (r#"{"pnl": {"daily": NaN}}"#, "pnl.daily: "),
        (r#"{"gossip": {}}"#, "gossip: unknown field `gossip`"),
        (
            r#"{"risk": {"circuit_breaker_active": "yes"}}"#,
            "risk.circuit_breaker_active: ",
        ),
        ("not json", "body: "),
    ];
    for (body, expected) in cases {
        let response = app
            .client
            .post(app.url("/internal/engine/ticks"))
            .header("X-MONITORING-KEY", TEST_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_tick", "{body}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{body}: {message}");
    }
    let huge = json!({"positions": {"symbols": vec!["RELIANCE"; 1000]}});
    let (status, _) = tick(&app, huge).await;
    assert_eq!(status, 413);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM engine_metrics")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_thresholds_row_sets_levels_from_the_next_tick(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let loss = |pct: f64| json!({"engine_id": "eu-1", "risk": {"daily_loss_pct": pct}});
    // The default: CRITICAL from a 5 % loss.
    assert_eq!(tick(&app, loss(-3.0)).await.1["alerts"], json!([]));
    sqlx::query(
        "INSERT INTO alert_thresholds (rule, engine_id, low, medium, high)
         VALUES ('daily_loss_exceeded', NULL, 1.0, 2.0, 4.0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    tick(&app, loss(-3.0)).await;
    assert_eq!(
        episodes(&pool, "eu-1").await,
        [ep("daily_loss_exceeded", "WARNING", "firing")]
    );
    // Crossing the next level: the WARNING episode ends, a CRITICAL one opens.
    tick(&app, loss(-4.5)).await;
    assert_eq!(
        episodes(&pool, "eu-1").await,
        [
            ep("daily_loss_exceeded", "WARNING", "resolved"),
            ep("daily_loss_exceeded", "CRITICAL", "firing")
        ]
    );
    // An engine's own row beats the global one; a disabled row turns the rule off.
    sqlx::query(
        "INSERT INTO alert_thresholds (rule, engine_id, high, enabled)
         VALUES ('daily_loss_exceeded', 'eu-1', 10.0, false)",
    )
    .execute(&pool)
    .await
    .unwrap();
    tick(&app, loss(-4.5)).await;
    let states: Vec<String> = episodes(&pool, "eu-1")
        .await
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(states, ["resolved", "resolved"]);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn heartbeats_lapse_for_a_silent_engine_and_a_never_seen_expected_one(pool: PgPool) {
    let config = test_config(
        true,
        &[
            ("OPS_HEARTBEAT_LAPSE_SECONDS", "1"),
            ("OPS_EXPECTED_ENGINES", "ghost"),
        ],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let applier = app.state.engine.applier.clone();
    let expected = vec!["ghost".to_owned()];
    tick(&app, json!({"engine_id": "quiet"})).await;
    // The timer's pass, polled until the silent engine has been quiet past 1 s.
    eventually(Duration::from_secs(10), "both engines lapsed", || async {
        judge_heartbeats(&applier, &expected).await.unwrap();
        let lapsed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ops_alerts WHERE rule = 'heartbeat_lapsed' AND state = 'firing'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (lapsed == 2).then_some(())
    })
    .await;
    // Judged again: still one episode each.
    assert_eq!(judge_heartbeats(&applier, &expected).await.unwrap(), 0);
    let (_, answer) = tick(&app, json!({"engine_id": "quiet"})).await;
    assert_eq!(answer["alerts"], json!([]));
    assert_eq!(
        episodes(&pool, "quiet").await,
        [ep("heartbeat_lapsed", "CRITICAL", "resolved")]
    );
    assert_eq!(
        episodes(&pool, "ghost").await,
        [ep("heartbeat_lapsed", "CRITICAL", "firing")]
    );
    app.stop().await.unwrap();
}

/// A sequence of ticks for `engine` moving through several rules' states.
fn script(engine: &str) -> Vec<Value> {
    let at = |minute: u32| format!("2026-12-02T12:{minute:02}:00Z");
    vec![
        json!({"engine_id": engine, "timestamp": at(0), "risk": {"circuit_breaker_active": true}}),
        json!({"engine_id": engine, "timestamp": at(1), "positions": {"count": 12}, "risk": {"circuit_breaker_active": true}}),
        json!({"engine_id": engine, "timestamp": at(2), "risk": {"circuit_breaker_active": false}, "sentiment": {"provider_errors_1h": 9}}),
        json!({"engine_id": engine, "timestamp": at(3), "positions": {"count": 3}, "artifacts": {"teacher_model_age_hours": null}}),
        json!({"engine_id": engine, "timestamp": at(4), "sentiment": {"provider_errors_1h": 0}, "artifacts": {"teacher_model_age_hours": 2}}),
        json!({"engine_id": engine, "timestamp": at(5), "connectivity": {"breeze_authenticated": false}}),
    ]
}

#[tokio::test]
async fn two_replica_binaries_taking_alternate_ticks_reach_what_one_replica_does() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    let log = std::env::temp_dir().join(format!("monitoring-ticks-{}.log", uuid::Uuid::new_v4()));
    let start = || {
        let mut vars = base_vars(&database.url, &redis_url());
        vars.push(("ENABLE_SCHEDULER", "false".to_owned()));
        vars.push(("ALERT_LOG_DIR", String::new()));
        vars.push(("METRICS_SNAPSHOT_DIR", String::new()));
        Service::start(&vars, &log)
    };
    let (a, b) = (start(), start());
    a.wait_ready().await;
    b.wait_ready().await;
    for (i, body) in script("alternating").into_iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            replica.post_json("/internal/engine/ticks", &body).await.0,
            202
        );
    }
    for body in script("single") {
        assert_eq!(a.post_json("/internal/engine/ticks", &body).await.0, 202);
    }
    let single = episodes(&pool, "single").await;
    assert_eq!(
        single,
        [
            ep("circuit_breaker_triggered", "CRITICAL", "resolved"),
            ep("position_limit_breached", "WARNING", "resolved"),
            ep("sentiment_failures_high", "WARNING", "resolved"),
            ep("stale_teacher_model", "WARNING", "resolved"),
            ep("connectivity_lost", "CRITICAL", "firing"),
        ]
    );
    assert_eq!(episodes(&pool, "alternating").await, single);
    drop((a, b));
    pool.close().await;
    database.drop_now().await;
}

#[sqlx::test]
async fn the_history_aggregates_each_field_per_step(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // Two steps of a minute: 12:00 (three ticks) and 12:01 (two).
    let ticks = [
        ("2026-12-02T12:00:05Z", 10.0, 3),
        ("2026-12-02T12:00:50Z", -4.0, 5),
        ("2026-12-02T12:00:20Z", 7.5, 4),
        ("2026-12-02T12:01:10Z", 1.25, 2),
        ("2026-12-02T12:01:59Z", 2.75, 2),
    ];
    for (at, daily, count) in ticks {
        let body = json!({"engine_id": "hist", "timestamp": at, "pnl": {"daily": daily}, "positions": {"count": count}});
        assert_eq!(tick(&app, body).await.0, 202);
    }
    let (status, history) = app
        .internal(
            reqwest::Method::GET,
            "/internal/engine/metrics?engine_id=hist&since=2026-12-02T12:00:00Z&until=2026-12-02T12:02:00Z&step=1m",
        )
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["step_seconds"], 60);
    let steps = history["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    // Computed here: the first step's pnl.daily is 10, -4 and 7.5, the latest by the
    // ticks' own time being -4 (12:00:50).
    let first = &steps[0]["fields"]["pnl.daily"];
    assert_eq!(steps[0]["at"], "2026-12-02T12:00:00Z");
    assert_eq!(
        (first["min"].as_f64(), first["max"].as_f64()),
        (Some(-4.0), Some(10.0))
    );
    assert!((first["avg"].as_f64().unwrap() - (10.0 - 4.0 + 7.5) / 3.0).abs() < 1e-9);
    assert_eq!(
        (first["last"].as_f64(), first["count"].as_i64()),
        (Some(-4.0), Some(3))
    );
    let second = &steps[1]["fields"]["pnl.daily"];
    assert_eq!(
        (second["min"].as_f64(), second["max"].as_f64()),
        (Some(1.25), Some(2.75))
    );
    assert_eq!(
        (second["avg"].as_f64(), second["last"].as_f64()),
        (Some(2.0), Some(2.75))
    );
    assert_eq!(
        steps[0]["fields"]["positions.count"]["avg"].as_f64(),
        Some(4.0)
    );
    assert!(
        steps[0]["fields"].get("risk.daily_loss_pct").is_none(),
        "a field no tick carried"
    );
    for (query, named) in [
        ("engine_id=hist&step=0", "step"),
        (
            "engine_id=hist&step=1s&since=2026-01-01T00:00:00Z&until=2026-12-01T00:00:00Z",
            "step",
        ),
        (
            "engine_id=hist&since=2026-12-02T13:00:00Z&until=2026-12-02T12:00:00Z",
            "since",
        ),
        ("engine_id=a%20b", "engine_id"),
        ("step=1m", "engine_id"),
    ] {
        let (status, answer) = app
            .internal(
                reqwest::Method::GET,
                &format!("/internal/engine/metrics?{query}"),
            )
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(named),
            "{query}: {answer}"
        );
    }
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn snapshots_are_written_and_old_ticks_removed(pool: PgPool) {
    sqlx::query(
        "INSERT INTO engine_metrics (engine_id, recorded_at, received_at, metrics)
         VALUES ('old', now() - interval '31 days', now() - interval '31 days', '{}'),
                ('recent', now() - interval '29 days', now() - interval '29 days', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("snapshots-{}", uuid::Uuid::new_v4()));
    let dir_text = dir.to_string_lossy().into_owned();
    let config = test_config(
        true,
        &[
            ("METRICS_SNAPSHOT_DIR", dir_text.as_str()),
            ("METRICS_SNAPSHOT_INTERVAL", "1"),
        ],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    tick(&app, json!({"engine_id": "snap", "pnl": {"daily": 42.5}})).await;
    let snapshot: Value = eventually(
        Duration::from_secs(10),
        "a snapshot with the engine",
        || async {
            let entries = std::fs::read_dir(&dir).ok()?;
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("metrics_"))
                .filter_map(|e| {
                    serde_json::from_slice::<Value>(&std::fs::read(e.path()).ok()?).ok()
                })
                .find(|s| s["engines"]["snap"].is_object())
        },
    )
    .await;
    assert_eq!(snapshot["engines"]["snap"]["metrics"]["pnl"]["daily"], 42.5);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT engine_id FROM engine_metrics ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        ["recent", "snap"],
        "ticks past 30 days removed at start"
    );
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn ticks_have_their_own_rate_limit(pool: PgPool) {
    let config = test_config(
        true,
        &[
            ("ENGINE_TICKS_RATE_LIMIT_PER_MINUTE", "60"),
            ("INTERNAL_RATE_LIMIT_PER_MINUTE", "60"),
            ("INTERNAL_RATE_LIMIT_BURST", "1"),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;
    assert_eq!(tick(&app, json!({"engine_id": "fast"})).await.0, 202);
    let (status, answer) = tick(&app, json!({"engine_id": "fast"})).await;
    assert_eq!(status, 429, "{answer}");
    // The operator routes' budget is untouched by ticks.
    let (status, _) = app
        .internal(reqwest::Method::GET, "/internal/alerts/active")
        .await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn ticks_are_503s_and_never_lost_silently_while_the_database_does_not_answer(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, _) = tick(&app, json!({"engine_id": "live-1", "risk": {}})).await;
    assert_eq!(status, 202);
    // The app's pool is this pool: closed, every statement fails at once, as with a
    // database that went away.
    pool.close().await;
    // Concurrent ticks queue behind one another, so the writer also meets a failed
    // batch of several and answers each tick on its own.
    let answers = futures_util::future::join_all((0..16).map(|i| {
        tick(
            &app,
            json!({"engine_id": format!("live-{i}"), "risk": {"circuit_breaker_active": true}}),
        )
    }))
    .await;
    for (status, answer) in answers {
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"], "unavailable", "{answer}");
        assert_eq!(
            answer["message"],
            "the tick store is unavailable, try again"
        );
    }
    app.stop().await.unwrap();
}
