//! Live reload: a row changed in Postgres and announced on `strategy:updated` shows on
//! every replica within a second — over Redis pub/sub, again after the subscription is
//! cut (what is published meanwhile is caught up by a full reload), and over Postgres
//! `NOTIFY` for a replica without Redis.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, price_above};
use crate::support::{TEST_KEY, TestApp, eventually, test_config};

/// Changes the strategy's name; answers its new version.
async fn change(pool: &PgPool, id: Uuid, name: &str) -> DateTime<Utc> {
    sqlx::query_scalar(
        "UPDATE strategies SET name = $2, updated_at = clock_timestamp() WHERE id = $1 RETURNING updated_at",
    )
    .bind(id)
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn loaded_name(app: &TestApp, id: Uuid) -> Option<String> {
    let view: Value = app
        .client
        .get(app.url(&format!("/internal/strategies/{id}")))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    (view["loaded_version"] == view["version"])
        .then(|| view["name"].as_str().unwrap_or_default().to_owned())
}

/// Waits (at most `deadline`) until every app holds the version named `name`.
async fn shows(apps: &[&TestApp], id: Uuid, name: &str, deadline: Duration) {
    for app in apps {
        eventually(deadline, &format!("{name} to be loaded"), || async {
            (loaded_name(app, id).await.as_deref() == Some(name)).then_some(())
        })
        .await;
    }
}

async fn publish(url: &str, message: &str) {
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("strategy:updated")
        .arg(message)
        .query_async(&mut redis)
        .await
        .unwrap();
}

#[sqlx::test]
async fn an_announced_change_reaches_every_replica_also_after_the_subscription_is_cut(
    pool: PgPool,
) {
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    // A Redis of this test's own: cutting every subscription on it (below) must not
    // cut other tests'.
    let redis_server = crate::support::own_services::OwnRedis::start().await;
    let own_redis = || test_config(false, &[("REDIS_URL", redis_server.url.as_str())]);
    let (a, b) = (
        TestApp::spawn_with(pool.clone(), own_redis()).await,
        TestApp::spawn_with(pool.clone(), own_redis()).await,
    );
    a.wait_ready().await;
    b.wait_ready().await;
    shows(&[&a, &b], id, "test strategy", Duration::from_secs(5)).await;

    change(&pool, id, "v2").await;
    publish(
        &redis_server.url,
        &json!({"strategy_id": id, "action": "upsert"}).to_string(),
    )
    .await;
    shows(&[&a, &b], id, "v2", Duration::from_secs(1)).await;

    // The subscriptions are cut (as when Redis restarts), and a change is announced
    // while nobody listens: the resubscription's full reload picks it up.
    let mut redis = redis::Client::open(redis_server.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(killed >= 2, "both replicas' subscriptions were cut");
    change(&pool, id, "v3").await;
    publish(
        &redis_server.url,
        &json!({"strategy_id": id, "action": "upsert"}).to_string(),
    )
    .await;
    shows(&[&a, &b], id, "v3", Duration::from_secs(1)).await;

    // After that, announcements work again; "*" reloads everything.
    change(&pool, id, "v4").await;
    publish(&redis_server.url, "*").await;
    shows(&[&a, &b], id, "v4", Duration::from_secs(1)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[sqlx::test]
async fn without_redis_postgres_notify_announces_changes(pool: PgPool) {
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    let app = TestApp::spawn_with(pool.clone(), test_config(false, &[])).await;
    app.wait_ready().await;
    shows(&[&app], id, "test strategy", Duration::from_secs(5)).await;
    change(&pool, id, "notified").await;
    sqlx::query("SELECT pg_notify('strategy:updated', $1)")
        .bind(json!({"strategy_id": id, "action": "upsert"}).to_string())
        .execute(&pool)
        .await
        .unwrap();
    shows(&[&app], id, "notified", Duration::from_secs(1)).await;
    // A malformed announcement is ignored; the next good one still works.
    sqlx::query("SELECT pg_notify('strategy:updated', 'not json')")
        .execute(&pool)
        .await
        .unwrap();
    change(&pool, id, "again").await;
    sqlx::query("SELECT pg_notify('strategy:updated', '*')")
        .execute(&pool)
        .await
        .unwrap();
    shows(&[&app], id, "again", Duration::from_secs(1)).await;
    app.stop().await.unwrap();
}
