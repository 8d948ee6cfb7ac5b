//! Monitors (DESIGN §13) on a running service: each built-in monitor run by name
//! leaves its ledger and heartbeat rows; a run never overlaps its predecessor (409,
//! a `skipped` row); a panicking monitor is recorded while the others go on; a live
//! interval change (PATCH, and a plain SQL UPDATE) shows in the spacing of the runs;
//! snooze and disable; a singleton on two replicas runs once per cycle; and each
//! route's errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use monitoring_service::monitors::{Cadence, Monitor, Outcome, RunError, RunReport, Trigger};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, price_above};
use crate::support::{TEST_KEY, TestApp, eventually, test_config};

/// A monitor for the tests: counts its runs; panics when asked to; waits for `release`
/// when given one.
struct Probe {
    name: String,
    every: Duration,
    singleton: bool,
    panics: bool,
    runs: Arc<AtomicUsize>,
    release: Option<Arc<Notify>>,
}

impl Probe {
    fn every(name: &str, seconds: u64) -> Self {
        Self {
            name: name.to_owned(),
            every: Duration::from_secs(seconds),
            singleton: false,
            panics: false,
            runs: Arc::default(),
            release: None,
        }
    }
}

impl Monitor for Probe {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(self.every)
    }

    fn singleton(&self) -> bool {
        self.singleton
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            assert!(!self.panics, "boom");
            if let Some(release) = &self.release {
                release.notified().await;
            }
            Ok(Outcome::Ran(RunReport::ok(json!({"probe": true}))))
        })
    }
}

