//! Triggers end to end: a batch on the simulator's prices claims each trigger once,
//! renders its message and delivers it to local stand-ins of Slack, Discord and a
//! webhook receiver — once, across runs and across two service instances.

use market_sim::SimConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::trigger_apps::{app, btc_above_one, configure, run};
use crate::support::{eventually, without_fingerprints};

#[sqlx::test]
async fn each_trigger_is_delivered_once_across_runs_and_instances(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let user = Uuid::new_v4();
    let (every, _) = insert_strategy(&pool, user, &[btc_above_one()], None).await;
    configure(
        &pool,
        every,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/slack")},
               {"type": "webhook", "url": format!("http://{address}/hook"), "secret": "whsec"}]),
        Some("{{ strategy_name }}: {{ symbol }} at {{ value }}"),
    )
    .await;
    let (once, _) = insert_strategy(&pool, user, &[btc_above_one()], None).await;
    configure(
        &pool,
        once,
        "once",
        json!([{"type": "discord", "webhook_url": format!("http://{address}/discord")}]),
        None,
    )
    .await;
    let (flaky, _) = insert_strategy(&pool, user, &[btc_above_one()], None).await;
    configure(
        &pool,
        flaky,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/broken")},
               {"type": "slack", "webhook_url": format!("http://{address}/fine")}]),
        None,
    )
    .await;
    recorder.script(
        "/broken",
        (0..10).map(|_| (500, vec![], String::new())).collect(),
    );

    let first_app = app(pool.clone(), &sim).await;
    let first = run(&first_app).await;
    assert_eq!(first["triggered"], 3, "{first}");

    // The message, rendered from the template, went out once per channel.
    let slack = recorder.received("/slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0].body["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("BTC strength: BTCUSDT at "), "{text}");
    let hook = recorder.received("/hook");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].body["event"], "strategy.triggered");
    assert_eq!(hook[0].body["message"], text);
    let key = hook[0].headers["x-idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(key.starts_with(&format!("{every}:at:")));
    assert_eq!(recorder.received("/discord").len(), 1);
    // The condition as a trader writes it: `BTCUSDT 65,123.45 above 1`.
    let content = recorder.received("/discord")[0].body["content"].clone();
    assert!(
        content.as_str().unwrap().lines().any(|line| line
            .strip_prefix("BTCUSDT ")
            .and_then(|rest| rest.strip_suffix(" above 1"))
            .is_some_and(|price| price.replace(',', "").parse::<f64>().is_ok())),
        "{content}"
    );

    // Trigger logs: one per strategy, deliveries recorded, the dead channel failed
    // while the other channel of the same trigger was delivered.
    let logs: Vec<(Uuid, String, Value, String)> = sqlx::query_as(
        "SELECT strategy_id, dedup_key, deliveries, message FROM strategy_trigger_logs ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(logs.len(), 3);
    let deliveries_of =
        |id: Uuid| without_fingerprints(logs.iter().find(|l| l.0 == id).unwrap().2.clone());
    assert_eq!(
        deliveries_of(every),
        json!([{"channel": "slack", "status": "delivered", "attempts": 1, "error": null},
               {"channel": "webhook", "status": "delivered", "attempts": 1, "error": null}])
    );
    assert_eq!(
        deliveries_of(flaky),
        json!([{"channel": "slack", "status": "failed", "attempts": 5, "error": "HTTP 500"},
               {"channel": "slack", "status": "delivered", "attempts": 1, "error": null}])
    );
    assert_eq!(logs.iter().find(|l| l.0 == every).unwrap().3, text);
    let status: String = sqlx::query_scalar("SELECT status FROM strategies WHERE id = $1")
        .bind(once)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    let (count, last): (i64, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT trigger_count, last_triggered_at FROM strategy_state WHERE strategy_id = $1",
    )
    .bind(every)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert!(last.is_some());

    // Again, and from a second instance on the same database: within the cooldown,
    // nothing more is sent.
    let second_app = app(pool.clone(), &sim).await;
    let (again, other) = tokio::join!(run(&first_app), run(&second_app));
    assert_eq!(
        (again["triggered"].as_u64(), other["triggered"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(recorder.received("/slack").len(), 1);
    assert_eq!(recorder.received("/discord").len(), 1);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM strategy_trigger_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 3);
}

#[sqlx::test]
async fn two_instances_running_the_same_batch_deliver_each_trigger_once(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
        configure(
            &pool,
            id,
            "every_time",
            json!([{"type": "slack", "webhook_url": format!("http://{address}/s{i}")}]),
            None,
        )
        .await;
        ids.push(id);
    }
    let (a, b) = (app(pool.clone(), &sim).await, app(pool.clone(), &sim).await);
    let (from_a, from_b) = tokio::join!(run(&a), run(&b));
    let claimed = from_a["triggered"].as_u64().unwrap() + from_b["triggered"].as_u64().unwrap();
    assert_eq!(claimed, 20, "{from_a} {from_b}");
    for i in 0..20 {
        assert_eq!(
            recorder.received(&format!("/s{i}")).len(),
            1,
            "strategy {i}"
        );
    }
    let logs: i64 = sqlx::query_scalar("SELECT count(*) FROM strategy_trigger_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logs, 20);
}

#[sqlx::test]
async fn replicas_claiming_the_same_triggers_in_opposite_orders_do_not_deadlock(pool: PgPool) {
    use monitoring_service::logic_tree::Tri;
    use monitoring_service::message::AlertFacts;
    use monitoring_service::storage::strategy_state::StateUpdate;
    use monitoring_service::trigger::{TriggerContext, TriggerRequest};
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    for _ in 0..20 {
        insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    }
    // A trigger every period: no cooldown (the claim checks it against the state).
    sqlx::query("UPDATE strategies SET cooldown_seconds = 0")
        .execute(&pool)
        .await
        .unwrap();
    let (a, b) = (app(pool.clone(), &sim).await, app(pool.clone(), &sim).await);
    let strategies: Vec<_> = a
        .state
        .index
        .snapshot()
        .strategies
        .values()
        .cloned()
        .collect();
    // Ten periods: each replica decided the same 20 triggers but lists them in its own
    // order (its index is a hash map). The 20 fit one claim transaction; unless both
    // lock them in one order, the two transactions wait for each other and Postgres
    // aborts one as a deadlock.
    for period in 0..10 {
        let due = chrono::DateTime::from_timestamp(1_800_000_000 + period * 60, 0).unwrap();
        let requests: Vec<TriggerRequest> = strategies
            .iter()
            .map(|strategy| TriggerRequest {
                strategy: strategy.clone(),
                dedup_key: format!("{}:at:{}", strategy.id, due.timestamp_millis()),
                facts: AlertFacts {
                    strategy_id: strategy.id.to_string(),
                    strategy_name: strategy.name.to_string(),
                    triggered_at: due,
                    fired_at: due,
                    late: false,
                    conditions: Vec::new(),
                },
                context: TriggerContext {
                    result: Tri::True,
                    previous_result: None,
                    last_triggered_at: None,
                    scheduled_at: due,
                    bar_open_ms: None,
                },
                update: StateUpdate {
                    strategy_id: strategy.id,
                    result: Some(true),
                    previous: Default::default(),
                    consecutive_errors: 0,
                    candle_open_time: None,
                    period: None,
                },
                fence: None,
            })
            .collect();
        let mut reversed = requests.clone();
        reversed.reverse();
        let (from_a, from_b) = tokio::join!(
            a.state.triggers.claim_and_deliver(requests),
            b.state.triggers.claim_and_deliver(reversed)
        );
        let (from_a, from_b) = (from_a.expect("a claims"), from_b.expect("b claims"));
        assert_eq!(
            from_a + from_b,
            20,
            "period {period}: each trigger claimed once"
        );
    }
    let logs: i64 = sqlx::query_scalar("SELECT count(*) FROM strategy_trigger_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logs, 200);
}

#[sqlx::test]
async fn candle_close_strategies_evaluate_each_close_once(pool: PgPool) {
    use monitoring_service::market::{CandleClosed, ClosedVia, Interval, SeriesKey, Source};
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    // RSI(14) on 1m below 100: true on every close of a wandering price.
    let rsi = (
        "technical_indicator",
        json!({"source": "binance", "symbol": "ETHUSDT", "interval": "1m",
               "indicator": "rsi", "period": 14, "operator": "below", "value": 100}),
    );
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[rsi], None).await;
    configure(
        &pool,
        id,
        "once_per_bar_close",
        json!([{"type": "discord", "webhook_url": format!("http://{address}/bar")}]),
        None,
    )
    .await;
    sqlx::query("UPDATE strategies SET frequency = 'candle_close' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let app = app(pool.clone(), &sim).await;
    let series = SeriesKey {
        source: Source::Binance,
        symbol: "ETHUSDT".into(),
        interval: Interval::M1,
    };
    let last_closed = Interval::M1.last_closed_open(chrono::Utc::now().timestamp_millis());
    let close = |open_time_ms| CandleClosed {
        series: series.clone(),
        open_time_ms,
        close: 0.0,
        via: ClosedVia::Websocket,
    };
    // The same close from the stream and from a backfill, then again after a
    // "restart": evaluated and delivered once.
    let first = app
        .state
        .batches
        .run_closes(&[close(last_closed), close(last_closed)])
        .await
        .unwrap();
    assert_eq!((first[0].evaluated, first[0].triggered), (1, 1));
    let again = app
        .state
        .batches
        .run_closes(&[close(last_closed)])
        .await
        .unwrap();
    assert_eq!(again[0].evaluated, 0, "already evaluated");
    let other_app = self::app(pool.clone(), &sim).await;
    let after_restart = other_app
        .state
        .batches
        .run_closes(&[close(last_closed)])
        .await
        .unwrap();
    assert_eq!(after_restart[0].evaluated, 0);
    app.state.triggers.wait_for_deliveries().await;
    assert_eq!(recorder.received("/bar").len(), 1);
    let key: String =
        sqlx::query_scalar("SELECT dedup_key FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(key, format!("{id}:bar:{last_closed}"));
    let evaluated: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT last_candle_open_time FROM strategy_state WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(evaluated.map(|t| t.timestamp_millis()), Some(last_closed));
    // A close of another series or interval evaluates nothing.
    let unrelated = CandleClosed {
        series: SeriesKey {
            interval: Interval::M5,
            ..series.clone()
        },
        ..close(last_closed)
    };
    assert!(
        app.state
            .batches
            .run_closes(&[unrelated])
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test]
async fn close_events_dropped_by_a_lagging_consumer_are_still_evaluated(pool: PgPool) {
    use monitoring_service::market::{
        CandleClosed, ClosedVia, DataNeeds, Interval, SeriesKey, Source,
    };
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    let mut ids = Vec::new();
    for symbol in symbols {
        let rsi = (
            "technical_indicator",
            json!({"source": "binance", "symbol": symbol, "interval": "1m",
                   "indicator": "rsi", "period": 14, "operator": "below", "value": 100}),
        );
        let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[rsi], None).await;
        sqlx::query("UPDATE strategies SET frequency = 'candle_close' WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        ids.push(id);
    }
    let app = app(pool.clone(), &sim).await;
    // The feed has put each series' closed candles in the kline cache.
    let mut needs = DataNeeds::default();
    for strategy in app.state.index.snapshot().strategies.values() {
        strategy.needs(&mut needs);
    }
    app.state.market.fetch(&needs).await;
    let last_closed = Interval::M1.last_closed_open(chrono::Utc::now().timestamp_millis());

    // A consumer that fell behind: of three close events only the last is still in
    // the channel.
    let (events, receiver) = tokio::sync::broadcast::channel(1);
    for symbol in symbols {
        events
            .send(CandleClosed {
                series: SeriesKey {
                    source: Source::Binance,
                    symbol: symbol.into(),
                    interval: Interval::M1,
                },
                open_time_ms: last_closed,
                close: 0.0,
                via: ClosedVia::Websocket,
            })
            .unwrap();
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let consumer = tokio::spawn(monitoring_service::batches::run_candle_closes(
        app.state.batches.clone(),
        receiver,
        shutdown.clone(),
    ));
    eventually(
        std::time::Duration::from_secs(10),
        "every strategy to evaluate the close, dropped events included",
        || {
            let pool = pool.clone();
            let ids = ids.clone();
            async move {
                let evaluated: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM strategy_state
                      WHERE strategy_id = ANY($1) AND last_candle_open_time >= $2",
                )
                .bind(&ids)
                .bind(chrono::DateTime::from_timestamp_millis(last_closed).unwrap())
                .fetch_one(&pool)
                .await
                .unwrap();
                (evaluated == 3).then_some(())
            }
        },
    )
    .await;
    shutdown.cancel();
    consumer.await.unwrap();
}

#[sqlx::test]
async fn deliveries_left_pending_by_a_crash_are_resumed_once(pool: PgPool) {
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (recorder, address) = Recorder::start().await;
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    configure(
        &pool,
        id,
        "every_time",
        json!([{"type": "slack", "webhook_url": format!("http://{address}/resumed")},
               {"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}]),
        None,
    )
    .await;
    // A trigger claimed by an instance that died before delivering to Slack (the
    // webhook had gone out).
    sqlx::query(
        "INSERT INTO strategy_trigger_logs (strategy_id, triggered_at, dedup_key, snapshot, message, deliveries)
         VALUES ($1, now() - interval '20 minutes', $2, $3, 'BTC strength: BTCUSDT at 65000', $4)",
    )
    .bind(id)
    .bind(format!("{id}:at:1"))
    .bind(json!({"strategy_name": "BTC strength", "conditions": []}))
    .bind(json!([{"channel": "slack", "status": "pending", "attempts": 0, "error": null},
                 {"channel": "webhook", "status": "delivered", "attempts": 1, "error": null}]))
    .execute(&pool)
    .await
    .unwrap();
    let (a, b) = (app(pool.clone(), &sim).await, app(pool.clone(), &sim).await);
    let (from_a, from_b) = tokio::join!(
        a.state.triggers.resume_pending(),
        b.state.triggers.resume_pending(),
    );
    assert_eq!(from_a.unwrap() + from_b.unwrap(), 1);
    let got = recorder.received("/resumed");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["text"], "BTC strength: BTCUSDT at 65000");
    assert!(
        recorder.received("/hook").is_empty(),
        "what was delivered is not sent again"
    );
    let deliveries: Value =
        sqlx::query_scalar("SELECT deliveries FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        deliveries[0],
        json!({"channel": "slack", "status": "delivered", "attempts": 1, "error": null})
    );
    // Nothing is pending any more.
    assert_eq!(a.state.triggers.resume_pending().await.unwrap(), 0);
}
