//! Automatic sharding in process: coordinators dividing the virtual shards
//! through the real `replicas` and `leases` tables — joins, leaves, a paused holder whose
//! leases lapse and whose stale token is refused — and a replica in auto mode whose
//! lease was taken over writing neither trigger nor state, and whose catch-up evaluates
//! only what the current period has not evaluated yet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use monitoring_service::frequency::Frequency;
use monitoring_service::market::Clock;
use monitoring_service::metrics::Metrics;
use monitoring_service::sharding::{
    AutoSharding, Coordinator, Ownership, lease_name, virtual_shard,
};
use monitoring_service::storage::leases::{self, Fence};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::insert_strategy;
use crate::support::{ScratchDatabase, TestApp, eventually, test_config};

fn coordinator(pool: &PgPool, name: &str, ttl: Duration) -> Coordinator {
    Coordinator::new(
        pool.clone(),
        Arc::new(Ownership::new(name)),
        AutoSharding { lease_ttl: ttl },
        Metrics::new().shards,
    )
}

/// The shards each coordinator holds, after checking no shard is held twice.
fn division(coordinators: &[&Coordinator]) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    for c in coordinators {
        for shard in c.ownership().held() {
            assert!(seen.insert(shard), "shard {shard} held twice");
        }
    }
    coordinators
        .iter()
        .map(|c| c.ownership().held().len())
        .collect()
}

/// Steps every coordinator in turn until nothing waits, checking after each step that
/// no shard is held twice.
async fn settle(coordinators: &[&Coordinator]) {
    for _ in 0..5 {
        let mut waiting = 0;
        for c in coordinators {
            waiting += c.step().await.unwrap().waiting;
            division(coordinators);
        }
        if waiting == 0 {
            return;
        }
    }
    panic!("the division did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_divide_the_shards_hand_them_over_and_fence_a_paused_holder() {
    let (database, pool) = ScratchDatabase::migrated().await;
    let ttl = Duration::from_secs(2);
    let (a, b, c) = (
        coordinator(&pool, "replica-a", ttl),
        coordinator(&pool, "replica-b", ttl),
        coordinator(&pool, "replica-c", ttl),
    );

    // Alone, a takes all; b joining waits until a gives its share up.
    assert_eq!(a.step().await.unwrap().acquired, 256);
    let joined = b.step().await.unwrap();
    assert_eq!((joined.acquired, joined.live), (0, 2));
    assert!(joined.waiting > 80, "{joined:?}");
    let released = a.step().await.unwrap().released;
    assert_eq!(released, joined.waiting, "a gives up exactly b's share");
    assert_eq!(b.step().await.unwrap().acquired, released);
    assert_eq!(division(&[&a, &b]).iter().sum::<usize>(), 256);

    settle(&[&a, &b, &c]).await;
    let three = division(&[&a, &b, &c]);
    assert_eq!(three.iter().sum::<usize>(), 256);
    assert!(three.iter().all(|n| (55..=115).contains(n)), "{three:?}");

    // c leaves: its shards are released at once and the others take them.
    c.leave().await;
    assert!(c.ownership().held().is_empty());
    settle(&[&a, &b]).await;
    assert_eq!(division(&[&a, &b]).iter().sum::<usize>(), 256);

    // b pauses (stops stepping): once its heartbeat and leases lapse, a takes all.
    let stale: Vec<Fence> = b.ownership().leases().iter().map(Fence::from).collect();
    let paused = stale.len();
    eventually(Duration::from_secs(20), "a holding every shard", || async {
        a.step().await.unwrap();
        (a.ownership().held().len() == 256).then_some(())
    })
    .await;
    // b's tokens no longer write: a fenced write under them finds no live lease.
    let mut tx = pool.begin().await.unwrap();
    assert!(leases::lock_live(&mut tx, &stale).await.unwrap().is_empty());
    tx.rollback().await.unwrap();
    // b wakes up: it learns it lost them, and takes none while a holds them.
    let woke = b.step().await.unwrap();
    assert_eq!(woke.lost, paused);
    assert_eq!(woke.acquired, 0);
    division(&[&a, &b]);
    settle(&[&a, &b]).await;
    assert_eq!(division(&[&a, &b]).iter().sum::<usize>(), 256);
    a.leave().await;
    b.leave().await;
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM replicas")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(registered, 0, "leaving replicas leave the registry");
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_fences_the_batch_and_a_catch_up_evaluates_each_period_once() {
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = market_sim::start(market_sim::SimConfig::default())
        .await
        .unwrap();
    let binance = sim.binance_url();
    // A long lease: the coordinator does not step again during the test, so the batch
    // holds a token the database no longer has.
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("SHARD_COUNT", "auto"),
            ("SHARD_LEASE_SECONDS", "600"),
        ],
    );
    // A frozen market clock: every run below belongs to the same 10 s period.
    let app = TestApp::spawn_with_clock(
        pool.clone(),
        config,
        Clock::manual(chrono::Utc::now().timestamp_millis()),
    )
    .await;
    app.wait_ready().await;
    let ownership = app.state.ownership.clone().expect("auto mode");
    eventually(Duration::from_secs(20), "every shard held", || async {
        (ownership.held().len() == 256).then_some(())
    })
    .await;
    let above_one = (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    );
    // Two users in two different shards.
    let first_user = Uuid::new_v4();
    let second_user = std::iter::repeat_with(Uuid::new_v4)
        .find(|u| virtual_shard(*u) != virtual_shard(first_user))
        .unwrap();
    let mut ids = Vec::new();
    for user in [first_user, second_user] {
        let (id, _) = insert_strategy(&pool, user, std::slice::from_ref(&above_one), None).await;
        sqlx::query(
            "UPDATE strategies SET frequency = '10s', cooldown_seconds = 0,
                    channels = '[]'::jsonb WHERE id = $1",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let first = ids[0];
    let second_shard = virtual_shard(second_user);
    app.state.loader.reload_all().await.unwrap();

    // Another holder took the second strategy's shard over (its token changed).
    sqlx::query("UPDATE leases SET token = nextval('lease_tokens') WHERE name = $1")
        .bind(lease_name(second_shard))
        .execute(&pool)
        .await
        .unwrap();
    let ten = Frequency::parse("10s").unwrap();
    let report = app.state.batches.catch_up(&ten).await.unwrap();
    assert_eq!(
        report.evaluated, 2,
        "both were this replica's when the batch began"
    );
    assert_eq!(
        report.triggered, 1,
        "only the first strategy's trigger is claimed"
    );
    let logged: Vec<Uuid> = sqlx::query_scalar("SELECT strategy_id FROM strategy_trigger_logs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(logged, [first]);
    let states: Vec<Uuid> = sqlx::query_scalar("SELECT strategy_id FROM strategy_state")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(states, [first], "no state written under the lost lease");
    let fenced = app
        .state
        .metrics
        .render()
        .lines()
        .any(|l| l == "monitoring_writes_fenced_total 2");
    assert!(fenced, "the trigger and the state counted fenced");

    // The same period again: the first strategy was evaluated in it, the second is
    // evaluated (its state was never written) and fenced again.
    let again = app.state.batches.catch_up(&ten).await.unwrap();
    assert_eq!((again.evaluated, again.triggered), (1, 0));
    // An operator's run evaluates everything whatever the period.
    let manual = app.state.batches.run(&ten).await.unwrap();
    assert_eq!(manual.evaluated, 2);
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}
