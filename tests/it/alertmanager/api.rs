//! `/api/v2/*` over HTTP: posted alerts become episodes (one per fingerprint, one
//! `raised` event however often and from however many replicas they are re-sent),
//! resolve by `endsAt` or by not being re-sent, show with our own alerts, are silenced
//! by silences made through either API; and bad input is a 400 naming the field.

use std::collections::BTreeMap;
use std::time::Duration;

use monitoring_service::ops_alerts::{OpsAlerts, Severity};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{am, episodes};
use crate::support::{TEST_KEY, TestApp, eventually, test_config};

fn alert(name: &str, extra: Value) -> Value {
    let mut labels = json!({"alertname": name, "severity": "critical", "instance": "db-1"});
    if let (Some(labels), Some(extra)) = (labels.as_object_mut(), extra.as_object()) {
        labels.extend(extra.clone());
    }
    json!({"labels": labels, "annotations": {"summary": format!("{name} fired"),
                                            "description": "details"}})
}

#[sqlx::test]
async fn re_posts_refresh_one_episode_with_one_event(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let body = json!([
        alert("DiskFull", json!({})),
        alert("DiskFull", json!({"instance": "db-2"}))
    ]);
    let last_seen = || async {
        let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "SELECT last_seen_at FROM ops_alerts WHERE labels->>'instance' = 'db-1'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        at
    };
    assert_eq!(
        am(&app, Method::POST, "/alerts", Some(body.clone()))
            .await
            .0,
        200
    );
    let first = last_seen().await;
    let mut before_last = first;
    for _ in 0..4 {
        before_last = chrono::Utc::now();
        assert_eq!(
            am(&app, Method::POST, "/alerts", Some(body.clone()))
                .await
                .0,
            200
        );
    }
    // Re-sends are written behind, within a second.
    eventually(
        Duration::from_secs(10),
        "the re-sends' last_seen_at",
        || async { (last_seen().await >= before_last).then_some(()) },
    )
    .await;
    assert!(before_last > first);
    let (states, events) = episodes(&pool, "DiskFull").await;
    assert_eq!(states, ["firing", "firing"], "two label sets, two episodes");
    assert_eq!(events, ["raised", "raised"]);
    // The mapping: severity, title, message, component, labels and annotations kept.
    let row: (String, String, String, String, Value, Value) = sqlx::query_as(
        "SELECT severity, title, message, component, labels, annotations FROM ops_alerts
          WHERE labels->>'instance' = 'db-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "CRITICAL".to_owned(),
            "DiskFull fired".to_owned(),
            "details".to_owned(),
            "external".to_owned(),
            json!({"alertname": "DiskFull", "severity": "critical", "instance": "db-1"}),
            json!({"summary": "DiskFull fired", "description": "details"})
        )
    );
    // And the internal routes list it like any other alert.
    let (status, active) = app.internal(Method::GET, "/internal/alerts/active").await;
    assert_eq!(status, 200);
    assert_eq!(active["count"], 2);
}

#[sqlx::test]
async fn two_replicas_taking_the_same_alerts_at_once_open_one_episode(pool: PgPool) {
    let (a, b) = (
        TestApp::spawn(pool.clone()).await,
        TestApp::spawn(pool.clone()).await,
    );
    let body = json!(
        (0..20)
            .map(|i| alert("Replicated", json!({"instance": format!("db-{i}")})))
            .collect::<Vec<_>>()
    );
    let posts = (0..10).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        am(app, Method::POST, "/alerts", Some(body.clone()))
    });
    for (status, _) in futures_util::future::join_all(posts).await {
        assert_eq!(status, 200);
    }
    let (states, events) = episodes(&pool, "Replicated").await;
    assert_eq!(states.len(), 20, "one episode per label set");
    assert_eq!(events.len(), 20, "one raised event each: {events:?}");
}

