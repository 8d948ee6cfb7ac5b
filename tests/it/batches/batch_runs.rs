//! Batches through `POST /internal/run/{frequency}`: the real server, Postgres and the
//! market simulator. Each batch evaluates its strategies on one snapshot, writes their
//! state in one statement and one ledger row.

use std::time::Duration;

use market_sim::{Fault, FaultKind, Provider, SimConfig, SimHandle};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, set_frequency};
use crate::support::{TEST_KEY, TestApp, test_config};

/// A simulator running in real time, so the service's clock and the market agree.
async fn live_sim() -> SimHandle {
    market_sim::start(SimConfig::default())
        .await
        .expect("simulator starts")
}

async fn app_on(pool: PgPool, sim: &SimHandle) -> TestApp {
    let binance = sim.binance_url();
    let coingecko = sim.coingecko_url();
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("COINGECKO_BASE_URL", &coingecko),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;
    app.wait_ready().await;
    app
}

fn alert(symbol: &str, operator: &str, value: f64) -> (&'static str, Value) {
    (
        "price_alert",
        json!({"source": "binance", "symbol": symbol, "operator": operator, "value": value}),
    )
}

async fn run(app: &TestApp, frequency: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/internal/run/{frequency}")))
        .header("X-MONITORING-KEY", TEST_KEY)
        .send()
        .await
        .unwrap();
    let answer = (response.status().as_u16(), response.json().await.unwrap());
    // Alerts go out in the background once claimed.
    app.state.triggers.wait_for_deliveries().await;
    answer
}

