//! The operator CLI (`monitoring-service status | health | alerts | …`) as an operator
//! runs it: the real binary as a child process with nothing in its environment but
//! `MONITORING_URL` and `MONITORING_API_KEY`, against real servers. Output and exit
//! codes of each subcommand, `health` in each platform state, `tail` following events
//! raised on another replica across reconnects, an older server, unauthorized and
//! unreachable, `--json` parsed.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::loader::insert_strategy;
use crate::simulate::{Golden, golden_market, indicator};
use crate::support::market::mirrored_clock;
use crate::support::recorder::Recorder;
use crate::support::{TEST_KEY, TestApp, alert_event_followers, eventually, test_config};

const BINARY: &str = env!("CARGO_BIN_EXE_monitoring-service");

/// One CLI run.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// The first line of stdout containing `needle`.
    fn line_with(&self, needle: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", self.stdout))
    }

    /// That line's cells (columns are two or more spaces apart).
    fn cells(&self, needle: &str) -> Vec<String> {
        cells(self.line_with(needle))
    }
}

fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The CLI with only the client's environment: no server setting at all.
fn command(url: &str, key: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .env("MONITORING_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(key) = key {
        command.env("MONITORING_API_KEY", key);
    }
    command
}

async fn run_with(url: &str, key: Option<&str>, args: &[&str]) -> Ran {
    let output = tokio::time::timeout(Duration::from_secs(60), command(url, key, args).output())
        .await
        .expect("the CLI answers within a minute")
        .unwrap();
    Ran {
        code: output.status.code().expect("the CLI exits, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn run(app: &TestApp, args: &[&str]) -> Ran {
    run_with(&app.url(""), Some(TEST_KEY), args).await
}

async fn tick(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post_json("/internal/engine/ticks", &body).await;
    assert_eq!(status, 202, "{answer}");
    answer
}

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

fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
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
        json!([{"name": "rule", "value": "heartbeat_lapsed", "is_regex": false},
               {"name": "engine_id", "value": "cli-.*", "is_regex": true}])
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
        bad.stderr.contains("expected name=value or name=~regex"),
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
    watched.stop().await.unwrap();
    other.stop().await.unwrap();
}

#[sqlx::test]
async fn monitors_run_reload_and_simulate(pool: PgPool) {
    let golden = Golden::load();
    let (sim, _, _) = golden_market(&golden).await;
    let (sma, _) = golden.last_two("sma", json!({"period": 20}), "value");
    let conditions = [
        indicator(
            json!({"indicator": "sma", "period": 20, "operator": "above", "value": sma - 1.0}),
        ),
        indicator(json!({"indicator": "rsi", "period": 14, "operator": "above", "value": 100})),
    ];
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &conditions, None).await;
    let binance = sim.binance_url();
    let config = test_config(false, &[("BINANCE_BASE_URL", &binance)]);
    let app = TestApp::spawn_with_clock(pool.clone(), config, mirrored_clock(&sim)).await;
    app.wait_ready().await;

    let monitors = run(&app, &["monitors"]).await;
    assert_eq!(monitors.code, 0, "{monitors:?}");
    assert_eq!(
        cells(monitors.stdout.lines().next().unwrap()),
        [
            "NAME",
            "HEALTH",
            "INTERVAL",
            "LAST RUN",
            "LAST STATUS",
            "NEXT RUN",
            "SNOOZED UNTIL"
        ]
    );
    assert_eq!(monitors.cells("expiry ")[2], "30s");
    let listed = run(&app, &["monitors", "--json"]).await.json();
    let names: Vec<&str> = listed["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"batch:1m") && names.contains(&"retention"),
        "{names:?}"
    );

    let ledger_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM monitor_ledger WHERE name = 'batch:1m'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = ledger_rows().await;
    let ran = run(&app, &["run", "batch:1m"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let row = ran.cells("batch:1m");
    assert_eq!((row[1].as_str(), row[3].as_str()), ("ok", "1"), "{ran:?}");
    assert_eq!(ledger_rows().await, before + 1);
    let unknown = run(&app, &["run", "nope"]).await;
    assert_eq!(unknown.code, 1);
    assert_eq!(
        unknown.stderr,
        "error: no monitor is named nope (not_found)\n"
    );

    let simulated = run(&app, &["simulate", &id.to_string()]).await;
    assert_eq!(simulated.code, 0, "{simulated:?}");
    let sma_row = simulated.cells("SMA(20)");
    assert_eq!(sma_row[0], "GOLDENUSDT 1m SMA(20)");
    let shown: f64 = sma_row[1].parse().unwrap();
    assert!((shown - sma).abs() < 1e-4, "{shown} vs TA-Lib {sma}");
    assert_eq!(sma_row[3], "true");
    let rsi_row = simulated.cells("RSI(14)");
    assert_eq!(
        (rsi_row[2].as_str(), rsi_row[3].as_str()),
        ("above 100", "false")
    );
    assert!(
        simulated.stdout.contains(&format!(
            "strategy {id} (active): FALSE, would trigger: no, suppressed by"
        )),
        "{}",
        simulated.stdout
    );
    let snapshot = run(&app, &["simulate", &id.to_string(), "--json"])
        .await
        .json();
    assert_eq!(snapshot["conditions"].as_array().unwrap().len(), 2);
    let missing = Uuid::new_v4();
    let ran = run(&app, &["simulate", &missing.to_string()]).await;
    assert_eq!(
        (ran.code, ran.stderr.clone()),
        (1, format!("error: no strategy {missing} (not_found)\n"))
    );
    let ran = run(&app, &["simulate", "not-a-uuid"]).await;
    assert_eq!(ran.code, 2);

    // A strategy that no longer compiles: reload names it and exits 1.
    let (broken, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &conditions[..1],
        Some(json!({"xor": []})),
    )
    .await;
    let ran = run(&app, &["reload", &broken.to_string()]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout
            .starts_with("reloaded 0, removed 0, 1 loaded, 1 invalid"),
        "{ran:?}"
    );
    assert_eq!(ran.cells(&broken.to_string())[0], broken.to_string());
    let ran = run(&app, &["reload", &id.to_string(), "--json"]).await;
    assert_eq!((ran.code, ran.json()["reloaded"].clone()), (0, json!(1)));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn metrics_and_notify_test(pool: PgPool) {
    let (recorder, address) = Recorder::start().await;
    recorder.script(
        "/broken",
        vec![(403, Vec::new(), r#"{"message": "revoked"}"#.into())],
    );
    let routes = json!({
        "CRITICAL": [{"type": "slack", "webhook_url": format!("http://{address}/ops")}],
        "WARNING": [{"type": "discord", "webhook_url": format!("http://{address}/broken")}],
    })
    .to_string();
    let config = test_config(
        false,
        &[
            ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
            ("OPS_ALERT_ROUTES", &routes),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;
    for (engine, daily) in [("cli-m1", 10.0), ("cli-m1", 20.5), ("cli-m2", -3.0)] {
        tick(
            &app,
            json!({"engine_id": engine, "pnl": {"daily": daily}, "positions": {"count": 2}}),
        )
        .await;
    }
    let ran = run(
        &app,
        &[
            "metrics",
            "--engine",
            "cli-m1",
            "--step",
            "1h",
            "--field",
            "pnl.daily",
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines[0], "cli-m1 (step 3600s, last value per step)");
    assert_eq!(cells(lines[1]), ["TIME", "pnl.daily"]);
    // One or two hourly steps (the ticks may straddle an hour): the last holds 20.5.
    assert_eq!(cells(lines.last().unwrap())[1], "20.5");
    let all = run(&app, &["metrics", "--json"]).await.json();
    let engines: Vec<&str> = all["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["engine_id"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["cli-m1", "cli-m2"]);
    let ran = run(&app, &["metrics", "--engine", "cli-m1", "--step", "1w"]).await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.starts_with("error: step:"), "{ran:?}");

    let ran = run(&app, &["notify-test", "--route", "critical"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.cells("slack")[..3], ["slack", "delivered", "1"]);
    assert_eq!(recorder.received("/ops").len(), 1);
    let ran = run(&app, &["notify-test", "--route", "WARNING"]).await;
    assert_eq!(ran.code, 1, "a failed delivery fails the command");
    let row = ran.cells("discord");
    assert_eq!(row[1], "failed");
    assert!(row[3].contains("403"), "{row:?}");
    let ran = run(&app, &["notify-test", "--route", "INFO"]).await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.ends_with("(not_found)\n"), "{ran:?}");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn unauthorized_unreachable_and_a_key_file(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ran = run_with(
        &app.url(""),
        Some("wrong-key-0123456789abcdef"),
        &["status"],
    )
    .await;
    assert_eq!(ran.code, 1);
    assert_eq!(ran.stdout, "");
    assert_eq!(
        ran.stderr,
        "error: unauthorized: the service refused the API key (set MONITORING_API_KEY or --key-file)\n"
    );
    let ran = run_with(&app.url(""), None, &["alerts"]).await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.starts_with("error: unauthorized"));

    // --key-file wins over the environment; the server accepts several keys, the
    // client sends the first.
    let dir = tempfile_dir();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let key_path = key_file.to_str().unwrap();
    let ran = run_with(
        &app.url(""),
        Some("wrong-key-0123456789abcdef"),
        &["alerts", "--key-file", key_path],
    )
    .await;
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (0, "no active alerts\n"),
        "{ran:?}"
    );
    let several = format!("{TEST_KEY},another-key-0123456789");
    assert_eq!(
        run_with(&app.url(""), Some(&several), &["alerts"])
            .await
            .code,
        0
    );

    let closed = closed_url();
    for args in [&["status"][..], &["tail"], &["alerts", "--json"]] {
        let ran = run_with(&closed, Some(TEST_KEY), args).await;
        assert_eq!(ran.code, 3, "{args:?}: {ran:?}");
        assert_eq!(
            ran.stderr,
            format!(
                "error: cannot reach the service at {closed}: Connection refused (os error 111)\n"
            )
        );
    }
    let ran = run_with("ftp://example.com", Some(TEST_KEY), &["status"]).await;
    assert_eq!(ran.code, 2);
    assert_eq!(
        ran.stderr,
        "error: --url ftp://example.com: must start with http:// or https://\n"
    );
    app.stop().await.unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An older server: it has the health route but not the engine overview or the
/// monitors, and answers unknown paths as this version does.
async fn older_server() -> String {
    let unknown = |path: &'static str| {
        get(move || async move {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "not_found", "message": "no such route", "path": path})),
            )
        })
    };
    let app = Router::new()
        .route(
            "/internal/health/system",
            get(|| async {
                axum::Json(
                    json!({"status": "DEGRADED", "timestamp": chrono::Utc::now(),
                    "critical_failures": [],
                    "checks": {"reports": {"status": "DOWN", "latency_ms": 1.0, "critical": false,
                                           "kind": "service", "error": "refused", "since": null}}}),
                )
            }),
        )
        .route("/internal/engines", unknown("/internal/engines"))
        .route("/internal/monitors", unknown("/internal/monitors"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test]
async fn an_older_server_is_named_as_such() {
    let url = older_server().await;
    let ran = run_with(&url, Some(TEST_KEY), &["health"]).await;
    assert_eq!(ran.code, 1, "DEGRADED: {ran:?}");
    assert!(
        ran.stdout
            .contains("engines: this server does not report them"),
        "{ran:?}"
    );
    assert_eq!(ran.cells("reports")[3], "DOWN");
    let ran = run_with(&url, Some(TEST_KEY), &["monitors"]).await;
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.stderr,
        "error: this server does not offer GET /internal/monitors (an older version?)\n"
    );
}

#[sqlx::test]
async fn colour_only_on_a_terminal_and_never_with_no_color(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    tick(
        &app,
        json!({"engine_id": "cli-colour", "risk": {"circuit_breaker_active": true}}),
    )
    .await;
    // `script` gives the CLI a terminal (util-linux, in every Debian).
    let on_terminal = |no_color: Option<&str>| {
        let mut command = tokio::process::Command::new("script");
        command
            .args(["-qec", &format!("{BINARY} alerts"), "/dev/null"])
            .env_clear()
            .env("MONITORING_URL", app.url(""))
            .env("MONITORING_API_KEY", TEST_KEY)
            .env("TERM", "xterm");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        command
    };
    let coloured = on_terminal(None).output().await.unwrap();
    let text = String::from_utf8_lossy(&coloured.stdout);
    assert!(text.contains("\x1b[31mCRITICAL\x1b[0m"), "{text:?}");
    let plain = on_terminal(Some("1")).output().await.unwrap();
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.contains("CRITICAL") && !text.contains('\x1b'),
        "{text:?}"
    );
    app.stop().await.unwrap();
}
