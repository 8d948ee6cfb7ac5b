//! Deliveries under leases (DESIGN §5, §9): a trigger is delivered by the replica that
//! claimed it while its lease lives, whatever the trigger's age; only a lapsed lease is
//! resumed, by one replica, to the channel the claim recorded — also for a strategy
//! completed since — and an edited channel is never sent to. A replica whose lease was
//! taken over can no longer record outcomes. What fired remembers its edge in the claim.

use std::time::Duration;

use market_sim::SimConfig;
use monitoring_service::notify::{Channel, parse_channels};
use monitoring_service::storage::leases;
use monitoring_service::trigger::CHANNEL_CHANGED;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::eventually;
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::strategies::set_frequency;
use crate::support::trigger_apps::{app, app_with, btc_above_one, configure, run_frequency};

async fn deliveries(pool: &PgPool, id: Uuid) -> Value {
    sqlx::query_scalar("SELECT deliveries FROM strategy_trigger_logs WHERE strategy_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A strategy "BTCUSDT above 1" in trigger `mode`, delivering to `channels`.
async fn strategy(pool: &PgPool, mode: &str, channels: Value) -> Uuid {
    let (id, _) = insert_strategy(pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    configure(pool, id, mode, channels, None).await;
    id
}

/// A trigger claimed by a replica that died before sending: its lease (a name no live
/// replica holds) has lapsed, its deliveries are pending with the channels' fingerprints.
async fn left_by_a_dead_replica(pool: &PgPool, id: Uuid, channels: &Value) {
    let parsed: Vec<Channel> = parse_channels(&channels.to_string()).unwrap();
    let pending: Vec<Value> = parsed
        .iter()
        .map(|c| {
            json!({"channel": c.kind(), "status": "pending", "attempts": 0,
                        "error": null, "fingerprint": c.fingerprint()})
        })
        .collect();
    sqlx::query(
        "INSERT INTO leases (name, holder, token, expires_at)
         VALUES ('deliveries:dead', 'dead', nextval('lease_tokens'), now() - interval '1 second')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO strategy_trigger_logs
             (strategy_id, triggered_at, dedup_key, snapshot, message, deliveries, lease_name, lease_token)
         SELECT $1, now(), $2, $3, 'BTC strength: BTCUSDT above 1', $4, name, token
           FROM leases WHERE name = 'deliveries:dead'",
    )
    .bind(id)
    .bind(format!("{id}:once"))
    .bind(json!({"strategy_name": "BTC strength", "conditions": []}))
    .bind(Value::Array(pending))
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn a_slow_delivery_is_not_resumed_while_its_lease_lives(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    // An 8 s answer: within the request timeout and, here, the first-byte timeout.
    recorder.delay("/slow", Duration::from_secs(8));
    let slow_ok = [("NOTIFY_FIRST_BYTE_TIMEOUT_MS", "10000")];
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/slow")}]),
    )
    .await;
    // A daily batch run mid-day: its period (and the trigger's time) began at 00:00,
    // hours before the claim.
    set_frequency(&pool, id, "1d").await;
    let a = app_with(pool.clone(), &sim, &slow_ok).await;
    let (status, report) = a.internal(reqwest::Method::POST, "/internal/run/1d").await;
    assert_eq!(
        (status, report["triggered"].clone()),
        (200, json!(1)),
        "{report}"
    );
    eventually(Duration::from_secs(5), "the slow answer is awaited", || {
        let got = recorder.received("/slow").len();
        async move { (got == 1).then_some(()) }
    })
    .await;
    // A second replica starts while the answer is awaited; both resume.
    let b = app_with(pool.clone(), &sim, &slow_ok).await;
    let (from_a, from_b) = tokio::join!(
        a.state.triggers.resume_pending(),
        b.state.triggers.resume_pending(),
    );
    assert_eq!((from_a.unwrap(), from_b.unwrap()), (0, 0));
    a.state.triggers.wait_for_deliveries().await;
    assert_eq!(recorder.received("/slow").len(), 1, "exactly one message");
    assert_eq!(deliveries(&pool, id).await[0]["status"], "delivered");
    assert_eq!(b.state.triggers.resume_pending().await.unwrap(), 0);
    assert_eq!(recorder.received("/slow").len(), 1);
}

#[sqlx::test]
async fn a_lapsed_lease_is_resumed_once_even_for_a_completed_once_strategy(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    let channels = json!([{"type": "discord", "webhook_url": format!("http://{address}/once")},
                          {"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]);
    configure(&pool, id, "once", channels.clone(), None).await;
    // The claim completed the strategy; the replica died before sending.
    sqlx::query("UPDATE strategies SET status = 'completed' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    left_by_a_dead_replica(&pool, id, &channels).await;

    let (a, b) = (app(pool.clone(), &sim).await, app(pool.clone(), &sim).await);
    let (from_a, from_b) = tokio::join!(
        a.state.triggers.resume_pending(),
        b.state.triggers.resume_pending(),
    );
    assert_eq!(
        from_a.unwrap() + from_b.unwrap(),
        2,
        "both channels, by one replica"
    );
    assert_eq!(recorder.received("/once").len(), 1);
    let hook = recorder.received("/hook");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].headers["x-idempotency-key"], format!("{id}:once"));
    let recorded = deliveries(&pool, id).await;
    assert_eq!(
        (recorded[0]["status"].clone(), recorded[1]["status"].clone()),
        (json!("delivered"), json!("delivered")),
        "{recorded}"
    );
    assert_eq!(a.state.triggers.resume_pending().await.unwrap(), 0);
    assert_eq!(recorder.received("/once").len(), 1);
}

#[sqlx::test]
async fn a_channel_edited_after_the_claim_is_not_sent_to(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    let claimed = json!([{"type": "slack", "webhook_url": format!("http://{address}/old")}]);
    configure(&pool, id, "every_time", claimed.clone(), None).await;
    left_by_a_dead_replica(&pool, id, &claimed).await;
    // The owner points the channel somewhere else after the claim.
    configure(
        &pool,
        id,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/new")}]),
        None,
    )
    .await;
    let a = app(pool.clone(), &sim).await;
    assert_eq!(a.state.triggers.resume_pending().await.unwrap(), 0);
    assert!(
        recorder.received("/new").is_empty(),
        "not to the new address"
    );
    assert!(recorder.received("/old").is_empty(), "nor to the old one");
    let recorded = deliveries(&pool, id).await;
    assert_eq!(recorded[0]["status"], "failed");
    assert_eq!(recorded[0]["error"], CHANNEL_CHANGED);
}

#[sqlx::test]
async fn a_replica_whose_lease_was_taken_over_cannot_record(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    recorder.delay("/paused", Duration::from_secs(3));
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/paused")}]),
    )
    .await;
    let a = app(pool.clone(), &sim).await;
    let (status, report) = a.internal(reqwest::Method::POST, "/internal/run/1m").await;
    assert_eq!(
        (status, report["triggered"].clone()),
        (200, json!(1)),
        "{report}"
    );
    eventually(Duration::from_secs(5), "a's request is in flight", || {
        let got = recorder.received("/paused").len();
        async move { (got == 1).then_some(()) }
    })
    .await;
    // A stops renewing (paused) long enough for its lease to lapse; B takes over.
    leases::expire_all(&pool).await.unwrap();
    let b = app(pool.clone(), &sim).await;
    assert_eq!(b.state.triggers.resume_pending().await.unwrap(), 1);
    // The paused replica's request was accepted: the one duplicate a lapse allows.
    a.state.triggers.wait_for_deliveries().await;
    assert_eq!(recorder.received("/paused").len(), 2);
    let (name, recorded): (String, Value) = sqlx::query_as(
        "SELECT lease_name, deliveries FROM strategy_trigger_logs WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(name, b.state.triggers.lease().current().await.unwrap().name);
    assert_eq!(recorded[0]["status"], "delivered");
    assert_eq!(
        recorded[0]["attempts"], 1,
        "b's outcome, not a's on top of it"
    );
}

#[sqlx::test]
async fn an_edge_that_fired_is_remembered_even_when_the_state_save_fails(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let id = strategy(
        &pool,
        "on_rising_edge",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/edge")}]),
    )
    .await;
    sqlx::query("UPDATE strategies SET cooldown_seconds = 0, frequency = '10s' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let a = app(pool.clone(), &sim).await;
    // The batch's own state write fails after the claim: Postgres refuses every state
    // row that records no trigger (the claim's rows record one) while the run lasts.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_state_save() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.last_triggered_at IS NULL THEN
             RAISE EXCEPTION 'state write refused by the test';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_state_save BEFORE INSERT ON strategy_state
           FOR EACH ROW EXECUTE FUNCTION refuse_state_save();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, _) = a.internal(reqwest::Method::POST, "/internal/run/10s").await;
    assert_eq!(status, 503, "the batch reports the failed write");
    sqlx::raw_sql("DROP TRIGGER refuse_state_save ON strategy_state")
        .execute(&pool)
        .await
        .unwrap();
    a.state.triggers.wait_for_deliveries().await;
    assert_eq!(recorder.received("/edge").len(), 1);
    // Still true in the next 10 s period: not a rising edge, whatever the failed write
    // lost.
    let period = |t: chrono::DateTime<chrono::Utc>| t.timestamp() / 10;
    let first = period(chrono::Utc::now());
    eventually(Duration::from_secs(15), "the next period", || async move {
        (period(chrono::Utc::now()) > first).then_some(())
    })
    .await;
    let report = run_frequency(&a, "10s").await;
    assert_eq!(report["triggered"], 0, "{report}");
    assert_eq!(recorder.received("/edge").len(), 1);
}

#[sqlx::test]
async fn replicas_waking_at_different_times_claim_the_cron_period_they_were_scheduled_for(
    pool: PgPool,
) {
    use monitoring_service::frequency::Frequency;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/cron")}]),
    )
    .await;
    let cron = "0 * * * * *";
    set_frequency(&pool, id, cron).await;
    let (a, b) = (app(pool.clone(), &sim).await, app(pool.clone(), &sim).await);
    let frequency = Frequency::parse(cron).unwrap();
    let now = chrono::Utc::now();
    let scheduled =
        frequency.due_at_or_before(now) - chrono::Duration::seconds(now.timestamp() % 60);
    // Each replica woke up at its own moment (b over a second after a) for the same
    // scheduled time.
    let from_a = a
        .state
        .batches
        .run_at(&frequency, Some(scheduled))
        .await
        .unwrap();
    let from_b = b
        .state
        .batches
        .run_at(&frequency, Some(scheduled))
        .await
        .unwrap();
    a.state.triggers.wait_for_deliveries().await;
    b.state.triggers.wait_for_deliveries().await;
    assert_eq!(from_a.triggered + from_b.triggered, 1);
    assert_eq!(recorder.received("/cron").len(), 1);
    let key: String =
        sqlx::query_scalar("SELECT dedup_key FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(key, format!("{id}:at:{}", scheduled.timestamp_millis()));
}

#[sqlx::test]
async fn shutdown_leaves_what_waits_pending_and_another_replica_finishes_it(pool: PgPool) {
    use monitoring_service::notify::INTERRUPTED;
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    // The first answer asks to come back in 30 s.
    recorder.script(
        "/later",
        vec![(
            429,
            vec![("retry-after", "30".to_owned())],
            "slow down".into(),
        )],
    );
    let id = strategy(
        &pool,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/later")}]),
    )
    .await;
    // A stopped app closes its pool: what follows uses a pool of its own.
    let other = PgPool::connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let a = app(pool.clone(), &sim).await;
    let (status, report) = a.internal(reqwest::Method::POST, "/internal/run/1m").await;
    assert_eq!(
        (status, report["triggered"].clone()),
        (200, json!(1)),
        "{report}"
    );
    eventually(Duration::from_secs(5), "the 429", || {
        let got = recorder.received("/later").len();
        async move { (got == 1).then_some(()) }
    })
    .await;
    // Shut down while the delivery waits out its Retry-After: it is not waited for.
    a.stop().await.unwrap();
    let recorded = deliveries(&other, id).await;
    assert_eq!(
        (
            recorded[0]["status"].clone(),
            recorded[0]["attempts"].clone(),
            recorded[0]["error"].clone()
        ),
        (json!("pending"), json!(1), json!(INTERRUPTED))
    );
    // Its lease was released: another replica takes it over at once, not after 30 s.
    let b = app(other.clone(), &sim).await;
    assert_eq!(b.state.triggers.resume_pending().await.unwrap(), 1);
    assert_eq!(recorder.received("/later").len(), 2);
    let recorded = deliveries(&other, id).await;
    assert_eq!(
        (
            recorded[0]["status"].clone(),
            recorded[0]["attempts"].clone()
        ),
        (json!("delivered"), json!(2))
    );
}
