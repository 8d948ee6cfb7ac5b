//! Operational alerts' model and lifecycle (DESIGN §10) on the real Postgres: one
//! episode per fingerprint across replicas, resolve, clear and re-arm, acknowledge,
//! silences, and the routes' answers and 4xx.

use std::collections::BTreeMap;

use monitoring_service::ops_alerts::{OpsAlerts, Severity};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn raise(
    alerts: &OpsAlerts,
    rule: &str,
    labels: &BTreeMap<String, String>,
) -> (String, bool) {
    let outcome = alerts
        .raise(
            rule,
            labels,
            Severity::Critical,
            "Engine heartbeat lapsed",
            "no heartbeat for 90 s",
            &json!({"last_heartbeat_s": 90}),
        )
        .await
        .unwrap();
    (outcome.alert.alert_id, outcome.opened)
}

async fn rows(pool: &PgPool, rule: &str) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "SELECT alert_id, state, acknowledged FROM ops_alerts WHERE rule = $1 ORDER BY started_at",
    )
    .bind(rule)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_hundred_raises_on_two_replicas_are_one_episode(pool: PgPool) {
    let (a, b) = (OpsAlerts::new(pool.clone()), OpsAlerts::new(pool.clone()));
    let engine = labels(&[("engine", "eu-1"), ("component", "engine")]);
    let raises = (0..100).map(|i| {
        let (replica, engine) = (
            if i % 2 == 0 { a.clone() } else { b.clone() },
            engine.clone(),
        );
        tokio::spawn(async move { raise(&replica, "engine_heartbeat_lapsed", &engine).await })
    });
    let mut opened = 0;
    let mut ids = std::collections::BTreeSet::new();
    for raised in futures_util::future::join_all(raises).await {
        let (id, was_opened) = raised.unwrap();
        opened += usize::from(was_opened);
        ids.insert(id);
    }
    assert_eq!(opened, 1, "one raise opened the episode");
    assert_eq!(ids.len(), 1, "every raise saw the same alert");
    assert_eq!(rows(&pool, "engine_heartbeat_lapsed").await.len(), 1);
    // Labels in another order are the same alert; other labels another one.
    let reordered: BTreeMap<String, String> = engine.clone().into_iter().rev().collect();
    assert!(!raise(&a, "engine_heartbeat_lapsed", &reordered).await.1);
    let other = labels(&[("engine", "us-1"), ("component", "engine")]);
    assert!(raise(&a, "engine_heartbeat_lapsed", &other).await.1);
}

#[sqlx::test]
async fn resolve_closes_and_a_later_raise_opens_a_new_episode(pool: PgPool) {
    let alerts = OpsAlerts::new(pool.clone());
    let engine = labels(&[("engine", "eu-1")]);
    let (first, _) = raise(&alerts, "rule_a", &engine).await;
    let resolved = alerts.resolve("rule_a", &engine).await.unwrap().unwrap();
    assert_eq!(
        (resolved.alert_id.as_str(), resolved.state.as_str()),
        (first.as_str(), "resolved")
    );
    assert!(resolved.resolved_at.is_some());
    assert!(
        alerts.resolve("rule_a", &engine).await.unwrap().is_none(),
        "nothing firing"
    );
    let (second, opened) = raise(&alerts, "rule_a", &engine).await;
    assert!(opened && second != first);
    let states: Vec<String> = rows(&pool, "rule_a")
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(states, ["resolved", "firing"]);
}

