//! Candle-close analysis when the llm-proxy fails or is slow: an error streak that stops
//! its schedules and raises one alert, a 429's `Retry-After` honoured, and the rate and
//! concurrency budget measured at the simulated proxy.

use std::time::Duration;

use market_sim::LlmAnswer;
use serde_json::Value;

use crate::support::analysis_setup::{
    decisions, fast_sim, proxy, schedule, sim_at, start, status_of, wait_status,
};
use crate::support::{ScratchDatabase, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_streak_stops_the_schedule_and_raises_one_alert() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    let (failing_a, _) = schedule(&pool, "1m", 100).await;
    let (failing_b, _) = schedule(&pool, "1m", 100).await;
    let (recovering, recovering_signal) = schedule(&pool, "1m", 100).await;
    proxy.set_default(LlmAnswer::Status {
        status: 500,
        retry_after: None,
    });
    // An answer that is not a decision fails the call (no retry) and moves nothing;
    // the success after it resets the streak.
    proxy.script(
        &recovering_signal.to_string(),
        vec![
            LlmAnswer::Raw(r#"{"decision": "hold", "confidence": 0.9, "reasoning": "?"}"#.into()),
            LlmAnswer::decide("continue"),
        ],
    );
    let app = start(
        &pool,
        &sim,
        &proxy,
        &[
            ("ANALYSIS_TIMEOUT_MS", "700"),
            ("ANALYSIS_MAX_CONSECUTIVE_ERRORS", "2"),
        ],
    )
    .await;
    wait_status(&pool, failing_a, "error").await;
    wait_status(&pool, failing_b, "error").await;
    for id in [failing_a, failing_b] {
        let rows = decisions(&pool, id).await;
        assert_eq!(
            rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ["failed", "failed"]
        );
        assert_eq!(status_of(&pool, id).await, ("error".to_owned(), 0, 2, true));
    }
    // Retried within the timeout: more than one request per failed call.
    assert!(proxy.requests().len() > 4);
    let alerts: Vec<(String, Value)> =
        sqlx::query_as("SELECT state, context FROM ops_alerts WHERE rule = 'analysis_failing'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(alerts.len(), 1, "one alert for the endpoint: {alerts:?}");
    assert_eq!(alerts[0].0, "firing");
    assert_eq!(alerts[0].1["schedules_in_error"], 2);
    assert_eq!(alerts[0].1["last_error"], "status");

    let rows = decisions(&pool, recovering).await;
    assert_eq!(rows[0].0, "failed");
    let reasoning: String = sqlx::query_scalar(
        "SELECT reasoning FROM monitoring_decisions WHERE schedule_id = $1 ORDER BY candle_open_time LIMIT 1",
    )
    .bind(recovering)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(reasoning.contains("decision: `hold`"), "{reasoning}");
    eventually(Duration::from_secs(30), "the recovery analysed", || async {
        let (_, count, errors, _) = status_of(&pool, recovering).await;
        (count == 1 && errors == 0).then_some(())
    })
    .await;
    // The recovering schedule's next success resolves the endpoint's alert.
    eventually(Duration::from_secs(30), "the alert resolved", || async {
        let state: String =
            sqlx::query_scalar("SELECT state FROM ops_alerts WHERE rule = 'analysis_failing'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (state == "resolved").then_some(())
    })
    .await;
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_as_long_as_retry_after_says() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    // A 1m candle every 10 s: the retry comes within the same candle.
    let sim = sim_at(6.0).await;
    let proxy = proxy().await;
    let (id, signal) = schedule(&pool, "1m", 1).await;
    proxy.queue_next(vec![LlmAnswer::Status {
        status: 429,
        retry_after: Some(1),
    }]);
    let app = start(&pool, &sim, &proxy, &[("ANALYSIS_TIMEOUT_MS", "5000")]).await;
    wait_status(&pool, id, "expired").await;
    let sent: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.body["signal_id"] == signal.to_string())
        .collect();
    assert_eq!(sent.len(), 2, "the 429, then the retry");
    assert_eq!(
        sent[0].body["candle_open_time"],
        sent[1].body["candle_open_time"]
    );
    let waited = sent[1].at - sent[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}: {:?}",
        sent.iter()
            .map(|r| (&r.body["candle_open_time"], r.at))
            .collect::<Vec<_>>()
    );
    assert_eq!(decisions(&pool, id).await.len(), 1);
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_at_the_proxy_and_a_close_not_started_in_time_is_skipped() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    proxy.set_latency(Duration::from_millis(300));
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(schedule(&pool, "1m", 1000).await.0);
    }
    let app = start(
        &pool,
        &sim,
        &proxy,
        &[
            ("ANALYSIS_MAX_CONCURRENCY", "3"),
            ("ANALYSIS_RATE_PER_MINUTE", "600"),
        ],
    )
    .await;
    // Two closes: the 40 claims of the first cannot all start within the 2 s before
    // the next, so some are skipped.
    let settled = eventually(Duration::from_secs(30), "a close settled", || async {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT candle_open_time,
                    count(*) FILTER (WHERE decision = 'continue'),
                    count(*) FILTER (WHERE decision = 'skipped')
               FROM monitoring_decisions GROUP BY candle_open_time
             HAVING count(*) FILTER (WHERE decision = 'pending') = 0 AND count(*) = 40
              ORDER BY candle_open_time LIMIT 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter().next()
    })
    .await;
    let (candle, analysed, skipped) = settled;
    assert_eq!(analysed + skipped, 40);
    assert!(
        skipped > 0 && analysed > 0,
        "{analysed} analysed, {skipped} skipped"
    );
    let calls: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.body["candle_open_time"] == candle)
        .collect();
    assert_eq!(calls.len() as i64, analysed, "one call per analysed claim");
    assert_eq!(proxy.max_in_flight(), 3, "three at once, never more");
    // 600 a minute, a burst of one: n calls span at least (n − 1) × 100 ms, measured
    // at the proxy (50 ms allowed for the network between the two ends).
    let span = calls.last().unwrap().at - calls[0].at;
    let floor = Duration::from_millis(100 * (calls.len() as u64 - 1))
        .saturating_sub(Duration::from_millis(50));
    assert!(span >= floor, "{} calls in {span:?}", calls.len());
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("monitoring_analysis_skipped_total{reason=\"superseded\"}"),
        "skips counted"
    );
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}
