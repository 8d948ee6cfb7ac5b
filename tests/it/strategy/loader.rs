//! The strategy loader against real Postgres and Redis: compiled versions, validation
//! outcomes written back, removals, shards, the Redis cache and hostile documents.

use std::sync::Arc;
use std::time::Duration;

use monitoring_service::sharding::hash as shard;
use monitoring_service::storage;
use monitoring_service::strategy::{Shard, StrategyIndex, StrategyLoader};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::redis_url;
use crate::support::strategies::{insert_strategy, price_above, rsi_below};

fn loader(
    pool: &PgPool,
    redis: Option<redis::aio::ConnectionManager>,
    shard: Shard,
) -> StrategyLoader {
    StrategyLoader::new(pool.clone(), redis, shard, Arc::new(StrategyIndex::new()))
}

const ALL: Shard = Shard { index: 0, count: 1 };

async fn status_of(pool: &PgPool, id: Uuid) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, error FROM strategies WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn touch(pool: &PgPool, sql: &str, id: Uuid) {
    // Each change is a new version, as synapse-api writes it.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE strategies SET {sql}, updated_at = clock_timestamp() WHERE id = $1"
    )))
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn loads_valid_strategies_and_records_invalid_ones(pool: PgPool) {
    let user = Uuid::new_v4();
    let (a, _) = insert_strategy(&pool, user, &[rsi_below(30.0), price_above(3000.0)], None).await;
    let (b, _) = insert_strategy(&pool, user, &[price_above(2000.0)], None).await;
    let (bad, bad_conditions) = insert_strategy(&pool, user, &[rsi_below(30.0)], None).await;
    sqlx::query(
        "UPDATE strategy_conditions SET params = params || '{\"period\": 5000}' WHERE id = $1",
    )
    .bind(bad_conditions[0])
    .execute(&pool)
    .await
    .unwrap();
    let (paused, _) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    touch(&pool, "status = 'paused'", paused).await;

    let loader = loader(&pool, None, ALL);
    assert!(!loader.index().is_loaded());
    let report = loader.reload_all().await.unwrap();
    assert_eq!((report.loaded, report.reloaded), (2, 2));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].strategy_id, bad);
    assert_eq!(
        report.errors[0].error,
        "conditions[0].params.period: must be between 2 and 1000"
    );
    assert!(loader.index().is_loaded());
    let index = loader.index().snapshot();
    assert!(index.strategies.contains_key(&a) && index.strategies.contains_key(&b));
    assert_eq!(index.strategies[&a].conditions.len(), 2);
    assert_eq!(
        status_of(&pool, bad).await,
        (
            "error".to_owned(),
            Some("conditions[0].params.period: must be between 2 and 1000".to_owned())
        )
    );

    // Nothing changed: nothing is recompiled, the compiled strategies are reused.
    let again = loader.reload_all().await.unwrap();
    assert_eq!(
        (again.loaded, again.reloaded, again.errors.len()),
        (2, 0, 0)
    );
    assert!(Arc::ptr_eq(
        &index.strategies[&a],
        &loader.index().snapshot().strategies[&a]
    ));

    // Fixing the strategy and reloading makes it active again, error cleared.
    sqlx::query(
        "UPDATE strategy_conditions SET params = params || '{\"period\": 14}' WHERE id = $1",
    )
    .bind(bad_conditions[0])
    .execute(&pool)
    .await
    .unwrap();
    touch(&pool, "name = 'fixed'", bad).await;
    let fixed = loader.reload_all().await.unwrap();
    assert_eq!((fixed.loaded, fixed.reloaded), (3, 1));
    assert_eq!(status_of(&pool, bad).await, ("active".to_owned(), None));
}

#[sqlx::test]
async fn a_new_version_replaces_the_old_and_removed_strategies_leave(pool: PgPool) {
    let user = Uuid::new_v4();
    let (a, _) = insert_strategy(&pool, user, &[price_above(100.0)], None).await;
    let (b, _) = insert_strategy(&pool, user, &[price_above(200.0)], None).await;
    let (c, _) = insert_strategy(&pool, user, &[price_above(300.0)], None).await;
    let loader = loader(&pool, None, ALL);
    loader.reload_all().await.unwrap();
    let before = loader.index().get(a).unwrap();

    touch(&pool, "name = 'renamed', frequency = '5m'", a).await;
    touch(&pool, "status = 'paused'", b).await;
    sqlx::query("DELETE FROM strategies WHERE id = $1")
        .bind(c)
        .execute(&pool)
        .await
        .unwrap();

    let report = loader.reload_all().await.unwrap();
    assert_eq!((report.loaded, report.reloaded, report.removed), (1, 1, 2));
    let after = loader.index().get(a).unwrap();
    assert_eq!(&*after.name, "renamed");
    assert!(after.version > before.version);
    let index = loader.index().snapshot();
    assert_eq!(index.by_frequency.len(), 1);
    assert_eq!(index.by_frequency.keys().next().unwrap().to_string(), "5m");
}