#[sqlx::test]
async fn a_past_ends_at_resolves_and_silence_of_resends_resolves_by_the_end(pool: PgPool) {
    let config = test_config(true, &[("ALERT_RESOLVE_TIMEOUT_SECONDS", "1")]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let now = chrono::Utc::now();
    // Resolved by an endsAt in the past (what Prometheus sends when a rule stops).
    let firing = json!([alert("Explicit", json!({}))]);
    am(&app, Method::POST, "/alerts", Some(firing)).await;
    let mut ended = alert("Explicit", json!({}));
    ended["endsAt"] = json!((now - chrono::Duration::seconds(1)).to_rfc3339());
    assert_eq!(
        am(&app, Method::POST, "/alerts", Some(json!([ended.clone()])))
            .await
            .0,
        200
    );
    assert_eq!(
        episodes(&pool, "Explicit").await,
        (
            vec!["resolved".to_owned()],
            vec!["raised".to_owned(), "resolved".to_owned()]
        )
    );
    // Re-sending the resolution changes nothing.
    am(&app, Method::POST, "/alerts", Some(json!([ended]))).await;
    assert_eq!(episodes(&pool, "Explicit").await.1.len(), 2);

    // Not re-sent: resolved at its endsAt (here 1 s, the configured resolve timeout).
    am(
        &app,
        Method::POST,
        "/alerts",
        Some(json!([alert("Silent", json!({}))])),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the unsent alert to resolve",
        || async { (episodes(&pool, "Silent").await.0 == ["resolved"]).then_some(()) },
    )
    .await;
    let (resolved_at, ends_at): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT resolved_at, ends_at FROM ops_alerts WHERE rule = 'Silent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        resolved_at, ends_at,
        "resolved at its end, not when the sweep ran"
    );
    assert_eq!(episodes(&pool, "Silent").await.1, ["raised", "resolved"]);
    // Posted again later: a new episode.
    am(
        &app,
        Method::POST,
        "/alerts",
        Some(json!([alert("Silent", json!({}))])),
    )
    .await;
    assert_eq!(episodes(&pool, "Silent").await.0, ["resolved", "firing"]);
}

#[sqlx::test]
async fn our_alerts_and_posted_ones_list_together_and_filters_select(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ours = OpsAlerts::new(pool.clone());
    ours.raise(
        "dependency_down",
        &BTreeMap::from([("dependency".to_owned(), "redis".to_owned())]),
        Severity::Critical,
        "Redis down",
        "no answer",
        &json!({}),
    )
    .await
    .unwrap();
    let mut info = alert("Info", json!({"severity": "info"}));
    info["generatorURL"] = json!("http://prometheus:9090/graph?g0.expr=up");
    am(
        &app,
        Method::POST,
        "/alerts",
        Some(json!([alert("HighLatency", json!({})), info])),
    )
    .await;

    let names = |alerts: &Value| -> Vec<String> {
        let mut names: Vec<String> = alerts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let (status, all) = am(&app, Method::GET, "/alerts", None).await;
    assert_eq!(status, 200);
    assert_eq!(names(&all), ["HighLatency", "Info", "dependency_down"]);
    let ours = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "dependency_down")
        .unwrap();
    assert_eq!(
        ours["labels"],
        json!({"alertname": "dependency_down", "severity": "critical",
               "component": "monitoring", "dependency": "redis"})
    );
    assert_eq!(ours["receivers"], json!([{"name": "CRITICAL"}]));
    assert_eq!(
        ours["status"],
        json!({"state": "active", "silencedBy": [], "inhibitedBy": []})
    );

    let query = |q: &'static str| {
        let app = &app;
        async move { names(&am(app, Method::GET, &format!("/alerts?{q}"), None).await.1) }
    };
    assert_eq!(
        query("filter=severity%3D%22critical%22").await,
        ["HighLatency", "dependency_down"]
    );
    assert_eq!(query("filter=severity!%3D%22critical%22").await, ["Info"]);
    assert_eq!(
        query("filter=%7Balertname%3D~%22High.*%7Cdep.*%22%2Cinstance%3D%22db-1%22%7D").await,
        ["HighLatency"]
    );
    assert_eq!(query("receiver=INFO").await, ["Info"]);
    assert_eq!(
        query("filter=dependency%3D%22%22").await,
        ["HighLatency", "Info"],
        "absent reads as empty"
    );

    let (_, groups) = am(&app, Method::GET, "/alerts/groups", None).await;
    let receivers: Vec<(&str, usize)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["receiver"]["name"].as_str().unwrap(),
                g["alerts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(receivers, [("CRITICAL", 2), ("INFO", 1)]);
}

