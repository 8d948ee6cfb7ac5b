//! What a stranger or a careless operator could once do to everyone: a silence of
//! every alert until year 9999, alert streams without bound, `/internal/` answering
//! without a key; and browsers refused methods the routes use.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TEST_KEY, TestApp, eventually, test_config};

async fn add_silence(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/internal/silences", &body).await
}

#[sqlx::test]
async fn silences_of_every_alert_or_longer_than_the_limit_are_400s_naming_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let regex = |name: &str, value: &str| json!({"name": name, "value": value, "is_regex": true});
    for matchers in [
        json!([regex("rule", ".*")]),
        json!([
            regex("rule", ".+"),
            regex("severity", "INFO|WARNING|CRITICAL")
        ]),
    ] {
        let (status, answer) =
            add_silence(&app, json!({"matchers": matchers, "ends_at": soon})).await;
        assert_eq!(status, 400, "{matchers}: {answer}");
        assert_eq!(answer["error"], "invalid_silence");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with("matchers: match every alert"),
            "{message}"
        );
    }
    let (status, answer) = add_silence(
        &app,
        json!({"matchers": [{"name": "rule", "value": "dependency_down"}],
               "ends_at": "9999-12-31T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("ends_at: a silence lasts at most 30 days"),
        "{answer}"
    );
    // Within the limit, and narrower than everything: taken.
    let month = (chrono::Utc::now() + chrono::Duration::days(29)).to_rfc3339();
    let (status, answer) = add_silence(
        &app,
        json!({"matchers": [regex("rule", ".*"), {"name": "severity", "value": "INFO"}],
               "ends_at": month}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ops_silences")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the acceptable silence is stored");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_key_holds_at_most_its_limit_of_alert_streams(pool: PgPool) {
    let config = test_config(true, &[("ALERT_STREAMS_PER_KEY", "2")]);
    let app = TestApp::spawn_with(pool, config).await;
    let open = || async {
        app.client
            .get(app.url("/internal/alerts/stream"))
            .header("X-MONITORING-KEY", TEST_KEY)
            .send()
            .await
            .unwrap()
    };
    let first = open().await;
    let second = open().await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open().await;
    assert_eq!(third.status(), 429);
    let answer: Value = third.json().await.unwrap();
    assert_eq!(answer["error"], "too_many_streams", "{answer}");
    // A stream that ends gives its place back.
    drop(first);
    let fourth = eventually(Duration::from_secs(10), "a freed stream place", || async {
        let response = open().await;
        (response.status() == 200).then_some(response)
    })
    .await;
    drop((second, fourth));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn every_internal_path_needs_the_key_and_browsers_may_use_every_method(pool: PgPool) {
    let config = test_config(true, &[("CORS_ALLOWED_ORIGINS", "https://ops.example.com")]);
    let app = TestApp::spawn_with(pool, config).await;
    for path in [
        "/internal",
        "/internal/",
        "/internal/no-such-route",
        "/internal//x",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 401, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "unauthorized", "{path}");
        let (status, answer) = app.internal(reqwest::Method::GET, path).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (404, Some("unknown_route")),
            "{path}"
        );
    }
    for method in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
        let response = app
            .client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/internal/monitors/retention"),
            )
            .header("Origin", "https://ops.example.com")
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "x-monitoring-key, content-type",
            )
            .send()
            .await
            .unwrap();
        let allowed = response
            .headers()
            .get("access-control-allow-methods")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(allowed.contains(method), "{method} not in {allowed:?}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn three_hundred_half_sent_requests_leave_the_probes_answering_under_256_descriptors() {
    use tokio::io::AsyncWriteExt;

    use crate::support::ScratchDatabase;
    use crate::support::process::{Service, migrate, quiet_vars, temp_log};

    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let log = temp_log("slowloris");
    let vars = quiet_vars(&database.url, &crate::support::redis_url());
    let mut service = Service::start_with_open_files(&vars, &log, 256);
    service.wait_ready().await;
    let address = service.url("").trim_start_matches("http://").to_owned();
    // Each sends half a request and never the rest.
    let mut held = Vec::new();
    for _ in 0..300 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            continue;
        };
        let _ = stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        held.push(stream);
    }
    assert!(
        held.len() >= 256,
        "the attack held {} connections",
        held.len()
    );
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let attacked = std::time::Instant::now();
    for path in ["/health", "/ready"] {
        let answer = eventually(Duration::from_secs(8), path, || async {
            let response = probe.get(service.url(path)).send().await.ok()?;
            (response.status() == 200).then_some(response)
        })
        .await;
        assert_eq!(answer.status(), 200, "{path}");
        eprintln!("{path} answered {:?} into the attack", attacked.elapsed());
    }
    // Postgres still reachable from the service: a route that reads it answers.
    let answer = probe
        .get(service.url("/internal/monitors"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(service.is_running());
    drop(held);
    drop(service);
    database.drop_now().await;
}
