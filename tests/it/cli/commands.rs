//! The operator CLI (`monitoring-service status | health | alerts | …`) as an operator
//! runs it: the real binary as a child process with nothing in its environment but
//! `MONITORING_URL` and `MONITORING_API_KEY`, against real servers. `health` in each
//! platform state, `status`, `alerts`, `ack`, `clear` and silences, and `tail`
//! following events raised on another replica across reconnects. The other
//! subcommands are in `cli_operations.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::cli_runner::{cells, closed_url, command, run, run_with, tick};
use crate::support::{TEST_KEY, TestApp, alert_event_followers, eventually, test_config};

/// A service whose answer the test switches: 0 healthy, 1 503, 2 slower than the check
/// timeout; and Binance's ping.
async fn switchable_target(mode: Arc<AtomicU8>) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/svc",
            get(move || {
                let mode = mode.load(Ordering::SeqCst);
                async move {
                    match mode {
                        0 => StatusCode::OK,
                        1 => StatusCode::SERVICE_UNAVAILABLE,
                        _ => {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            StatusCode::OK
                        }
                    }
                }
            }),
        )
        .route("/api/v3/ping", get(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[sqlx::test]
async fn health_exits_with_the_nagios_code_of_each_platform_state(pool: PgPool) {
    let mode = Arc::new(AtomicU8::new(0));
    let address = switchable_target(mode.clone()).await;
    let targets =
        json!([{"name": "svc", "url": format!("http://{address}/svc"), "critical": true}])
            .to_string();
    let binance = format!("http://{address}");
    // Without Redis: no other test's emergency stop reaches this replica.
    let config = test_config(
        false,
        &[
            ("HEALTH_CHECK_INTERVAL", "1"),
            ("HEALTH_CHECK_TIMEOUT_MS", "300"),
            ("HEALTH_TARGETS", &targets),
            ("BINANCE_BASE_URL", &binance),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;
    app.wait_ready().await;
    tick(
        &app,
        json!({"engine_id": "cli-health", "risk": {"circuit_breaker_active": true},
               "connectivity": {"breeze_authenticated": true, "last_api_call": chrono::Utc::now()},
               "artifacts": {"teacher_model_age_hours": 30, "student_model_age_hours": null}}),
    )
    .await;

    for (setting, status, code, svc) in [
        (0, "OK", 0, "OK"),
        (1, "DEGRADED", 1, "DEGRADED"),
        (2, "CRITICAL", 2, "DOWN"),
        (0, "OK", 0, "OK"),
    ] {
        mode.store(setting, Ordering::SeqCst);
        eventually(Duration::from_secs(20), status, || async {
            let (_, body) = app
                .internal(reqwest::Method::GET, "/internal/health/system")
                .await;
            (body["status"] == status).then_some(())
        })
        .await;
        let ran = run(&app, &["health"]).await;
        assert_eq!(ran.code, code, "{ran:?}");
        assert_eq!(
            ran.stdout.lines().next().unwrap().split(' ').next(),
            Some(status)
        );
        let svc_row = ran.cells("svc ");
        assert_eq!(svc_row[..4], ["svc", "service", "yes", svc], "{ran:?}");
        assert_eq!(ran.cells("postgres")[3], "OK");
        let engine = ran.cells("cli-health");
        assert_eq!(
            engine[2..],
            ["ok", "tripped", "ok", "stale (30h)", "missing"],
            "{}",
            ran.stdout
        );
        assert!(!ran.stdout.contains('\x1b'), "no colour on a pipe");
        if status == "CRITICAL" {
            assert!(
                ran.stdout.contains("critical failures: svc"),
                "{}",
                ran.stdout
            );
        }

        let ran = run(&app, &["health", "--json"]).await;
        assert_eq!(ran.code, code);
        let answer = ran.json();
        assert_eq!(answer["system"]["status"], status);
        assert_eq!(answer["system"]["checks"]["svc"]["status"], svc);
        assert_eq!(answer["engines"][0]["engine_id"], "cli-health");
        assert_eq!(answer["engines"][0]["circuit_breaker"], "tripped");
    }
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn health_is_unknown_when_there_is_no_answer_to_judge(pool: PgPool) {
    // Health checks off on this replica: 503 no_snapshot.
    let app = TestApp::spawn(pool).await;
    let ran = run(&app, &["health"]).await;
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(
        ran.stderr.trim(),
        "error: health checks are off on this replica (HEALTH_CHECK_INTERVAL=0) (no_snapshot)"
    );
    // Refused key and nothing listening: unknown as well.
    let ran = run_with(
        &app.url(""),
        Some("wrong-key-0123456789abcdef"),
        &["health"],
    )
    .await;
    assert_eq!(ran.code, 3);
    assert!(ran.stderr.starts_with("error: unauthorized"), "{ran:?}");
    let closed = closed_url();
    let ran = run_with(&closed, Some(TEST_KEY), &["health"]).await;
    assert_eq!(ran.code, 3);
    assert_eq!(
        ran.stderr.trim(),
        format!("error: cannot reach the service at {closed}: Connection refused (os error 111)")
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn alerts_ack_clear_status_and_silences(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.wait_ready().await;
    let raised = tick(
        &app,
        json!({"engine_id": "cli-alerts", "risk": {"circuit_breaker_active": true}}),
    )
    .await;
    let alert_id = raised["alerts"][0].as_str().unwrap().to_owned();

    let ran = run(&app, &["status"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout.lines().next(), Some("ACTIVE ALERTS (1)"));
    let row = ran.cells(&alert_id);
    assert_eq!(
        [&row[..4], &row[5..]].concat(),
        [
            "CRITICAL",
            "circuit_breaker_triggered",
            "component=engine,engine_id=cli-alerts",
            "firing",
            &alert_id,
            "Circuit breaker triggered"
        ]
    );
    // Then the summary, after the alerts.
    let alerts_at = ran.stdout.find("ACTIVE ALERTS").unwrap();
    let service_at = ran.stdout.find("\nSERVICE\n").expect("a SERVICE section");
    assert!(alerts_at < service_at);
    assert!(ran.stdout.contains("redis connected"), "{}", ran.stdout);
    let status = run(&app, &["status", "--json"]).await.json();
    assert_eq!(status["alerts"]["count"], 1);
    assert_eq!(status["status"]["service"], "monitoring-service");

    let listed = run(
        &app,
        &["alerts", "--rule", "circuit_breaker_triggered", "--json"],
    )
    .await;
    assert_eq!(listed.json()["count"], 1);
    assert_eq!(listed.json()["alerts"][0]["alert_id"], alert_id.as_str());
    let other_rule = run(&app, &["alerts", "--rule", "daily_loss_exceeded"]).await;
    assert_eq!(
        (other_rule.code, other_rule.stdout.as_str()),
        (0, "no active alerts\n")
    );

    let acked = run(&app, &["ack", &alert_id]).await;
    assert_eq!(acked.code, 0, "{acked:?}");
    assert_eq!(
        acked.stdout,
        format!(
            "acknowledged {alert_id} (CRITICAL circuit_breaker_triggered): Circuit breaker triggered\n"
        )
    );
    let acknowledged: bool =
        sqlx::query_scalar("SELECT acknowledged FROM ops_alerts WHERE alert_id = $1")
            .bind(&alert_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(acknowledged);
    assert_eq!(
        run(&app, &["alerts"]).await.cells(&alert_id)[3],
        "firing (acked)"
    );

    let cleared = run(&app, &["clear", &alert_id]).await;
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert!(cleared.stdout.starts_with(&format!("cleared {alert_id}")));
    let again = run(&app, &["clear", &alert_id]).await;
    assert_eq!(again.code, 1);
    assert_eq!(again.stdout, "");
    assert_eq!(again.stderr.lines().count(), 1, "{again:?}");
    assert_eq!(
        again.stderr,
        format!("error: alert {alert_id} is cleared, not firing (alert_closed)\n")
    );
    let unknown = run(&app, &["ack", "no-such-alert"]).await;
    assert_eq!(unknown.code, 1);
    assert_eq!(
        unknown.stderr,
        "error: no alert no-such-alert (not_found)\n"
    );
    assert_eq!(run(&app, &["alerts"]).await.stdout, "no active alerts\n");
    let history = run(&app, &["alerts", "--all", "--since", "1h", "--json"])
        .await
        .json();
    let states: Vec<(&str, &str)> = history["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alert_id"].as_str().unwrap(),
                a["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [(alert_id.as_str(), "cleared")]);

    let added = run(
        &app,
        &[
            "silence",
            "add",
            "--matcher",
            "rule=heartbeat_lapsed",
            "--matcher",
            "engine_id=~cli-.*",
            "--for",
            "2h",
            "--comment",
            "maintenance",
            "--author",
            "ops",
        ],
    )
    .await;
    assert_eq!(added.code, 0, "{added:?}");
    let id = added.stdout.split(' ').nth(1).unwrap().to_owned();
    let (matchers, ends_in): (Value, f64) = sqlx::query_as(
        "SELECT matchers, extract(epoch FROM ends_at - now())::float8 FROM ops_silences WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        matchers,
        json!([{"name": "rule", "value": "heartbeat_lapsed", "is_regex": false, "is_equal": true},
               {"name": "engine_id", "value": "cli-.*", "is_regex": true, "is_equal": true}])
    );
    assert!((7000.0..=7200.0).contains(&ends_in), "{ends_in}");
    let listed = run(&app, &["silence", "ls"]).await;
    let row = listed.cells(&id);
    assert_eq!(row[1], "rule=heartbeat_lapsed,engine_id=~cli-.*");
    assert_eq!(row[4..], ["ops", "maintenance"]);
    let removed = run(&app, &["silence", "rm", &id]).await;
    assert_eq!(
        (removed.code, removed.stdout.clone()),
        (0, format!("silence {id} deleted\n"))
    );
    let gone = run(&app, &["silence", "rm", &id]).await;
    assert_eq!(gone.code, 1);
    assert_eq!(gone.stderr, format!("error: no silence {id} (not_found)\n"));
    let bad = run(
        &app,
        &["silence", "add", "--matcher", "rule", "--for", "1h"],
    )
    .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("expected name=value, name=~regex, name!=value or name!~regex"),
        "{bad:?}"
    );
    assert_eq!(run(&app, &["silence", "ls"]).await.stdout, "no silences\n");
    app.stop().await.unwrap();
}

async fn replicas_subscribed(pool: &PgPool, n: i64) {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    alert_event_followers(&database, n).await;
}

#[sqlx::test]
async fn tail_prints_events_raised_on_another_replica_once_across_reconnects(pool: PgPool) {
    // The watched replica ends each stream after a second: `tail` must reconnect with
    // Last-Event-ID and neither miss nor repeat an event.
    let watched = TestApp::spawn_with(
        pool.clone(),
        test_config(true, &[("ALERT_STREAM_MAX_SECONDS", "1")]),
    )
    .await;
    let other = TestApp::spawn(pool.clone()).await;
    watched.wait_ready().await;
    other.wait_ready().await;
    replicas_subscribed(&pool, 2).await;

    let mut child = command(
        &watched.url(""),
        Some(TEST_KEY),
        &["tail", "--count", "3", "--json"],
    )
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    eventually(Duration::from_secs(10), "tail connected", || async {
        (watched.state.ops_alerts.stream().clients() == 1).then_some(())
    })
    .await;

    // Raised on the other replica: it reaches the watched one through Redis.
    let raised = tick(
        &other,
        json!({"engine_id": "cli-tail", "risk": {"circuit_breaker_active": true}}),
    )
    .await;
    let alert_id = raised["alerts"][0].as_str().unwrap().to_owned();
    let read = |line: Option<String>| -> Value {
        serde_json::from_str(&line.expect("tail printed a line")).unwrap()
    };
    let deadline = Duration::from_secs(20);
    let first = read(
        tokio::time::timeout(deadline, stdout.next_line())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        (first["event"].as_str(), first["data"]["alert_id"].as_str()),
        (Some("raised"), Some(alert_id.as_str()))
    );
    assert_eq!(first["data"]["rule"], "circuit_breaker_triggered");
    // The stream ends; tail says so on stderr and resumes after the event it printed.
    let notice = tokio::time::timeout(deadline, stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        notice.contains(&format!("reconnecting after event {}", first["id"])),
        "{notice}"
    );

    // Two more events on the other replica, whether tail is connected or between streams.
    for action in ["ack", "clear"] {
        let (status, _) = other
            .post_json(&format!("/internal/alerts/{alert_id}/{action}"), &json!({}))
            .await;
        assert_eq!(status, 200);
    }
    let second = read(
        tokio::time::timeout(deadline, stdout.next_line())
            .await
            .unwrap()
            .unwrap(),
    );
    let third = read(
        tokio::time::timeout(deadline, stdout.next_line())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        [second["event"].as_str(), third["event"].as_str()],
        [Some("acknowledged"), Some("cleared")]
    );
    let ids: Vec<i64> = [&first, &second, &third]
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM ops_alert_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, stored, "each stored event exactly once, in order");
    // --count 3: it exits by itself, successfully, with nothing more printed.
    let status = tokio::time::timeout(deadline, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(stdout.next_line().await.unwrap(), None);

    // As an operator reads them: replayed from the first event, one line each.
    let replayed = run(&watched, &["tail", "--after", "0", "--count", "3"]).await;
    assert_eq!(replayed.code, 0, "{replayed:?}");
    let lines: Vec<Vec<String>> = replayed.stdout.lines().map(cells).collect();
    let events: Vec<&str> = lines.iter().map(|cells| cells[1].as_str()).collect();
    assert_eq!(
        events,
        ["raised", "acknowledged", "cleared"],
        "{replayed:?}"
    );
    for line in &lines {
        assert!(
            chrono::NaiveDateTime::parse_from_str(&line[0], "%Y-%m-%dT%H:%M:%SZ").is_ok(),
            "{line:?}"
        );
        assert_eq!(
            line[2..4],
            ["CRITICAL", "circuit_breaker_triggered"],
            "{line:?}"
        );
        assert!(
            line.last().unwrap().ends_with(&format!("[{alert_id}]")),
            "{line:?}"
        );
    }
    watched.stop().await.unwrap();
    other.stop().await.unwrap();
}