#[sqlx::test]
async fn a_cleared_alert_is_re_armed_only_after_its_rule_stopped_holding(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let alerts = app.state.ops_alerts.clone();
    let engine = labels(&[("engine", "eu-1")]);
    let (id, _) = raise(&alerts, "rule_b", &engine).await;
    let (status, body) = app
        .internal(
            reqwest::Method::POST,
            &format!("/internal/alerts/{id}/clear"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cleared");
    // Still holding: the cleared episode is only touched.
    assert_eq!(raise(&alerts, "rule_b", &engine).await, (id.clone(), false));
    let (status, body) = app
        .internal(reqwest::Method::GET, "/internal/alerts/active")
        .await;
    assert_eq!((status, body["count"].clone()), (200, json!(0)), "{body}");
    // Seen not holding, then holding again: a new episode.
    assert!(alerts.resolve("rule_b", &engine).await.unwrap().is_none());
    let (again, opened) = raise(&alerts, "rule_b", &engine).await;
    assert!(opened && again != id);
    let (status, body) = app
        .internal(
            reqwest::Method::POST,
            &format!("/internal/alerts/{id}/clear"),
        )
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("alert_closed")),
        "{body}"
    );
    let (status, _) = app
        .internal(
            reqwest::Method::POST,
            "/internal/alerts/no-such-alert/clear",
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn an_acknowledged_alert_stays_active(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let alerts = app.state.ops_alerts.clone();
    let (id, _) = raise(&alerts, "rule_c", &labels(&[])).await;
    let (status, body) = app
        .internal(reqwest::Method::POST, &format!("/internal/alerts/{id}/ack"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["acknowledged"].clone(), body["state"].clone()),
        (json!(true), json!("firing"))
    );
    let (_, active) = app
        .internal(reqwest::Method::GET, "/internal/alerts/active")
        .await;
    let listed = &active["alerts"][0];
    assert_eq!(listed["alert_id"], id.as_str());
    assert_eq!(listed["acknowledged"], true);
    assert_eq!(listed["level"], "CRITICAL");
    assert_eq!(listed["details"], json!({"last_heartbeat_s": 90}));
    alerts.resolve("rule_c", &labels(&[])).await.unwrap();
    let (status, _) = app
        .internal(reqwest::Method::POST, &format!("/internal/alerts/{id}/ack"))
        .await;
    assert_eq!(status, 409, "resolved: nothing to acknowledge");
    app.stop().await.unwrap();
}

/// `DELETE path` with the key: the status.
async fn delete(app: &TestApp, path: &str) -> u16 {
    app.client
        .delete(app.url(path))
        .header("X-MONITORING-KEY", crate::support::TEST_KEY)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `POST /internal/silences` with `body`: status and answer.
async fn add_silence(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/internal/silences", &body).await
}

#[sqlx::test]
async fn a_silence_marks_matching_alerts_until_it_ends_or_is_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let alerts = app.state.ops_alerts.clone();
    let in_a_minute = chrono::Utc::now() + chrono::Duration::minutes(1);
    let (status, silence) = add_silence(
        &app,
        json!({"matchers": [{"name": "engine", "value": "eu-.*", "is_regex": true},
                            {"name": "severity", "value": "CRITICAL"}],
               "ends_at": in_a_minute, "comment": "maintenance"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    let silenced = |outcome: monitoring_service::ops_alerts::RaiseOutcome| outcome.alert.silenced;
    let raise_on = |engine: &'static str| {
        let alerts = alerts.clone();
        async move {
            alerts
                .raise(
                    "rule_d",
                    &labels(&[("engine", engine)]),
                    Severity::Critical,
                    "t",
                    "m",
                    &json!({}),
                )
                .await
                .unwrap()
        }
    };
    assert!(silenced(raise_on("eu-1").await), "recorded, silenced");
    assert!(!silenced(raise_on("us-1").await), "not matched");
    let (_, listed) = app
        .internal(reqwest::Method::GET, "/internal/silences")
        .await;
    assert_eq!(listed["silences"][0]["comment"], "maintenance");
    let id = silence["id"].as_str().unwrap();
    assert_eq!(delete(&app, &format!("/internal/silences/{id}")).await, 204);
    assert!(
        !silenced(raise_on("eu-2").await),
        "deleted: no longer silenced"
    );
    assert_eq!(delete(&app, &format!("/internal/silences/{id}")).await, 404);
    // One that ended does not silence.
    let (status, _) = add_silence(
        &app,
        json!({"matchers": [{"name": "rule", "value": "rule_d"}],
               "starts_at": chrono::Utc::now() - chrono::Duration::minutes(2),
               "ends_at": chrono::Utc::now() - chrono::Duration::minutes(1)}),
    )
    .await;
    assert_eq!(status, 201);
    assert!(!silenced(raise_on("eu-3").await), "ended");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn bad_silences_and_history_queries_are_400s_naming_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    for (body, names) in [
        (json!({"matchers": [], "ends_at": soon}), "matchers:"),
        (
            json!({"matchers": [{"name": "rule", "value": "(", "is_regex": true}], "ends_at": soon}),
            "matchers[0].value",
        ),
        (
            json!({"matchers": [{"name": "rule", "value": "x"}], "ends_at": chrono::Utc::now() - chrono::Duration::minutes(1)}),
            "ends_at",
        ),
        (
            json!({"matchers": [{"name": "rule", "value": "x"}]}),
            "ends_at",
        ),
        (json!({"matchers": "rule", "ends_at": soon}), "matchers:"),
        (
            json!({"matchers": [{"name": "rule", "value": "a\u{0}b"}], "ends_at": soon}),
            "matchers: must not contain a NUL",
        ),
        (
            json!({"matchers": [{"name": "rule", "value": "x"}], "ends_at": soon, "comment": "\u{0}"}),
            "comment: must not contain a NUL",
        ),
    ] {
        let (status, answer) = add_silence(&app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(names),
            "{body} → {answer}"
        );
    }
    for (query, names) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("severity=LOUD", "severity"),
        ("before=xyz", "before"),
        ("since=yesterday", "since"),
        ("component=e%00x", "component: must not contain a NUL"),
    ] {
        let (status, answer) = app
            .internal(
                reqwest::Method::GET,
                &format!("/internal/alerts/history?{query}"),
            )
            .await;
        assert_eq!(status, 400, "{query} → {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(names),
            "{query} → {answer}"
        );
    }
    assert_eq!(delete(&app, "/internal/silences/not-a-uuid").await, 400);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn history_pages_newest_first_without_overlap(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let alerts = app.state.ops_alerts.clone();
    for i in 0..5 {
        raise(&alerts, "rule_e", &labels(&[("n", &i.to_string())])).await;
    }
    raise(&alerts, "rule_other", &labels(&[])).await;
    let mut seen = Vec::new();
    let mut path = "/internal/alerts/history?limit=2&rule=rule_e".to_owned();
    loop {
        let (status, page) = app.internal(reqwest::Method::GET, &path).await;
        assert_eq!(status, 200, "{page}");
        for alert in page["alerts"].as_array().unwrap() {
            seen.push((
                alert["started_at"].as_str().unwrap().to_owned(),
                alert["labels"]["n"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_before"].as_str() {
            Some(cursor) => {
                path = format!("/internal/alerts/history?limit=2&rule=rule_e&before={cursor}")
            }
            None => break,
        }
    }
    let labels_seen: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        labels_seen,
        ["4", "3", "2", "1", "0"],
        "newest first, each once"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn every_event_is_a_json_line_and_a_raise_is_published_on_redis(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("alert-log-{}", uuid::Uuid::new_v4()));
    let log_dir = dir.join("nested"); // created by the writer
    let config = crate::support::test_config(true, &[("ALERT_LOG_DIR", log_dir.to_str().unwrap())]);
    let app = TestApp::spawn_with(pool, config).await;
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut subscription = client.get_async_pubsub().await.unwrap();
    subscription.subscribe("health.alert_raised").await.unwrap();
    let alerts = app.state.ops_alerts.clone();
    let rule = format!("rule_log_{}", uuid::Uuid::new_v4().simple());
    let (id, _) = raise(&alerts, &rule, &labels(&[("component", "engine")])).await;
    let (status, _) = app
        .internal(reqwest::Method::POST, &format!("/internal/alerts/{id}/ack"))
        .await;
    assert_eq!(status, 200);
    alerts
        .resolve(&rule, &labels(&[("component", "engine")]))
        .await
        .unwrap();

    // Published: the raise, on the shared Redis (other tests may publish theirs too).
    use futures_util::StreamExt;
    let mut messages = subscription.on_message();
    let published = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let message = messages.next().await.unwrap();
            let payload: Value =
                serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
            if payload["rule"] == rule.as_str() {
                return payload;
            }
        }
    })
    .await
    .expect("the raise was published");
    assert_eq!(published["event"], "raised");
    assert_eq!(published["alert_id"], id.as_str());

    let file = log_dir.join(format!("{}.jsonl", chrono::Utc::now().format("%Y-%m-%d")));
    let lines = crate::support::eventually(
        std::time::Duration::from_secs(10),
        "three log lines",
        || async {
            let text = std::fs::read_to_string(&file).ok()?;
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (lines.len() == 3).then_some(lines)
        },
    )
    .await;
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["raised", "acknowledged", "resolved"]);
    for line in &lines {
        for field in [
            "timestamp",
            "severity",
            "rule",
            "message",
            "context",
            "acknowledged",
            "alert_id",
            "event",
            "component",
        ] {
            assert!(!line[field].is_null(), "{field} in {line}");
        }
        assert_eq!(line["alert_id"], id.as_str());
        assert_eq!(line["component"], "engine");
    }
    assert_eq!(lines[1]["acknowledged"], true);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .contains(r#"monitoring_ops_alert_events_total{event="raised",severity="CRITICAL"}"#)
    );
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn a_log_directory_that_cannot_be_written_never_stops_a_raise(pool: PgPool) {
    // A regular file where the directory should be: nothing can be created under it.
    let blocker = std::env::temp_dir().join(format!("alert-log-file-{}", uuid::Uuid::new_v4()));
    std::fs::write(&blocker, "not a directory").unwrap();
    let config = crate::support::test_config(
        true,
        &[("ALERT_LOG_DIR", blocker.join("logs").to_str().unwrap())],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let alerts = app.state.ops_alerts.clone();
    for i in 0..3 {
        let (_, opened) = raise(&alerts, "rule_disk", &labels(&[("n", &i.to_string())])).await;
        assert!(opened, "recorded in Postgres whatever the disk does");
    }
    assert_eq!(rows(&pool, "rule_disk").await.len(), 3);
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the failures counted",
        || async {
            let metrics = app.get("/metrics").await.text().await.unwrap();
            metrics
                .contains("monitoring_alert_log_errors_total 3")
                .then_some(())
        },
    )
    .await;
    app.stop().await.unwrap();
    let _ = std::fs::remove_file(blocker);
}

#[sqlx::test]
async fn retention_removes_old_closed_episodes_and_old_log_files(pool: PgPool) {
    let alerts = OpsAlerts::new(pool.clone());
    let (old, _) = raise(&alerts, "rule_old", &labels(&[])).await;
    alerts.resolve("rule_old", &labels(&[])).await.unwrap();
    sqlx::query("UPDATE ops_alerts SET started_at = now() - interval '100 days', resolved_at = now() - interval '95 days' WHERE alert_id = $1")
        .bind(&old)
        .execute(&pool)
        .await
        .unwrap();
    let (recent, _) = raise(&alerts, "rule_recent", &labels(&[])).await;
    alerts.resolve("rule_recent", &labels(&[])).await.unwrap();
    let (firing, _) = raise(&alerts, "rule_firing", &labels(&[])).await;
    sqlx::query(
        "UPDATE ops_alerts SET started_at = now() - interval '200 days' WHERE alert_id = $1",
    )
    .bind(&firing)
    .execute(&pool)
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("alert-retention-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let today = chrono::Utc::now().date_naive();
    let day = |ago: i64| {
        dir.join(format!(
            "{}.jsonl",
            (today - chrono::Duration::days(ago)).format("%Y-%m-%d")
        ))
    };
    for ago in [0, 89, 90, 91, 400] {
        std::fs::write(day(ago), "{}\n").unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "kept").unwrap();
    // Old stream events and messages go with them.
    sqlx::query(
        "UPDATE ops_alert_events SET recorded_at = now() - interval '95 days' WHERE alert_id = $1",
    )
    .bind(&old)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO ops_alert_notifications (severity, kind, alert_ids, claimed_until, sent_at, created_at)
         VALUES ('CRITICAL', 'firing', ARRAY[$1], now(), now(), now() - interval '95 days'),
                ('CRITICAL', 'firing', ARRAY[$2], now(), now(), now())",
    )
    .bind(&old)
    .bind(&recent)
    .execute(&pool)
    .await
    .unwrap();
    let removed = alerts.apply_retention(90, Some(&dir)).await.unwrap();
    assert_eq!(removed, 1);
    let events: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT alert_id FROM ops_alert_events ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected = vec![firing.clone(), recent.clone()];
    expected.sort();
    assert_eq!(events, expected, "the old episode's events removed");
    let messages: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT alert_ids FROM ops_alert_notifications")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(messages, [vec![recent.clone()]]);
    let left: Vec<String> = sqlx::query_scalar("SELECT alert_id FROM ops_alerts ORDER BY rule")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        [firing, recent],
        "a firing episode is kept however old"
    );
    for (ago, kept) in [(0, true), (89, true), (90, true), (91, false), (400, false)] {
        assert_eq!(day(ago).exists(), kept, "{ago} days ago");
    }
    assert!(dir.join("notes.txt").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn system_status_follows_the_platform_status(pool: PgPool) {
    use monitoring_service::ops_alerts::PlatformStatus;
    let alerts = OpsAlerts::new(pool.clone());
    let firing = || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT severity, state FROM ops_alerts WHERE rule = 'system_status' AND state = 'firing'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let context = json!({"failing": ["redis"]});
    let degraded = alerts
        .follow_system_status(PlatformStatus::Degraded, &context)
        .await
        .unwrap()
        .unwrap();
    assert!(degraded.opened);
    assert_eq!(degraded.alert.component, "platform");
    // Still degraded: the same episode.
    let again = alerts
        .follow_system_status(PlatformStatus::Degraded, &context)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.opened, &again.alert.alert_id),
        (false, &degraded.alert.alert_id)
    );
    assert_eq!(
        firing().await,
        [("WARNING".to_owned(), "firing".to_owned())]
    );
    alerts
        .follow_system_status(PlatformStatus::Critical, &context)
        .await
        .unwrap();
    assert_eq!(
        firing().await,
        [("CRITICAL".to_owned(), "firing".to_owned())]
    );
    assert!(
        alerts
            .follow_system_status(PlatformStatus::Ok, &json!({}))
            .await
            .unwrap()
            .is_none()
    );
    assert!(firing().await.is_empty());
    let resolved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ops_alerts WHERE rule = 'system_status' AND state = 'resolved'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(resolved, 2, "the WARNING and the CRITICAL episodes");
}
