//! The operator CLI's operations against real servers, as a child process with only
//! the client's environment: `monitors`, `run`, `reload`, `simulate`, `metrics`,
//! `notify-test`, unauthorized and unreachable, a key file, an older server, and
//! colour only on a terminal.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::cli_runner::{BINARY, cells, closed_url, run, run_with, tick};
use crate::support::golden_market::{Golden, golden_market, indicator};
use crate::support::market::mirrored_clock;
use crate::support::process::profile_env;
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{TEST_KEY, TestApp, test_config};

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
    // `status` now shows that batch, the cache and the source that answered it.
    let status = run(&app, &["status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let bucket = cells(
        status
            .stdout
            .lines()
            .find(|line| line.starts_with("1m "))
            .unwrap_or_else(|| panic!("no 1m batch in:\n{}", status.stdout)),
    );
    assert_eq!(
        [&bucket[..2], &bucket[4..7]].concat(),
        ["1m", "1", "ok", "1", "0"],
        "{}",
        status.stdout
    );
    assert!(bucket[7].ends_with(" ms"), "{bucket:?}");
    assert!(status.stdout.contains("market-data cache hit rate "));
    let binance = status.cells("binance ");
    assert_eq!(
        (binance[1].as_str(), binance[4].as_str()),
        ("ok", "0"),
        "{binance:?}"
    );
    let unknown = run(&app, &["run", "nope"]).await;
    assert_eq!(unknown.code, 1);
    assert_eq!(
        unknown.stderr,
        "error: no monitor is named nope (not_found)\n"
    );
    // `run all`: one row per monitor listed, each run once.
    let before = ledger_rows().await;
    let all = run(&app, &["run", "all"]).await;
    assert_eq!(all.code, 0, "{all:?}");
    let mut ran: Vec<&str> = all
        .stdout
        .lines()
        .skip(1)
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    ran.sort_unstable();
    let mut listed_names = names.clone();
    listed_names.sort_unstable();
    assert_eq!(ran, listed_names, "{all:?}");
    assert_eq!(all.cells("batch:1m")[1], "ok", "{all:?}");
    assert_eq!(ledger_rows().await, before + 1);

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
            .envs(profile_env())
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
