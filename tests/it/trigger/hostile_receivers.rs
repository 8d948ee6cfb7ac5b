//! What a user's receiver could once do to everyone: answer an error with a body of
//! hundreds of megabytes, which delivery read whole; hang, so that one owner's 70
//! webhooks held every delivery place and another owner's alert waited a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use market_sim::SimConfig;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::process::{Service, migrate, quiet_vars, temp_log};
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::trigger_apps::{app_with, btc_above_one, configure};
use crate::support::{ScratchDatabase, eventually, redis_url};

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
    eprintln!("three 400 MB error bodies: peak memory grew by {grown_mib} MiB");
    assert!(grown_mib < 50, "peak memory grew by {grown_mib} MiB");
    drop(service);
    database.drop_now().await;
}

/// A receiver that accepts connections and reads requests but never answers; counts
/// the connections it holds.
async fn hanging_receiver() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (address, accepted)
}

#[sqlx::test]
async fn one_owners_hanging_webhooks_do_not_hold_up_another_owners_alert(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (hanging, accepted) = hanging_receiver().await;
    let (telegram, address) = Recorder::start().await;
    // 70 strategies of one owner, each with a webhook that never answers.
    let busy = Uuid::new_v4();
    let mut busy_ids = Vec::new();
    for i in 0..70 {
        let (id, _) = insert_strategy(&pool, busy, &[btc_above_one()], None).await;
        configure(
            &pool,
            id,
            "every_time",
            json!([{"type": "webhook", "url": format!("http://{hanging}/hook/{i}"), "secret": "s"}]),
            None,
        )
        .await;
        busy_ids.push(id);
    }
    // Another owner's strategy, whose claim sorts after all of them (claims go in key
    // order): without fairness it waits for a place behind the 70.
    let quiet = Uuid::parse_str("ffffffff-ffff-4fff-bfff-ffffffffffff").unwrap();
    sqlx::query(
        "INSERT INTO strategies (id, user_id, name, logic_tree, frequency, trigger_mode, channels)
         VALUES ($1, $2, 'quiet', $3, '1m', 'every_time', $4)",
    )
    .bind(quiet)
    .bind(Uuid::new_v4())
    .bind(json!({"condition": quiet}))
    .bind(json!([{"type": "telegram", "chat_id": "777"}]))
    .execute(&pool)
    .await
    .unwrap();
    let (kind, params) = btc_above_one();
    sqlx::query(
        "INSERT INTO strategy_conditions (id, strategy_id, kind, params) VALUES ($1, $1, $2, $3)",
    )
    .bind(quiet)
    .bind(kind)
    .bind(params)
    .execute(&pool)
    .await
    .unwrap();
    let telegram_url = format!("http://{address}");
    let app = app_with(
        pool.clone(),
        &sim,
        &[
            ("TELEGRAM_API_URL", &telegram_url),
            ("TELEGRAM_BOT_TOKEN", "123:TOKEN"),
        ],
    )
    .await;
    let (status, report) = app
        .internal(reqwest::Method::POST, "/internal/run/1m")
        .await;
    assert_eq!(
        (status, &report["triggered"]),
        (200, &json!(71)),
        "{report}"
    );
    let ran_at = std::time::Instant::now();
    eventually(
        Duration::from_secs(120),
        "the quiet owner's alert",
        || async { (!telegram.received("/bot123:TOKEN/sendMessage").is_empty()).then_some(()) },
    )
    .await;
    let latency = ran_at.elapsed();
    // When it arrived, not one of the busy owner's deliveries had ended: it waited for
    // none of them (a hanging receiver holds each attempt for its first-byte timeout).
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM strategy_trigger_logs, jsonb_array_elements(deliveries) d
          WHERE strategy_id = ANY($1) AND d->>'status' <> 'pending'",
    )
    .bind(&busy_ids)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        ended, 0,
        "busy deliveries ended before the quiet alert ({latency:?})"
    );
    println!("the quiet owner's alert arrived {latency:?} after the batch answered");
    // The busy owner never held more than its share of places at the hanging host.
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    // Once the host has timed out five times in a row, its breaker fails the rest at
    // once, recorded with the reason (retried within the attempts, never dropped).
    let reason = eventually(
        Duration::from_secs(120),
        "a delivery failed by the breaker",
        || {
            let pool = pool.clone();
            let busy_ids = busy_ids.clone();
            async move {
                sqlx::query_scalar::<_, String>(
                "SELECT d->>'error' FROM strategy_trigger_logs, jsonb_array_elements(deliveries) d
                  WHERE strategy_id = ANY($1) AND d->>'status' = 'failed'
                    AND d->>'error' LIKE '%in a row%' LIMIT 1",
            )
            .bind(&busy_ids)
            .fetch_optional(&pool)
            .await
            .unwrap()
            }
        },
    )
    .await;
    assert!(
        reason.starts_with("not sent: the destination host timed out or refused 5 times in a row"),
        "{reason}"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_retry_waiting_out_a_retry_after_gives_its_place_back_to_the_queue(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    // One owner, one more trigger than its places (8): each receiver first answers
    // 429 with Retry-After 2 s, then 200.
    let owner = Uuid::new_v4();
    let paths: Vec<String> = (0..9).map(|i| format!("/hook/{i}")).collect();
    for path in &paths {
        recorder.script(
            path,
            vec![(429, vec![("retry-after", "2".to_owned())], String::new())],
        );
        let (id, _) = insert_strategy(&pool, owner, &[btc_above_one()], None).await;
        configure(
            &pool,
            id,
            "every_time",
            json!([{"type": "webhook", "url": format!("http://{address}{path}"), "secret": "s"}]),
            None,
        )
        .await;
    }
    let app = app_with(pool.clone(), &sim, &[]).await;
    let (status, report) = app
        .internal(reqwest::Method::POST, "/internal/run/1m")
        .await;
    assert_eq!((status, &report["triggered"]), (200, &json!(9)), "{report}");
    app.state.triggers.wait_for_deliveries().await;
    let firsts: Vec<std::time::Instant> =
        paths.iter().map(|p| recorder.received(p)[0].at).collect();
    let seconds: Vec<std::time::Instant> = paths
        .iter()
        .map(|p| {
            let got = recorder.received(p);
            assert_eq!(got.len(), 2, "{p}: a 429, then delivered");
            got[1].at
        })
        .collect();
    // The ninth trigger went out while the first eight waited out their Retry-After:
    // every first attempt came before any retry.
    assert!(
        firsts.iter().max() < seconds.iter().min(),
        "a retry held its place while it waited"
    );
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM strategy_trigger_logs, jsonb_array_elements(deliveries) d
          WHERE d->>'status' = 'delivered'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delivered, 9);
    app.stop().await.unwrap();
}