async fn ledger(pool: &PgPool, name: &str) -> Vec<(DateTime<Utc>, String, Value)> {
    sqlx::query_as(
        "SELECT started_at, status, details FROM monitor_ledger WHERE name = $1 ORDER BY id",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("X-MONITORING-KEY", TEST_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    (
        answer.status().as_u16(),
        answer.json().await.unwrap_or_default(),
    )
}

async fn listed(app: &TestApp, name: &str) -> Option<Value> {
    let (_, body) = request(app, reqwest::Method::GET, "/internal/monitors", None).await;
    body["monitors"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

#[sqlx::test]
async fn each_monitor_run_by_name_leaves_its_ledger_and_heartbeat_rows(pool: PgPool) {
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    sqlx::query("UPDATE strategies SET frequency = '1m' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let config = test_config(false, &[("HEALTH_CHECK_INTERVAL", "3600")]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.wait_ready().await;
    let names = [
        "batch:1m",
        "candle_retention",
        "expiry",
        "ops_rules",
        "platform_health",
        "retention",
    ];
    eventually(Duration::from_secs(10), "every monitor listed", || async {
        let (_, body) = request(&app, reqwest::Method::GET, "/internal/monitors", None).await;
        let listed: Vec<String> = body["monitors"]
            .as_array()?
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        (listed == names).then_some(())
    })
    .await;
    for name in names {
        let path = format!("/internal/monitors/{name}/run");
        let (status, row) = request(&app, reqwest::Method::POST, &path, None).await;
        assert_eq!(status, 200, "{name}: {row}");
        assert_eq!(row["name"], name, "{row}");
        let expected = if name == "batch:1m" { "partial" } else { "ok" };
        assert_eq!(row["status"], expected, "{name}: {row}");
        // Its row, as stored (scheduled runs may add others meanwhile).
        let stored: (String, String) =
            sqlx::query_as("SELECT name, status FROM monitor_ledger WHERE id = $1")
                .bind(row["id"].as_i64().unwrap())
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored, (name.to_owned(), expected.to_owned()));
        let heartbeat: (Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
            "SELECT last_run, last_status FROM monitor_heartbeat WHERE monitor_name = $1",
        )
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(heartbeat.0.is_some(), "{name}");
        assert_eq!(heartbeat.1.as_deref(), Some(expected), "{name}");
        let view = listed(&app, name).await.unwrap();
        assert_eq!(view["last_status"], expected, "{view}");
    }
    let (_, health) = request(
        &app,
        reqwest::Method::POST,
        "/internal/monitors/platform_health/run",
        None,
    )
    .await;
    assert!(health["details"]["system_status"].is_string(), "{health}");
    // `all` runs every one of them.
    let (status, all) = request(
        &app,
        reqwest::Method::POST,
        "/internal/monitors/all/run",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ran: Vec<&str> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ledger"].is_object())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(ran, names, "{all}");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_run_never_overlaps_its_predecessor(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let release = Arc::new(Notify::new());
    let probe = Probe {
        release: Some(release.clone()),
        ..Probe::every("slow_probe", 3600)
    };
    let runs = probe.runs.clone();
    // Never run: the schedule runs it as soon as it registers its job, and that run
    // waits for `release`.
    app.state.monitors.register(Arc::new(probe)).await;
    eventually(Duration::from_secs(10), "the first run started", || async {
        (runs.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let (status, body) = request(
        &app,
        reqwest::Method::POST,
        "/internal/monitors/slow_probe/run",
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(listed(&app, "slow_probe").await.unwrap()["running"], true);
    // A scheduled run meanwhile is skipped, with its ledger row.
    let scheduled = app
        .state
        .monitors
        .run("slow_probe", Trigger::Scheduled(None))
        .await;
    assert!(
        matches!(scheduled, Err(RunError::Running(_))),
        "{scheduled:?}"
    );
    release.notify_one();
    let statuses = eventually(
        Duration::from_secs(10),
        "the first run recorded",
        || async {
            let statuses: Vec<String> = ledger(&pool, "slow_probe")
                .await
                .into_iter()
                .map(|r| r.1)
                .collect();
            (statuses.len() == 2).then_some(statuses)
        },
    )
    .await;
    assert_eq!(statuses, ["skipped", "ok"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never two at once");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_panicking_monitor_is_recorded_while_the_others_go_on(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let panicky = Probe {
        panics: true,
        ..Probe::every("panicky", 1)
    };
    let steady = Probe::every("steady", 1);
    app.state.monitors.register(Arc::new(panicky)).await;
    app.state.monitors.register(Arc::new(steady)).await;
    eventually(
        Duration::from_secs(20),
        "two failed runs and two good ones",
        || async {
            let failed = ledger(&pool, "panicky").await;
            let good = ledger(&pool, "steady").await;
            (failed.len() >= 2 && good.len() >= 2).then_some(())
        },
    )
    .await;
    for (_, status, details) in ledger(&pool, "panicky").await {
        assert_eq!(status, "failed");
        assert_eq!(details["error"], "panicked: boom");
    }
    assert!(ledger(&pool, "steady").await.iter().all(|r| r.1 == "ok"));
    assert_eq!(listed(&app, "panicky").await.unwrap()["health"], "error");
    assert_eq!(listed(&app, "steady").await.unwrap()["health"], "ok");
    assert_eq!(
        reqwest::get(app.url("/health")).await.unwrap().status(),
        200
    );
    app.stop().await.unwrap();
}

/// The gaps, in seconds, between consecutive runs of `name` that started after `after`.
async fn gaps(pool: &PgPool, name: &str, after: DateTime<Utc>) -> Vec<f64> {
    let starts: Vec<DateTime<Utc>> = ledger(pool, name)
        .await
        .into_iter()
        .map(|r| r.0)
        .filter(|at| *at > after)
        .collect();
    starts
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0)
        .collect()
}

#[sqlx::test]
async fn a_live_interval_change_shows_in_the_spacing_of_the_runs(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.wait_ready().await;
    // PATCH: every 4 s.
    let (status, view) = request(
        &app,
        reqwest::Method::PATCH,
        "/internal/monitors/expiry",
        Some(json!({"interval_seconds": 4})),
    )
    .await;
    assert_eq!(
        (status, view["interval_seconds"].as_i64()),
        (200, Some(4)),
        "{view}"
    );
    let patched = Utc::now();
    let slow = eventually(Duration::from_secs(40), "three runs 4 s apart", || async {
        let gaps = gaps(&pool, "expiry", patched).await;
        (gaps.len() >= 2).then_some(gaps)
    })
    .await;
    // A plain SQL UPDATE, as an operator might: every second.
    sqlx::query("UPDATE monitor_heartbeat SET interval_seconds = 1 WHERE monitor_name = 'expiry'")
        .execute(&pool)
        .await
        .unwrap();
    let updated = Utc::now();
    let fast = eventually(Duration::from_secs(30), "runs a second apart", || async {
        let gaps = gaps(&pool, "expiry", updated).await;
        (gaps.len() >= 3).then_some(gaps)
    })
    .await;
    let slowest_fast = fast.iter().copied().fold(0.0, f64::max);
    let fastest_slow = slow.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        slowest_fast < fastest_slow,
        "every 1 s: {fast:?}; every 4 s: {slow:?}"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn snoozed_and_disabled_monitors_do_not_run_until_woken(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let sleeper = Probe::every("sleeper", 1);
    let sleeper_runs = sleeper.runs.clone();
    let marker = Probe::every("marker", 1);
    let marker_runs = marker.runs.clone();
    app.state.monitors.register(Arc::new(sleeper)).await;
    app.state.monitors.register(Arc::new(marker)).await;
    eventually(
        Duration::from_secs(10),
        "the sleeper's first run",
        || async { (sleeper_runs.load(Ordering::SeqCst) >= 1).then_some(()) },
    )
    .await;
    let path = "/internal/monitors/sleeper";
    for (change, badge) in [
        (json!({"enabled": false}), "disabled"),
        (
            json!({"enabled": true, "snoozed_until": "2099-01-01T00:00:00Z"}),
            "snoozed",
        ),
    ] {
        let (status, view) = request(&app, reqwest::Method::PATCH, path, Some(change)).await;
        assert_eq!(
            (status, view["health"].as_str()),
            (200, Some(badge)),
            "{view}"
        );
        assert_eq!(view["next_run"], Value::Null);
        // A run already fired may still be finishing: count from here.
        let (asleep, marked) = (
            sleeper_runs.load(Ordering::SeqCst),
            marker_runs.load(Ordering::SeqCst),
        );
        eventually(Duration::from_secs(20), "three marker runs", || async {
            (marker_runs.load(Ordering::SeqCst) >= marked + 3).then_some(())
        })
        .await;
        assert!(
            sleeper_runs.load(Ordering::SeqCst) <= asleep + 1,
            "{badge}: it ran on"
        );
        let still = sleeper_runs.load(Ordering::SeqCst);
        eventually(
            Duration::from_secs(20),
            "three more marker runs",
            || async { (marker_runs.load(Ordering::SeqCst) >= marked + 6).then_some(()) },
        )
        .await;
        assert_eq!(
            sleeper_runs.load(Ordering::SeqCst),
            still,
            "{badge}: it ran on"
        );
    }
    let (status, view) = request(
        &app,
        reqwest::Method::PATCH,
        path,
        Some(json!({"snoozed_until": null})),
    )
    .await;
    assert_eq!(
        (status, view["health"].as_str()),
        (200, Some("stale")),
        "{view}"
    );
    // Woken, and not run for more than two intervals: stale until its next run.
    let woken = sleeper_runs.load(Ordering::SeqCst);
    eventually(Duration::from_secs(20), "running again", || async {
        (sleeper_runs.load(Ordering::SeqCst) >= woken + 2).then_some(())
    })
    .await;
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_singleton_on_two_replicas_runs_once_per_cycle(pool: PgPool) {
    let (a, b) = (
        TestApp::spawn(pool.clone()).await,
        TestApp::spawn(pool.clone()).await,
    );
    let runs = Arc::new(AtomicUsize::new(0));
    for app in [&a, &b] {
        let probe = Probe {
            singleton: true,
            runs: runs.clone(),
            ..Probe::every("only_once", 1)
        };
        app.state.monitors.register(Arc::new(probe)).await;
    }
    let since = Utc::now();
    eventually(Duration::from_secs(30), "eight cycles", || async {
        (ledger(&pool, "only_once").await.len() >= 8).then_some(())
    })
    .await;
    let elapsed = (Utc::now() - since).num_milliseconds() as f64 / 1000.0;
    let rows = ledger(&pool, "only_once").await;
    // Both replicas fire every second; each cycle (a second since the epoch) runs
    // once: no more runs than the seconds the test spanned touched.
    assert!(
        (rows.len() as f64) <= elapsed.floor() + 2.0,
        "{} runs in {elapsed} s",
        rows.len()
    );
    for pair in rows.windows(2) {
        let apart = (pair[1].0 - pair[0].0).num_milliseconds();
        assert!(apart >= 400, "two runs {apart} ms apart");
    }
    assert_eq!(runs.load(Ordering::SeqCst), rows.len());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[sqlx::test]
async fn the_routes_refuse_what_they_cannot_do(pool: PgPool) {
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    sqlx::query("UPDATE strategies SET frequency = '5m' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.wait_ready().await;
    eventually(Duration::from_secs(10), "the bucket listed", || async {
        listed(&app, "batch:5m").await.map(drop)
    })
    .await;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    let (status, body) = request(&app, post, "/internal/monitors/nope/run", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = request(
        &app,
        patch.clone(),
        "/internal/monitors/nope",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 404);
    for (name, change, field) in [
        (
            "batch:5m",
            json!({"interval_seconds": 60}),
            "interval_seconds",
        ),
        ("expiry", json!({"interval_seconds": 0}), "interval_seconds"),
        (
            "expiry",
            json!({"interval_seconds": -5}),
            "interval_seconds",
        ),
        (
            "expiry",
            json!({"interval_seconds": 86_401}),
            "interval_seconds",
        ),
        (
            "expiry",
            json!({"interval_seconds": "10"}),
            "interval_seconds",
        ),
        (
            "expiry",
            json!({"interval_seconds": 1.5}),
            "interval_seconds",
        ),
        ("expiry", json!({"enabled": "yes"}), "enabled"),
        (
            "expiry",
            json!({"snoozed_until": "tomorrow"}),
            "snoozed_until",
        ),
        ("expiry", json!({"cadence": 1}), "cadence"),
    ] {
        let path = format!("/internal/monitors/{name}");
        let (status, body) = request(&app, patch.clone(), &path, Some(change.clone())).await;
        assert_eq!(status, 400, "{change}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{change}: {body}"
        );
    }
    let answer = app
        .client
        .patch(app.url("/internal/monitors/expiry"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Nothing was changed by the refused requests.
    let interval: Option<i32> = sqlx::query_scalar(
        "SELECT interval_seconds FROM monitor_heartbeat WHERE monitor_name = 'expiry'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(interval, Some(30));
    // The bucket takes enabled and snoozed_until.
    let (status, view) = request(
        &app,
        patch,
        "/internal/monitors/batch:5m",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(
        (status, view["health"].as_str()),
        (200, Some("disabled")),
        "{view}"
    );
    let (status, _) = request(&app, reqwest::Method::GET, "/internal/monitors", None).await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}
