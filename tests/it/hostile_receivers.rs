//! What a user's receiver could once do to everyone: answer an error with a body of
//! hundreds of megabytes, which delivery read whole.

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::json;

use crate::support::process::{Service, migrate, quiet_vars, temp_log};
use crate::support::{ScratchDatabase, redis_url};

/// A receiver answering every request 400 with a `megabytes` MB body, streamed.
async fn huge_error_receiver(megabytes: usize) -> std::net::SocketAddr {
    let chunk = Bytes::from(vec![b'x'; 1 << 20]);
    let app = axum::Router::new().fallback(move || {
        let chunk = chunk.clone();
        async move {
            let chunks = (0..megabytes).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
            (
                StatusCode::BAD_REQUEST,
                Body::from_stream(futures_util::stream::iter(chunks)),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn a_receivers_400_mb_error_body_costs_the_service_no_memory() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let receiver = huge_error_receiver(400).await;
    let small = huge_error_receiver(0).await;
    let log = temp_log("huge");
    let vars = quiet_vars(&database.url, &redis_url());
    let service = Service::start(&vars, &log);
    service.wait_ready().await;
    let to = |address: std::net::SocketAddr| {
        json!({"channel": {"type": "webhook",
            "url": format!("http://{address}/hook"), "secret": "s3cret"}})
    };
    // One small failed delivery first, so the baseline includes what any delivery
    // allocates.
    let (status, answer) = service.post_json("/internal/notify/test", &to(small)).await;
    assert_eq!(
        (status, answer["deliveries"][0]["error"].as_str()),
        (200, Some("HTTP 400"))
    );
    let channel = to(receiver);
    let before = service.peak_memory_kib();
    for _ in 0..3 {
        let (status, answer) = service.post_json("/internal/notify/test", &channel).await;
        assert_eq!(status, 200, "{answer}");
        let delivery = &answer["deliveries"][0];
        assert_eq!(delivery["status"], "failed", "{answer}");
        assert_eq!(delivery["error"], "HTTP 400", "{answer}");
    }
    let grown_mib = (service.peak_memory_kib().saturating_sub(before)) / 1024;
    assert!(grown_mib < 50, "peak memory grew by {grown_mib} MiB");
    drop(service);
    database.drop_now().await;
}
