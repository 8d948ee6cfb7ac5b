//! amtool 0.25 (Debian's `prometheus-alertmanager`) against the service, as child
//! processes carrying the key as a bearer token through `--http.config.file`: alerts
//! added and queried with a filter, silences added, queried and expired — their
//! printed tables asserted.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use super::am;
use crate::support::{TEST_KEY, TestApp};

/// amtool's output (stdout) and whether it succeeded, against `app` with `key`.
async fn amtool(app: &TestApp, key: &str, args: &[&str]) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("amtool-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let http_config = dir.join("http.yml");
    std::fs::write(
        &http_config,
        format!("authorization:\n  credentials: {key}\n"),
    )
    .unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("amtool")
            .arg(format!("--alertmanager.url={}", app.url("")))
            .arg(format!("--http.config.file={}", http_config.display()))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("amtool finishes")
    .expect("amtool runs (Debian's prometheus-alertmanager; scripts/services.sh installs it)");
    std::fs::remove_dir_all(&dir).ok();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The rows of one of amtool's tables (header dropped), split on runs of spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[sqlx::test]
async fn amtool_adds_and_queries_alerts_and_works_silences(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let run = |args: Vec<&str>| {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out, err) = amtool(app, TEST_KEY, &args).await;
            assert!(ok, "amtool {args:?} failed: {err}");
            out
        }
    };
    run(vec![
        "alert",
        "add",
        "HighLatency",
        "severity=critical",
        "service=api",
        "--annotation=summary=p99 over 1s",
    ])
    .await;
    run(vec![
        "alert",
        "add",
        "DiskFull",
        "severity=warning",
        "service=db",
        "--annotation=summary=disk 95%",
    ])
    .await;

    let all = rows(&run(vec!["alert", "query"]).await);
    let names: Vec<&str> = all.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names.len(), 2, "{all:?}");
    assert!(names.contains(&"HighLatency") && names.contains(&"DiskFull"));
    let critical = rows(&run(vec!["alert", "query", "severity=~\"crit.*\""]).await);
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert_eq!(critical[0][0], "HighLatency");
    assert_eq!(critical[0][2], "p99 over 1s");
    assert_eq!(critical[0][3], "active");
    let not_db = rows(&run(vec!["alert", "query", "service!=db"]).await);
    assert_eq!(
        not_db.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["HighLatency"]
    );

    // The alert is an episode of ours, with its severity mapped.
    let severity: String =
        sqlx::query_scalar("SELECT severity FROM ops_alerts WHERE rule = 'HighLatency'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(severity, "CRITICAL");

    // A silence: printed id, listed, hides the alert from the default query.
    let id = run(vec![
        "silence",
        "add",
        "alertname=HighLatency",
        "--comment=deploy",
        "--author=ops",
        "--duration=2h",
    ])
    .await
    .trim()
    .to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "amtool prints the new id: {id:?}"
    );
    let silences = rows(&run(vec!["silence", "query"]).await);
    assert_eq!(silences.len(), 1, "{silences:?}");
    assert_eq!(silences[0][0], id);
    assert_eq!(silences[0][1], "alertname=\"HighLatency\"");
    assert_eq!(&silences[0][3..], ["ops", "deploy"]);
    let visible = rows(&run(vec!["alert", "query"]).await);
    assert_eq!(
        visible.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["DiskFull"]
    );
    let silenced = rows(&run(vec!["alert", "query", "--silenced"]).await);
    assert_eq!(silenced.len(), 1);
    assert_eq!(
        (silenced[0][0].as_str(), silenced[0][3].as_str()),
        ("HighLatency", "suppressed")
    );
    let (_, ours) = app.internal(Method::GET, "/internal/silences").await;
    assert_eq!(ours["silences"][0]["id"], id.as_str(), "one table");

    // Expired: gone from the query, listed with --expired, the alert visible again.
    run(vec!["silence", "expire", &id]).await;
    assert!(rows(&run(vec!["silence", "query"]).await).is_empty());
    let expired = rows(&run(vec!["silence", "query", "--expired"]).await);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0][0], id);
    assert_eq!(rows(&run(vec!["alert", "query"]).await).len(), 2);
    let (_, alerts) = am(&app, Method::GET, "/alerts", None).await;
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"]["state"] == json!("active"))
    );
}

#[sqlx::test]
async fn amtool_with_a_wrong_key_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ok, _, err) = amtool(
        &app,
        "wrong-key-0123456789abcdef",
        &["alert", "add", "Nope"],
    )
    .await;
    assert!(!ok, "refused");
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ops_alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
