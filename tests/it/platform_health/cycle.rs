//! Platform health (DESIGN §11) against real listeners: a healthy service, one
//! answering 503, a slow one, one slower than the timeout, a closed port; the system
//! status, the critical list, latencies, alerts opening after two cycles and resolving
//! after two, the snapshot published on Redis and served by a second replica, and the
//! emergency stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, eventually, redis_url, test_config};

/// A local server: `/ok`, `/fail` (503), `/slow` (500 ms), `/stuck` (2 s) and Binance's
/// `/api/v3/ping`; once `healed`, every path answers 200 at once.
async fn listeners(healed: Arc<AtomicBool>) -> std::net::SocketAddr {
    let answer = |status: StatusCode, delay_ms: u64| {
        let healed = healed.clone();
        get(move || {
            let healed = healed.load(Ordering::SeqCst);
            async move {
                if healed {
                    return StatusCode::OK;
                }
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                status
            }
        })
    };
    let app = Router::new()
        .route("/ok", answer(StatusCode::OK, 0))
        .route("/fail", answer(StatusCode::SERVICE_UNAVAILABLE, 0))
        .route("/slow", answer(StatusCode::OK, 500))
        .route("/stuck", answer(StatusCode::OK, 2000))
        .route("/api/v3/ping", get(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn system(app: &TestApp) -> Value {
    let (status, body) = app
        .internal(reqwest::Method::GET, "/internal/health/system")
        .await;
    assert!(status == 200 || status == 503, "{status} {body}");
    body
}

async fn firing(pool: &PgPool, rule: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT labels->>'target' FROM ops_alerts WHERE rule = $1 AND state = 'firing' ORDER BY 1",
    )
    .bind(rule)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn each_target_the_system_status_alerts_and_a_second_replica(pool: PgPool) {
    let healed = Arc::new(AtomicBool::new(false));
    let address = listeners(healed.clone()).await;
    let targets = json!([
        {"name": "backend", "url": format!("http://{address}/ok"), "critical": true},
        {"name": "flaky", "url": format!("http://{address}/fail")},
        {"name": "slowpoke", "url": format!("http://{address}/slow")},
        {"name": "stuck", "url": format!("http://{address}/stuck")},
        {"name": "gone", "url": format!("http://127.0.0.1:{}/health", closed_port()), "critical": true},
    ])
    .to_string();
    let binance = format!("http://{address}");
    let vars = [
        ("HEALTH_TARGETS", targets.as_str()),
        ("HEALTH_CHECK_INTERVAL", "1"),
        ("HEALTH_CHECK_TIMEOUT_MS", "1200"),
        ("HEALTH_LATENCY_DEGRADED_MS", "300"),
        ("HEALTH_LATENCY_CRITICAL_MS", "1000"),
        ("BINANCE_BASE_URL", binance.as_str()),
    ];
    let mut events = redis::Client::open(redis_url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    events.subscribe("health.snapshot_updated").await.unwrap();
    let app = TestApp::spawn_with(pool.clone(), test_config(true, &vars)).await;

    // Two bad cycles in a row open the dependency alerts.
    eventually(Duration::from_secs(30), "the dependency alerts", || async {
        (firing(&pool, "dependency_down").await == ["gone", "stuck"]).then_some(())
    })
    .await;
    let body = system(&app).await;
    assert_eq!(body["status"], "CRITICAL", "{body}");
    assert_eq!(body["critical_failures"], json!(["gone"]));
    let checks = &body["checks"];
    for (name, status) in [
        ("backend", "OK"),
        ("flaky", "DEGRADED"),
        ("slowpoke", "DEGRADED"),
        ("stuck", "DOWN"),
        ("gone", "DOWN"),
        ("postgres", "OK"),
        ("redis", "OK"),
        ("binance_api", "OK"),
    ] {
        assert_eq!(checks[name]["status"], status, "{name}: {}", checks[name]);
    }
    assert_eq!(checks["gone"]["error"], "refused");
    assert_eq!(checks["stuck"]["error"], "timeout");
    assert_eq!(checks["flaky"]["error"], "http 503");
    let latency = |name: &str| checks[name]["latency_ms"].as_f64().unwrap();
    assert!(
        (500.0..1200.0).contains(&latency("slowpoke")),
        "{}",
        latency("slowpoke")
    );
    assert!(latency("stuck") >= 1200.0, "{}", latency("stuck"));
    assert!(latency("backend") < 300.0, "{}", latency("backend"));
    assert_eq!(body["services"]["down"], json!(["gone", "stuck"]));
    assert_eq!(
        body["infrastructure"]["ok"],
        json!(["binance_api", "postgres", "redis"])
    );
    assert_eq!(
        body["performance"]["max_service_latency_ms"].as_f64(),
        Some(latency("stuck"))
    );
    assert_eq!(
        firing(&pool, "dependency_degraded").await,
        ["flaky", "slowpoke"]
    );
    let severity: String = sqlx::query_scalar(
        "SELECT severity FROM ops_alerts WHERE rule = 'system_status' AND state = 'firing'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(severity, "CRITICAL");
    let (_, metrics) = app
        .internal(reqwest::Method::GET, "/internal/health/metrics")
        .await;
    assert_eq!(metrics["gauges"]["system_status_code"], 2);
    assert_eq!(metrics["counters"]["services_down"], 2);
    assert_eq!(metrics["counters"]["total_services"], 5);
    // A subscriber got this replica's snapshots (other tests' replicas publish on the
    // same channel: their snapshots lack our targets).
    let mut messages = events.on_message();
    let published: Value = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = messages.next().await.unwrap();
            let snapshot: Value =
                serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
            if snapshot["targets"]["backend"].is_object() {
                return snapshot;
            }
        }
    })
    .await
    .expect("a snapshot of this replica's targets published");
    assert_eq!(
        published["targets"]["gone"]["status"], "DOWN",
        "{published}"
    );
    drop(messages);
    // A second replica serves the same snapshot.
    let second = TestApp::spawn_with(pool.clone(), test_config(true, &vars)).await;
    eventually(
        Duration::from_secs(10),
        "the same snapshot on both",
        || async {
            let (a, b) = (system(&app).await, system(&second).await);
            (a["timestamp"] == b["timestamp"] && a["status"] == b["status"]).then_some(())
        },
    )
    .await;
    let scrape = app.get("/metrics").await.text().await.unwrap();
    assert!(
        scrape.contains(r#"monitoring_dependency_status{kind="service",target="gone"} 2"#),
        "{scrape}"
    );
    assert!(scrape.contains("monitoring_system_status 2"));

    // Healed: two good cycles resolve everything.
    healed.store(true, Ordering::SeqCst);
    eventually(Duration::from_secs(30), "the alerts resolved", || async {
        let down = firing(&pool, "dependency_down").await;
        let degraded = firing(&pool, "dependency_degraded").await;
        (down == ["gone"] && degraded.is_empty()).then_some(())
    })
    .await;
    second.stop().await.unwrap();
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn an_emergency_stop_makes_the_system_critical_until_reset(pool: PgPool) {
    let address = listeners(Arc::new(AtomicBool::new(true))).await;
    let binance = format!("http://{address}");
    let vars = [
        ("HEALTH_CHECK_INTERVAL", "1"),
        ("BINANCE_BASE_URL", binance.as_str()),
    ];
    let app = TestApp::spawn_with(pool.clone(), test_config(true, &vars)).await;
    eventually(Duration::from_secs(20), "an OK system", || async {
        (system(&app).await["status"] == "OK").then_some(())
    })
    .await;
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let publish = |channel: &'static str, payload: &'static str| {
        let mut redis = redis.clone();
        async move {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
    };
    // Malformed: ignored. Then a real trip.
    publish("ess.tripped", "not json").await;
    publish(
        "ess.tripped",
        r#"{"reason": "drawdown", "engine_id": "live-1"}"#,
    )
    .await;
    eventually(Duration::from_secs(20), "a CRITICAL system", || async {
        let body = system(&app).await;
        (body["status"] == "CRITICAL" && body["ess_tripped"] == true).then_some(())
    })
    .await;
    let trips: Vec<(String, String)> =
        sqlx::query_as("SELECT message, state FROM ops_alerts WHERE rule = 'ess_tripped'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        trips,
        [(
            "emergency stop tripped: drawdown".to_owned(),
            "firing".to_owned()
        )]
    );
    publish("ess.reset", "{}").await;
    eventually(Duration::from_secs(20), "OK again", || async {
        (system(&app).await["status"] == "OK").then_some(())
    })
    .await;
    let _ = &mut redis;
    app.stop().await.unwrap();
}
