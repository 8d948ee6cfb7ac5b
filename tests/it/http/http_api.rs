//! The HTTP interface served for real: probes, the key guard on every internal route,
//! metrics labels, request ids and JSON errors for bad requests.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use utoipa::openapi::path::HttpMethod;

use crate::support::{ScratchDatabase, TEST_KEY, TestApp, test_config};

#[sqlx::test]
async fn health_answers_ok(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn ready_when_postgres_and_redis_answer_and_strategies_loaded(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = app.wait_ready().await;
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "strategies_loaded": "ok"}, "failing": []})
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn ready_without_redis_checks_only_postgres(pool: PgPool) {
    let app = TestApp::spawn_with(pool, test_config(false, &[])).await;
    let body = app.wait_ready().await;
    assert_eq!(
        body["checks"],
        json!({"postgres": "ok", "strategies_loaded": "ok"})
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn not_ready_when_postgres_goes_away() {
    let database = ScratchDatabase::create().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect(&database.url)
        .await
        .unwrap();
    monitoring_service::storage::postgres::migrate(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool).await;
    app.wait_ready().await;

    database.drop_now().await;

    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["postgres"], "failed");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["failing"], json!(["postgres"]));
    // Liveness is unaffected: the process still serves.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("monitoring_readiness_check{check=\"postgres\"} 0"));
    app.stop().await.unwrap();
}

/// Every documented `/internal` route, with path parameters filled in.
fn internal_routes() -> Vec<(reqwest::Method, String)> {
    let document = monitoring_service::http::openapi_document();
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        if !path.starts_with("/internal") {
            continue;
        }
        let concrete = fill_path_parameters(path);
        let methods = [
            (HttpMethod::Get, &item.get, reqwest::Method::GET),
            (HttpMethod::Post, &item.post, reqwest::Method::POST),
            (HttpMethod::Put, &item.put, reqwest::Method::PUT),
            (HttpMethod::Delete, &item.delete, reqwest::Method::DELETE),
            (HttpMethod::Patch, &item.patch, reqwest::Method::PATCH),
        ];
        for (_, operation, method) in methods {
            if operation.is_some() {
                routes.push((method, concrete.clone()));
            }
        }
    }
    routes
}