#[sqlx::test]
async fn reload_of_given_ids_touches_only_them(pool: PgPool) {
    let user = Uuid::new_v4();
    let (a, _) = insert_strategy(&pool, user, &[price_above(100.0)], None).await;
    let (b, _) = insert_strategy(&pool, user, &[price_above(200.0)], None).await;
    let loader = loader(&pool, None, ALL);
    loader.reload_all().await.unwrap();
    let untouched = loader.index().get(b).unwrap();

    touch(&pool, "name = 'changed'", a).await;
    let (new, _) = insert_strategy(&pool, user, &[price_above(300.0)], None).await;
    let report = loader.reload_ids(&[a, new]).await.unwrap();
    assert_eq!((report.loaded, report.reloaded, report.removed), (3, 2, 0));
    assert_eq!(&*loader.index().get(a).unwrap().name, "changed");
    assert!(Arc::ptr_eq(&untouched, &loader.index().get(b).unwrap()));

    touch(&pool, "status = 'paused'", a).await;
    let unknown = Uuid::new_v4();
    let report = loader.reload_ids(&[a, unknown]).await.unwrap();
    assert_eq!((report.loaded, report.removed), (2, 1));
    assert!(loader.index().get(a).is_none());
}

#[sqlx::test]
async fn a_condition_of_another_strategy_cannot_be_referenced(pool: PgPool) {
    let user = Uuid::new_v4();
    let (_, others) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    let (thief, _) = insert_strategy(
        &pool,
        user,
        &[price_above(2.0)],
        Some(json!({"condition": others[0]})),
    )
    .await;
    let report = loader(&pool, None, ALL).reload_all().await.unwrap();
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        report.errors[0].error,
        format!(
            "logic_tree.condition: no condition {} in this strategy",
            others[0]
        )
    );
    assert_eq!(status_of(&pool, thief).await.0, "error");
}

#[sqlx::test]
async fn a_50_mb_document_is_refused_without_being_read(pool: PgPool) {
    let user = Uuid::new_v4();
    let (id, conditions) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    // An `or` of 1.2 million leaves: about 50 MB of JSON.
    sqlx::query(
        "UPDATE strategies SET logic_tree = jsonb_build_object('or',
             (SELECT jsonb_agg(jsonb_build_object('condition', $2::text)) FROM generate_series(1, 1200000)))
         WHERE id = $1",
    )
    .bind(id)
    .bind(conditions[0].to_string())
    .execute(&pool)
    .await
    .unwrap();
    let size: i32 =
        sqlx::query_scalar("SELECT octet_length(logic_tree::text) FROM strategies WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(size > 50_000_000, "{size}");

    let report = loader(&pool, None, ALL).reload_all().await.unwrap();
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        report.errors[0].error,
        "logic_tree: the document is larger than 262144 bytes"
    );
}

#[sqlx::test]
async fn expired_strategies_are_marked_and_not_loaded(pool: PgPool) {
    let user = Uuid::new_v4();
    let (id, _) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    touch(&pool, "expires_at = now() - interval '1 minute'", id).await;
    let report = loader(&pool, None, ALL).reload_all().await.unwrap();
    assert_eq!(report.loaded, 0);
    assert_eq!(status_of(&pool, id).await, ("expired".to_owned(), None));
}

#[sqlx::test]
async fn each_replica_keeps_only_its_shard(pool: PgPool) {
    let users: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let mut owner = std::collections::HashMap::new();
    for user in &users {
        let (id, _) = insert_strategy(&pool, *user, &[price_above(1.0)], None).await;
        owner.insert(id, *user);
    }
    let mut seen = 0;
    for index in 0..3 {
        let loader = loader(&pool, None, Shard { index, count: 3 });
        loader.reload_all().await.unwrap();
        for id in loader.index().snapshot().strategies.keys() {
            // The SQL filter and the Rust hash agree.
            assert!(shard::owns(owner[id], index, 3));
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        users.len(),
        "every strategy is loaded by exactly one replica"
    );
}

#[sqlx::test]
async fn a_second_replica_reads_changed_strategies_from_the_redis_cache(pool: PgPool) {
    let redis = storage::redis::connect(&redis_url().into(), Duration::from_secs(5))
        .await
        .unwrap();
    let user = Uuid::new_v4();
    for i in 0..25 {
        insert_strategy(
            &pool,
            user,
            &[price_above(f64::from(i) + 1.0), rsi_below(30.0)],
            None,
        )
        .await;
    }
    let first = loader(&pool, Some(redis.clone()), ALL)
        .reload_all()
        .await
        .unwrap();
    assert_eq!((first.loaded, first.cache_hits), (25, 0));

    let second_loader = loader(&pool, Some(redis), ALL);
    let second = second_loader.reload_all().await.unwrap();
    assert_eq!((second.loaded, second.cache_hits), (25, 25));
    // The cached form compiles to the same strategies.
    let a = second_loader.index().snapshot();
    assert!(a.strategies.values().all(|s| s.conditions.len() == 2));
}

#[sqlx::test]
async fn a_cron_firing_under_ten_seconds_apart_puts_its_strategy_in_error(pool: PgPool) {
    let user = Uuid::new_v4();
    let (every_second, _) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    touch(&pool, "frequency = '* * * * * *'", every_second).await;
    let (every_ten, _) = insert_strategy(&pool, user, &[price_above(1.0)], None).await;
    touch(&pool, "frequency = '*/10 * * * * *'", every_ten).await;
    let loader = loader(&pool, None, ALL);
    let report = loader.reload_all().await.unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].strategy_id, every_second);
    let (status, error) = status_of(&pool, every_second).await;
    assert_eq!(status, "error");
    let error = error.unwrap();
    assert!(
        error.starts_with("frequency: a cron expression may fire at most every 10 s"),
        "{error}"
    );
    assert_eq!(status_of(&pool, every_ten).await.0, "active");
}
