//! Re-sends written behind (`ops_alerts::refresh`): a re-send of an episode a replica
//! knows open is answered from memory and written within a second, and at shutdown;
//! one received before the episode's resolution on another replica does not reopen it,
//! one received after does.

use std::time::Duration;

use monitoring_service::ops_alerts::{OpsAlerts, PostedAlert};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{am, episodes};
use crate::support::TestApp;

fn firing(name: &str) -> Value {
    json!([{"labels": {"alertname": name, "severity": "warning"},
            "annotations": {"summary": "s"}}])
}

async fn last_seen(pool: &PgPool, rule: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT max(last_seen_at) FROM ops_alerts WHERE rule = $1")
        .bind(rule)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn posted(name: &str, ends_at: Option<chrono::DateTime<chrono::Utc>>) -> Vec<PostedAlert> {
    vec![PostedAlert {
        labels: [("alertname", name), ("severity", "warning")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ends_at,
        ..PostedAlert::default()
    }]
}

const TIMEOUT: Duration = Duration::from_secs(300);

#[sqlx::test]
async fn a_resend_older_than_a_resolution_elsewhere_does_not_reopen_a_newer_one_does(pool: PgPool) {
    // Two replicas, their writes of buffered re-sends run by hand.
    let (a, b) = (OpsAlerts::new(pool.clone()), OpsAlerts::new(pool.clone()));
    // A opens the episode and knows it open; its re-send waits in memory.
    let opened = a.ingest(posted("Older", None), TIMEOUT).await.unwrap();
    assert_eq!(opened.opened, 1);
    let resent = a.ingest(posted("Older", None), TIMEOUT).await.unwrap();
    assert_eq!((resent.opened, resent.refreshed), (0, 1));
    // B takes the resolution, as of now: after A received its re-send.
    let now = chrono::Utc::now();
    b.ingest(posted("Older", Some(now)), TIMEOUT).await.unwrap();
    // A's re-send is older than the resolution: written, it changes nothing.
    assert_eq!(a.flush_refreshes().await.unwrap(), 0);
    assert_eq!(
        episodes(&pool, "Older").await,
        (
            vec!["resolved".to_owned()],
            vec!["raised".to_owned(), "resolved".to_owned()]
        )
    );

    // B's resolution is older than A's next re-send (Prometheus HA: one server saw it
    // resolved, the other still firing afterwards): that re-send opens a new episode.
    a.ingest(posted("Newer", None), TIMEOUT).await.unwrap();
    let resolution = chrono::Utc::now();
    b.ingest(posted("Newer", Some(resolution)), TIMEOUT)
        .await
        .unwrap();
    a.ingest(posted("Newer", None), TIMEOUT).await.unwrap();
    assert_eq!(
        episodes(&pool, "Newer").await.0,
        ["resolved"],
        "still in memory"
    );
    assert_eq!(a.flush_refreshes().await.unwrap(), 1);
    assert_eq!(
        episodes(&pool, "Newer").await,
        (
            vec!["resolved".to_owned(), "firing".to_owned()],
            vec![
                "raised".to_owned(),
                "resolved".to_owned(),
                "raised".to_owned()
            ]
        )
    );
}

#[sqlx::test]
async fn a_resend_is_written_by_the_next_flush_and_an_ending_one_at_once(pool: PgPool) {
    let ops = OpsAlerts::new(pool.clone());
    ops.ingest(posted("Flushed", None), TIMEOUT).await.unwrap();
    let first = last_seen(&pool, "Flushed").await;
    ops.ingest(posted("Flushed", None), TIMEOUT).await.unwrap();
    assert_eq!(last_seen(&pool, "Flushed").await, first, "buffered");
    assert_eq!(ops.flush_refreshes().await.unwrap(), 1);
    assert!(last_seen(&pool, "Flushed").await > first);
    // An end within END_MARGIN (10 s) of now is written at once, never buffered.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(5);
    ops.ingest(posted("Flushed", Some(soon)), TIMEOUT)
        .await
        .unwrap();
    let ends_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT ends_at FROM ops_alerts WHERE rule = 'Flushed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ends_at.timestamp_millis(), soon.timestamp_millis());
    ops.ingest(posted("Flushed", Some(soon)), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        ops.flush_refreshes().await.unwrap(),
        0,
        "written at once, not buffered"
    );
}

#[sqlx::test]
async fn buffered_resends_are_written_at_shutdown(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    am(&app, Method::POST, "/alerts", Some(firing("Shutdown"))).await;
    let first = last_seen(&pool, "Shutdown").await;
    let before = chrono::Utc::now();
    am(&app, Method::POST, "/alerts", Some(firing("Shutdown"))).await;
    app.stop().await.unwrap();
    // Shutdown closed the app's pool (this one): read through a new one.
    let after = PgPool::connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let written = last_seen(&after, "Shutdown").await;
    assert!(written >= before && written > first, "{first} → {written}");
}