fn fill_path_parameters(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[sqlx::test]
async fn every_internal_route_requires_the_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let routes = internal_routes();
    assert!(
        routes.iter().any(|(_, path)| path == "/internal/status"),
        "the route table is read from the OpenAPI document: {routes:?}"
    );
    let mut probes = routes.clone();
    // A path nobody registered is guarded too.
    probes.push((reqwest::Method::GET, "/internal/no-such-route".to_owned()));

    for (method, path) in &probes {
        for key in [None, Some("wrong-key-0123456789abcdef"), Some("")] {
            let mut request = app.client.request(method.clone(), app.url(path));
            if let Some(key) = key {
                request = request.header("X-MONITORING-KEY", key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with key {key:?}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized", "{method} {path}");
        }
    }

    // With the key, the guard lets requests through.
    for (method, path) in &routes {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .header("X-MONITORING-KEY", TEST_KEY)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn internal_requests_are_limited_per_key_with_retry_after(pool: PgPool) {
    let keys = "key-one-0123456789abcdef,key-two-0123456789abcdef";
    let config = test_config(
        false,
        &[
            ("MONITORING_API_KEY", keys),
            ("INTERNAL_RATE_LIMIT_PER_MINUTE", "1"),
            ("INTERNAL_RATE_LIMIT_BURST", "2"),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;
    let status = |key: &'static str| {
        let request = app
            .client
            .get(app.url("/internal/status"))
            .header("X-MONITORING-KEY", key);
        async move { request.send().await.unwrap() }
    };
    let (one, two) = ("key-one-0123456789abcdef", "key-two-0123456789abcdef");
    // A burst of two, then one a minute.
    assert_eq!(status(one).await.status(), StatusCode::OK);
    assert_eq!(status(one).await.status(), StatusCode::OK);
    let limited = status(one).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // The other key has its own budget; a wrong key is still refused as such.
    assert_eq!(status(two).await.status(), StatusCode::OK);
    assert_eq!(
        status("wrong-key-0123456789abcd").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_rotated_key_list_accepts_each_key(pool: PgPool) {
    let keys = "new-key-0123456789abcdef,old-key-0123456789abcdef";
    let app = TestApp::spawn_with(pool, test_config(true, &[("MONITORING_API_KEY", keys)])).await;
    for key in keys.split(',') {
        let response = app
            .client
            .get(app.url("/internal/status"))
            .header("X-MONITORING-KEY", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn status_reports_shard_and_dependencies(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.wait_ready().await;
    let body: Value = app
        .client
        .get(app.url("/internal/status"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["service"], "monitoring-service");
    assert_eq!(body["shard"]["mode"], "static");
    assert_eq!(
        (
            body["shard"]["index"].clone(),
            body["shard"]["count"].clone()
        ),
        (json!(0), json!(1))
    );
    assert!(
        body["shard"]["replica"]
            .as_str()
            .unwrap()
            .starts_with("replica-")
    );
    assert!(
        body["shard"].get("held").is_none(),
        "no virtual shards in static mode"
    );
    assert_eq!(body["redis"], "connected");
    assert_eq!(
        body["live_reload"],
        json!({"via": "redis", "following": true, "polling_postgres": false})
    );
    assert_eq!(body["strategies"]["loaded"], 0);
    assert!(body["postgres"]["max_connections"].as_u64().unwrap() >= 1);
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn openapi_document_lists_every_route(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body: Value = app
        .client
        .get(app.url("/internal/openapi.json"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = body["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for expected in [
        "/health",
        "/ready",
        "/metrics",
        "/internal/status",
        "/internal/openapi.json",
        "/internal/run/{frequency}",
        "/internal/reload-strategies",
        "/internal/strategies/{strategy_id}",
        "/internal/alerts/active",
        "/internal/alerts/history",
        "/internal/alerts/{alert_id}/clear",
        "/internal/alerts/{alert_id}/ack",
        "/internal/silences",
        "/internal/silences/{id}",
        "/internal/notify/test",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert_eq!(
        body["components"]["securitySchemes"]["api_key"]["name"],
        "x-monitoring-key"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn metrics_are_labelled_by_route_template_never_raw_path(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.get("/health").await;
    app.get("/health").await;
    let secret_looking_path = "/internal/strategies/7f3e-secret-path";
    app.get(secret_looking_path).await;
    app.get("/definitely/not/a/route").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            "monitoring_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(!text.contains("secret-path"));
    assert!(!text.contains("/definitely/not"));
    assert!(text.contains("monitoring_http_request_duration_seconds_bucket"));
    assert!(text.contains("process_cpu_seconds_total"));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn every_response_carries_a_request_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let generated = app.get("/health").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "caller-chosen-id");
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn bad_requests_get_json_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;

    let oversized = app
        .client
        .post(app.url("/internal/status"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        oversized.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );

    let wrong_method = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.headers().contains_key("allow"));
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );

    let unknown = app.get("/nope").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body = unknown.json::<Value>().await.unwrap();
    assert_eq!(body["error"], "unknown_route");
    assert_eq!(body["message"], "this server has no route GET /nope");
    // Under /internal, with the key: the same code, apart from an unknown id's.
    let (status, body) = app.internal(reqwest::Method::GET, "/internal/nope").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_route"))
    );
    let (status, body) = app
        .internal(reqwest::Method::POST, "/internal/alerts/no-such-alert/ack")
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn cors_allows_only_configured_origins(pool: PgPool) {
    let config = test_config(true, &[("CORS_ALLOWED_ORIGINS", "https://ops.example.com")]);
    let app = TestApp::spawn_with(pool, config).await;
    for (origin, allowed) in [
        ("https://ops.example.com", true),
        ("https://evil.example.com", false),
    ] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/internal/status"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-monitoring-key")
            .send()
            .await
            .unwrap();
        let header = response.headers().get("access-control-allow-origin");
        assert_eq!(header.is_some(), allowed, "{origin}");
    }
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn shutdown_lets_the_server_return(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    // A background task that needs a moment to wind down after cancellation.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let token = app.state.shutdown.clone();
    let flag = finished.clone();
    app.state.tasks.spawn(async move {
        token.cancelled().await;
        tokio::task::yield_now().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let address = app.address;
    app.stop().await.unwrap();
    assert!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        "shutdown waited for the background task"
    );
    assert!(pool.is_closed(), "the pool is closed on shutdown");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}

#[sqlx::test]
async fn invented_http_methods_add_no_metric_series(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let series = |scrape: &str| -> Vec<String> {
        scrape
            .lines()
            .filter(|l| l.starts_with("monitoring_http_request"))
            .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
            .collect()
    };
    // One invented method first, so `other`'s series exist before the count.
    let invent = |name: String| {
        let request = app.client.request(
            reqwest::Method::from_bytes(name.as_bytes()).unwrap(),
            app.url("/health"),
        );
        async move { request.send().await.unwrap().status() }
    };
    invent("BREW".into()).await;
    app.get("/metrics").await; // and the scrape's own series
    let before = series(&app.get("/metrics").await.text().await.unwrap());
    for i in 0..20 {
        invent(format!("INVENTED{i}")).await;
    }
    let after_scrape = app.get("/metrics").await.text().await.unwrap();
    let after = series(&after_scrape);
    assert_eq!(after.len(), before.len(), "no new series");
    assert!(!after_scrape.contains("INVENTED"));
    assert!(
        after_scrape.contains(
            r#"monitoring_http_requests_total{method="other",route="/health",status="405"} 21"#
        ),
        "{}",
        after_scrape
            .lines()
            .filter(|l| l.contains("other"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    app.stop().await.unwrap();
}