#[sqlx::test]
async fn a_batch_evaluates_its_strategies_and_writes_state_and_the_ledger(pool: PgPool) {
    let sim = live_sim().await;
    let user = Uuid::new_v4();
    let (above, _) = insert_strategy(&pool, user, &[alert("BTCUSDT", "above", 1.0)], None).await;
    let (below, _) = insert_strategy(&pool, user, &[alert("BTCUSDT", "below", 1.0)], None).await;
    let (unknown, _) = insert_strategy(&pool, user, &[alert("NOPEUSDT", "above", 1.0)], None).await;
    let (cross, cross_conditions) =
        insert_strategy(&pool, user, &[alert("ETHUSDT", "crosses_above", 1.0)], None).await;
    let (other, _) = insert_strategy(&pool, user, &[alert("BTCUSDT", "above", 1.0)], None).await;
    set_frequency(&pool, other, "5m").await;
    let app = app_on(pool.clone(), &sim).await;

    let (status, first) = run(&app, "1m").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["frequency"], "1m");
    // The cross has no previous price yet: unknown, but waiting for one is no error;
    // the invalid symbol is.
    assert_eq!(
        (
            first["evaluated"].as_u64(),
            first["triggered"].as_u64(),
            first["errors"].as_u64()
        ),
        (Some(4), Some(1), Some(1))
    );
    assert_eq!(first["data_failures"], 1);

    let state = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (Option<bool>, Value, i32)>(
                "SELECT last_result, previous_values, consecutive_errors FROM strategy_state WHERE strategy_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(state(above).await.0, Some(true));
    assert_eq!(state(below).await.0, Some(false));
    assert_eq!(state(unknown).await, (None, json!({}), 1));
    let remembered = state(cross).await.1;
    let eth = remembered[cross_conditions[0].to_string()]
        .as_f64()
        .expect("the price is remembered");
    assert!(eth > 1_000.0);

    // The second batch compares the cross with the remembered price: no longer unknown.
    let (_, second) = run(&app, "1m").await;
    assert_eq!(
        (second["evaluated"].as_u64(), second["errors"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        state(cross).await.0,
        Some(false),
        "a price above 1 did not cross 1 since"
    );
    assert_eq!(state(unknown).await.2, 2);
    let ledger: Vec<(String, i32, i32, i32, i32, String)> = sqlx::query_as(
        "SELECT name, evaluated, triggered, errors, skipped, status FROM monitor_ledger
          WHERE name LIKE 'batch:%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        vec![
            ("batch:1m".into(), 4, 1, 1, 0, "partial".into()),
            // Still true, but within its cooldown: no second trigger.
            ("batch:1m".into(), 4, 0, 1, 0, "partial".into()),
        ]
    );
    assert!(
        sqlx::query_scalar::<_, Option<Value>>(
            "SELECT previous_values FROM strategy_state WHERE strategy_id = $1"
        )
        .bind(other)
        .fetch_optional(&pool)
        .await
        .unwrap()
        .is_none(),
        "the 5m strategy is not in the 1m batch"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"monitoring_evaluations_total{frequency="1m",result="true"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"monitoring_evaluations_total{frequency="1m",result="unknown"} 3"#));
}

#[sqlx::test]
async fn unknown_frequencies_are_refused_and_overlapping_runs_are_skipped(pool: PgPool) {
    let sim = live_sim().await;
    insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[alert("BTCUSDT", "above", 1.0)],
        None,
    )
    .await;
    let app = app_on(pool.clone(), &sim).await;
    for frequency in ["2m", "candle_close", "0%20*%20*%20*%20*"] {
        let (status, body) = run(&app, frequency).await;
        assert_eq!(status, 400, "{frequency}: {body}");
        assert_eq!(body["error"], "invalid_frequency");
    }
    // A cron frequency with no strategy runs an empty batch.
    let (status, body) = run(&app, "0%20*%2F5%20*%20*%20*%20*").await;
    assert_eq!((status, body["evaluated"].as_u64()), (200, Some(0)));

    // A slow market keeps the first run busy while the second arrives.
    sim.state.faults.push(Fault {
        provider: Provider::Binance,
        endpoint: None,
        kind: FaultKind::Latency { ms: 1_500 },
        times: Some(1),
    });
    let (first, second) = tokio::join!(run(&app, "1m"), async {
        crate::support::eventually(
            Duration::from_secs(5),
            "the first batch to reach the market",
            || async { (sim.state.request_count(Provider::Binance, None) >= 1).then_some(()) },
        )
        .await;
        run(&app, "1m").await
    });
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 409, "{}", second.1);
    assert_eq!(second.1["error"], "batch_running");
    let skipped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM monitor_ledger WHERE status = 'skipped' AND name = 'batch:1m'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(skipped, 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"monitoring_batches_skipped_total{frequency="1m"} 1"#));
}

#[sqlx::test]
async fn the_scheduler_runs_each_batch_on_its_wall_clock_boundary(pool: PgPool) {
    let sim = live_sim().await;
    let (id, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[alert("BTCUSDT", "above", 1.0)],
        None,
    )
    .await;
    set_frequency(&pool, id, "10s").await;
    let binance = sim.binance_url();
    let config = test_config(
        false,
        &[("BINANCE_BASE_URL", &binance), ("ENABLE_SCHEDULER", "true")],
    );
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.wait_ready().await;
    let started: Vec<chrono::DateTime<chrono::Utc>> =
        crate::support::eventually(Duration::from_secs(25), "two scheduled 10s batches", || async {
            let rows: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
                "SELECT started_at FROM monitor_ledger WHERE name = 'batch:10s' AND status = 'ok' ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            (rows.len() >= 2).then_some(rows)
        })
        .await;
    for at in &started[..2] {
        // Started on a 10 s boundary (a little after it, never before).
        let into = at.timestamp_millis().rem_euclid(10_000);
        assert!(into < 2_000, "a batch started {into} ms into its period");
    }
    // Consecutive periods: none skipped, none run twice.
    let period = |at: &chrono::DateTime<chrono::Utc>| at.timestamp_millis().div_euclid(10_000);
    assert_eq!(period(&started[1]) - period(&started[0]), 1);
    let state: Option<bool> =
        sqlx::query_scalar("SELECT last_result FROM strategy_state WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, Some(true));
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_once_per_bar_close_price_strategy_fires_at_each_close_of_its_frequency(pool: PgPool) {
    use monitoring_service::frequency::Frequency;
    let sim = live_sim().await;
    let (id, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[alert("BTCUSDT", "above", 1.0)],
        None,
    )
    .await;
    sqlx::query(
        "UPDATE strategies SET frequency = '1m', trigger_mode = 'once_per_bar_close',
                cooldown_seconds = 0 WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let app = app_on(pool.clone(), &sim).await;
    // No indicator, so no candle feed closes its bar: each 1m period boundary does.
    let frequency = Frequency::parse("1m").unwrap();
    let boundary = frequency.due_at_or_before(chrono::Utc::now());
    let mut triggered = Vec::new();
    for scheduled in [boundary, boundary, boundary + chrono::Duration::minutes(1)] {
        let report = app
            .state
            .batches
            .run_at(&frequency, Some(scheduled))
            .await
            .unwrap();
        triggered.push(report.triggered);
    }
    assert_eq!(triggered, [1, 0, 1], "once per closed bar");
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM strategy_trigger_logs WHERE strategy_id = $1 ORDER BY triggered_at",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    // Keyed by the bar that closed at the boundary, not the one that opened there.
    let closed =
        |at: chrono::DateTime<chrono::Utc>| format!("{id}:bar:{}", at.timestamp_millis() - 60_000);
    assert_eq!(
        keys,
        [
            closed(boundary),
            closed(boundary + chrono::Duration::minutes(1))
        ]
    );
}

#[sqlx::test]
async fn missed_periods_are_evaluated_in_order_but_none_before_the_strategys_version(pool: PgPool) {
    use chrono::Duration;
    use monitoring_service::frequency::Frequency;
    let sim = live_sim().await;
    let (id, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[alert("BTCUSDT", "above", 1.0)],
        None,
    )
    .await;
    let frequency = Frequency::parse("10s").unwrap();
    let start = frequency.due_at_or_before(chrono::Utc::now()) - Duration::minutes(5);
    let set_version = |at: chrono::DateTime<chrono::Utc>| {
        sqlx::query(
            "UPDATE strategies SET frequency = '10s', trigger_mode = 'every_time',
                    cooldown_seconds = 0, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&pool)
    };
    set_version(start - Duration::minutes(1)).await.unwrap();
    let app = app_on(pool.clone(), &sim).await;
    let run = |due| {
        let batches = app.state.batches.clone();
        let frequency = frequency.clone();
        async move { batches.run_at(&frequency, Some(due)).await.unwrap() }
    };
    assert_eq!(run(start).await.triggered, 1);
    // Three periods pass unevaluated; the next one's run evaluates them first, in order.
    assert_eq!(run(start + Duration::seconds(40)).await.triggered, 1);
    // Resumed 35 s later (a new version): of the periods it was away, none is caught up
    // from before its version.
    set_version(start + Duration::seconds(75)).await.unwrap();
    app.state.loader.reload_all().await.unwrap();
    assert_eq!(run(start + Duration::seconds(100)).await.triggered, 1);
    // A period already evaluated is not evaluated again.
    assert_eq!(run(start + Duration::seconds(100)).await.triggered, 0);
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM strategy_trigger_logs WHERE strategy_id = $1 ORDER BY triggered_at",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    let at = |seconds: i64| {
        format!(
            "{id}:at:{}",
            (start + Duration::seconds(seconds)).timestamp_millis()
        )
    };
    assert_eq!(
        keys,
        [
            at(0),
            at(10),
            at(20),
            at(30),
            at(40),
            at(80),
            at(90),
            at(100)
        ]
    );
    let late: Vec<bool> = sqlx::query_scalar(
        "SELECT (snapshot->>'late')::boolean FROM strategy_trigger_logs
          WHERE strategy_id = $1 ORDER BY triggered_at",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        late.iter().all(|l| *l),
        "minutes after their time, every one is late: {late:?}"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn a_strategy_deleted_while_its_batch_runs_leaves_the_others_states_written(pool: PgPool) {
    let sim = live_sim().await;
    let user = Uuid::new_v4();
    let (fires, _) = insert_strategy(&pool, user, &[alert("BTCUSDT", "above", 1.0)], None).await;
    let (deleted, _) = insert_strategy(&pool, user, &[alert("BTCUSDT", "below", 1.0)], None).await;
    // synapse-api deletes the second strategy while the batch runs: right as the first
    // one's trigger is claimed, after both were evaluated and before their states are
    // written.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION delete_meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN DELETE FROM strategies WHERE id = '{deleted}'; RETURN NEW; END $$;
         CREATE TRIGGER delete_meanwhile AFTER INSERT ON strategy_trigger_logs
           FOR EACH ROW EXECUTE FUNCTION delete_meanwhile();"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let app = app_on(pool.clone(), &sim).await;

    let (status, report) = run(&app, "1m").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["evaluated"].as_u64(), report["triggered"].as_u64()),
        (Some(2), Some(1))
    );
    let states: Vec<(Uuid, Option<bool>)> =
        sqlx::query_as("SELECT strategy_id, last_result FROM strategy_state ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(states, vec![(fires, Some(true))]);
}