#[sqlx::test]
async fn silences_are_one_table_across_both_apis(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    am(
        &app,
        Method::POST,
        "/alerts",
        Some(json!([
            alert("HighLatency", json!({})),
            alert("HighLatency", json!({"instance": "web-1"}))
        ])),
    )
    .await;
    let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let starts = chrono::Utc::now().to_rfc3339();
    let (status, made) = am(&app, Method::POST, "/silences", Some(json!({
        "matchers": [{"name": "alertname", "value": "HighLatency", "isRegex": false},
                     {"name": "instance", "value": "web-.*", "isRegex": true, "isEqual": false}],
        "startsAt": starts, "endsAt": ends, "createdBy": "ops", "comment": "db maintenance"
    }))).await;
    assert_eq!(status, 200, "{made}");
    let id = made["silenceID"].as_str().unwrap().to_owned();

    // Listed by our route, with the negation kept.
    let (_, ours) = app.internal(Method::GET, "/internal/silences").await;
    assert_eq!(ours["silences"][0]["id"], id);
    assert_eq!(ours["silences"][0]["matchers"][1]["is_equal"], false);
    // It silences db-1, not web-1.
    let (_, alerts) = am(&app, Method::GET, "/alerts", None).await;
    let state_of = |instance: &str| {
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["instance"] == instance)
            .map(|a| {
                (
                    a["status"]["state"].clone(),
                    a["status"]["silencedBy"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(state_of("db-1"), (json!("suppressed"), json!([id])));
    assert_eq!(state_of("web-1"), (json!("active"), json!([])));
    let (_, unsilenced) = am(&app, Method::GET, "/alerts?silenced=false", None).await;
    assert_eq!(unsilenced.as_array().unwrap().len(), 1);

    // Our route's silence shows through theirs, and silences our own alerts by rule.
    let (status, _) = app
        .post_json(
            "/internal/silences",
            &json!({
            "matchers": [{"name": "rule", "value": "system_status"}],
            "ends_at": ends}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, listed) = am(&app, Method::GET, "/silences", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (_, filtered) = am(
        &app,
        Method::GET,
        "/silences?filter=alertname%3D%22HighLatency%22",
        None,
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(
        filtered[0]["matchers"][1],
        json!({"name": "instance", "value": "web-.*", "isRegex": true, "isEqual": false})
    );

    // Update in place keeps the id; expiring keeps it listed as expired.
    let (status, updated) = am(
        &app,
        Method::POST,
        "/silences",
        Some(json!({
            "id": id, "matchers": [{"name": "alertname", "value": "HighLatency", "isRegex": false}],
            "startsAt": starts, "endsAt": ends, "createdBy": "ops", "comment": "all instances"
        })),
    )
    .await;
    assert_eq!(
        (status, updated["silenceID"].as_str()),
        (200, Some(id.as_str()))
    );
    assert_eq!(
        am(&app, Method::DELETE, &format!("/silence/{id}"), None)
            .await
            .0,
        200
    );
    let (status, expired) = am(&app, Method::GET, &format!("/silence/{id}"), None).await;
    assert_eq!(
        (status, &expired["status"]["state"]),
        (200, &json!("expired"))
    );
    assert_eq!(expired["comment"], "all instances");
    assert_eq!(
        am(&app, Method::DELETE, &format!("/silence/{id}"), None)
            .await
            .0,
        200,
        "again: no change"
    );
    let (_, alerts) = am(&app, Method::GET, "/alerts?silenced=false", None).await;
    assert_eq!(
        alerts.as_array().unwrap().len(),
        2,
        "nothing silenced any more"
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        am(&app, Method::GET, &format!("/silence/{unknown}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        am(&app, Method::DELETE, &format!("/silence/{unknown}"), None)
            .await
            .0,
        404
    );
    let (status, body) = am(&app, Method::POST, "/silences", Some(json!({
        "id": unknown.to_string(), "matchers": [{"name": "alertname", "value": "x", "isRegex": false}],
        "startsAt": starts, "endsAt": ends, "createdBy": "ops", "comment": ""}))).await;
    assert_eq!(
        (status, body),
        (404, json!(format!("silence {unknown} not found")))
    );
}

#[sqlx::test]
async fn bad_input_is_a_400_naming_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // The batch's valid alert is kept; the invalid one is named.
    let one_good_one_bad = json!([alert("Kept", json!({})), {"labels": {"severity": "critical"}}]);
    let (status, body) = am(&app, Method::POST, "/alerts", Some(one_good_one_bad)).await;
    assert_eq!(
        (status, body),
        (400, json!("[1].labels.alertname: required"))
    );
    assert_eq!(episodes(&pool, "Kept").await.0, ["firing"]);

    let now = chrono::Utc::now();
    let silence = |matchers: Value, ends_at: chrono::DateTime<chrono::Utc>| {
        json!({"matchers": matchers, "startsAt": now.to_rfc3339(),
               "endsAt": ends_at.to_rfc3339(), "createdBy": "ops", "comment": "c"})
    };
    let hour = now + chrono::Duration::hours(1);
    let one = json!([{"name": "alertname", "value": "x", "isRegex": false}]);
    let regex = |value: &str| json!([{"name": "alertname", "value": value, "isRegex": true}]);
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/alerts",
            Some(json!([{"labels": {"alertname": "x"}, "endsAt": "soon"}])),
            "[0].endsAt: ",
        ),
        (
            Method::POST,
            "/alerts",
            Some(json!({"alerts": []})),
            "alerts: ",
        ),
        (Method::GET, "/alerts?filter=alertname", None, "filter: "),
        (Method::GET, "/alerts?filter=a%3D~%22(%22", None, "filter: "),
        // A catastrophic pattern is refused by the regex crate's size limit, never run.
        (
            Method::GET,
            "/alerts?filter=a%3D~%22(((a%7B100%7D)%7B100%7D)%7B100%7D)%22",
            None,
            "filter: ",
        ),
        (Method::GET, "/alerts?active=maybe", None, "active: "),
        (Method::GET, "/silences?filter=%7Ba%7D", None, "filter: "),
        (
            Method::GET,
            "/silence/not-a-uuid",
            None,
            "silenceID: must be a UUID",
        ),
        (
            Method::POST,
            "/silences",
            Some(silence(json!([]), hour)),
            "matchers: ",
        ),
        (
            Method::POST,
            "/silences",
            Some(silence(regex("("), hour)),
            "matchers[0].value: ",
        ),
        (
            Method::POST,
            "/silences",
            Some(silence(regex(".*"), hour)),
            "matchers: match every alert",
        ),
        (
            Method::POST,
            "/silences",
            Some(silence(one.clone(), now - chrono::Duration::hours(1))),
            "endsAt: ",
        ),
        (
            Method::POST,
            "/silences",
            Some(silence(one.clone(), now + chrono::Duration::days(400))),
            "endsAt: a silence lasts at most",
        ),
        (
            Method::POST,
            "/silences",
            Some(json!({"matchers": one})),
            "startsAt: ",
        ),
        (Method::POST, "/silences", Some(json!("x")), "silence: "),
    ];
    for (method, path, body, expected) in cases {
        let (status, answer) = am(&app, method, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer
            .as_str()
            .unwrap_or_else(|| panic!("a JSON string: {answer}"));
        assert!(
            message.starts_with(expected),
            "{path}: {message} (expected {expected}…)"
        );
    }
    // Not JSON at all.
    let response = app
        .client
        .post(app.url("/api/v2/alerts"))
        .bearer_auth(TEST_KEY)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let message: Value = response.json().await.unwrap();
    assert!(
        message.as_str().unwrap().starts_with("body: not JSON"),
        "{message}"
    );
}

#[sqlx::test]
async fn the_key_guards_it_and_posts_have_their_own_budget(pool: PgPool) {
    let config = test_config(
        true,
        &[
            ("ALERT_INGEST_RATE_LIMIT_PER_MINUTE", "60"),
            ("HTTP_BODY_LIMIT_BYTES", "65536"),
        ],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let url = app.url("/api/v2/alerts");
    for request in [
        app.client.get(&url),
        app.client.get(&url).bearer_auth("wrong-key-0123456789"),
        app.client
            .get(&url)
            .header("Authorization", "Basic dGVzdDp0ZXN0"),
        app.client.get(app.url("/api/v2/nothing-here")),
        app.client.get(app.url("/api/v2")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    let keyed = app
        .client
        .get(&url)
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    assert_eq!(am(&app, Method::GET, "/nothing-here", None).await.0, 404);

    // 60 a minute: a burst of one, then 429; the operators' routes are untouched.
    let post = || {
        am(
            &app,
            Method::POST,
            "/alerts",
            Some(json!([alert("Budget", json!({}))])),
        )
    };
    assert_eq!(post().await.0, 200);
    let (status, body) = post().await;
    assert_eq!((status, &body["error"]), (429, &json!("rate_limited")));
    assert_eq!(am(&app, Method::GET, "/alerts", None).await.0, 200);
    assert_eq!(
        app.internal(Method::GET, "/internal/alerts/active").await.0,
        200
    );

    // Oversized: 413 before anything is read.
    let big = json!([{"labels": {"alertname": "x"}, "annotations": {"d": "y".repeat(70_000)}}]);
    let response = app
        .client
        .post(&url)
        .bearer_auth(TEST_KEY)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[sqlx::test]
async fn status_and_receivers_answer_in_alertmanager_terms(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = am(&app, Method::GET, "/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["cluster"]["status"], "ready");
    assert_eq!(body["cluster"]["name"], app.state.replica.as_str());
    assert_eq!(body["versionInfo"]["version"], env!("CARGO_PKG_VERSION"));
    let original = body["config"]["original"].as_str().unwrap();
    assert!(original.contains("resolve_timeout: 300s"), "{original}");
    let uptime: chrono::DateTime<chrono::Utc> = body["uptime"].as_str().unwrap().parse().unwrap();
    assert!(uptime <= chrono::Utc::now());
    let (_, receivers) = am(&app, Method::GET, "/receivers", None).await;
    assert_eq!(
        receivers,
        json!([{"name": "CRITICAL"}, {"name": "INFO"}, {"name": "WARNING"}])
    );
}
