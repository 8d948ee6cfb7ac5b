//! Candle-close analysis (DESIGN §14) on the simulator's fast clock (a 1m candle every
//! 2 s) with the simulated llm-proxy: each transition and expiry, one decision per
//! (schedule, close) with a second replica and a backfill, exactly the last N closed
//! candles sent, a claim left by a crashed process resumed, schedules followed as they
//! are added, and the traders' canary. Failures and the budget are in
//! `analysis_failures.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use market_sim::{LlmAnswer, SimConfig};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::analysis_setup::{
    KEY, MINUTE, SYMBOL, decisions, fast_sim, proxy, requests_for, schedule, schedule_of, start,
    status_of, wait_status,
};
use crate::support::process::{Service, base_vars, migrate};
use crate::support::{ScratchDatabase, eventually, redis_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decision_moves_its_schedule_with_the_last_closed_candles() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    let (entered, entered_signal) = schedule(&pool, "1m", 5).await;
    let (abandoned, abandoned_signal) = schedule(&pool, "1m", 5).await;
    let (expired, expired_signal) = schedule(&pool, "1m", 2).await;
    proxy.script(
        &entered_signal.to_string(),
        vec![LlmAnswer::decide("continue"), LlmAnswer::decide("enter")],
    );
    proxy.script(
        &abandoned_signal.to_string(),
        vec![LlmAnswer::decide("continue"), LlmAnswer::decide("abandon")],
    );
    // Decisions on Redis: subscribed before anything is analysed.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("signal.decision").await.unwrap();
    let (sender, mut published) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let follower = tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload().unwrap();
            let _ = sender.send(serde_json::from_str(&payload).unwrap());
        }
    });
    let app = start(&pool, &sim, &proxy, &[("ANALYSIS_CANDLES", "30")]).await;

    wait_status(&pool, entered, "in_position").await;
    wait_status(&pool, abandoned, "expired").await;
    wait_status(&pool, expired, "expired").await;
    for (id, last, status) in [
        (entered, "enter", "in_position"),
        (abandoned, "abandon", "expired"),
        (expired, "continue", "expired"),
    ] {
        let rows = decisions(&pool, id).await;
        let kinds: Vec<&str> = rows.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(kinds, ["continue", last], "{id}");
        assert_eq!(rows[1].1 - rows[0].1, MINUTE, "consecutive closes");
        assert_eq!(status_of(&pool, id).await, (status.to_owned(), 2, 0, false));
    }

    // Exactly the last 30 closed candles, ending with the analysed one, as the
    // simulator has them; the key as a bearer token.
    let market = sim.state.market.read().unwrap().binance[SYMBOL].clone();
    let sent = requests_for(&proxy, entered_signal);
    assert_eq!(sent.len(), 2, "one call per close");
    let rows = decisions(&pool, entered).await;
    for (request, (_, candle)) in sent.iter().zip(&rows) {
        assert_eq!(request["operation"], "analyze-signal");
        assert_eq!(request["symbol"], SYMBOL);
        assert_eq!(request["interval"], "1m");
        assert_eq!(request["candle_open_time"], *candle);
        let candles = request["candles"].as_array().unwrap();
        assert_eq!(candles.len(), 30);
        for (i, sent) in candles.iter().enumerate() {
            let open = candle - (29 - i as i64) * MINUTE;
            assert_eq!(sent["open_time"], open);
            let expected = market.candle(open, MINUTE, i64::MAX);
            // Binance's wire format carries 8 decimals.
            assert!((sent["close"].as_f64().unwrap() - expected.close).abs() < 1e-8);
            assert!((sent["high"].as_f64().unwrap() - expected.high).abs() < 1e-8);
        }
    }
    // The candles came from the kline cache the stream keeps: the six analyses made no
    // REST call of their own (the feed's first fill is the one).
    let rest_fills = sim
        .state
        .requests
        .records()
        .iter()
        .filter(|r| r.endpoint == "/api/v3/klines" && r.query.contains(SYMBOL))
        .count();
    assert!(rest_fills <= 2, "{rest_fills} REST fetches of {SYMBOL}");
    assert_eq!(sent[0]["reanalysis"], 1);
    assert_eq!(sent[1]["reanalysis"], 2);
    let authorization = proxy.requests()[0].authorization.clone();
    assert_eq!(authorization, Some(format!("Bearer {KEY}")));

    // Each decision was published once, with the status it led to (other tests
    // publish on the same channel: only ours count).
    let ours: BTreeSet<String> = [entered_signal, abandoned_signal, expired_signal]
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut seen: Vec<Value> = Vec::new();
    eventually(Duration::from_secs(10), "six decisions published", || {
        while let Ok(message) = published.try_recv() {
            if message["signal_id"]
                .as_str()
                .is_some_and(|s| ours.contains(s))
            {
                seen.push(message);
            }
        }
        std::future::ready((seen.len() >= 6).then_some(()))
    })
    .await;
    let mut by_signal: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for message in &seen {
        by_signal
            .entry(message["signal_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                message["decision"].as_str().unwrap().to_owned(),
                message["status"].as_str().unwrap().to_owned(),
            ));
        assert!(message["confidence"].as_f64().is_some());
        assert!(message["trader_id"].as_str().is_some());
    }
    let pair = |d: &str, s: &str| (d.to_owned(), s.to_owned());
    assert_eq!(
        by_signal[&entered_signal.to_string()],
        [pair("continue", "monitoring"), pair("enter", "in_position")]
    );
    assert_eq!(
        by_signal[&abandoned_signal.to_string()],
        [pair("continue", "monitoring"), pair("abandon", "expired")]
    );
    assert_eq!(
        by_signal[&expired_signal.to_string()],
        [pair("continue", "monitoring"), pair("continue", "expired")]
    );
    assert_eq!(seen.len(), 6);
    follower.abort();
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_a_backfill_analyse_each_close_once() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    let mut schedules = Vec::new();
    for _ in 0..5 {
        schedules.push(schedule(&pool, "1m", 1000).await);
    }
    let first = start(&pool, &sim, &proxy, &[]).await;
    let second = start(&pool, &sim, &proxy, &[]).await;
    // Two closes, then the stream drops for a while (the closes meanwhile come from
    // the backfill), then two more.
    let analysed_through = |n: usize| {
        let pool = pool.clone();
        let ids: Vec<Uuid> = schedules.iter().map(|s| s.0).collect();
        async move {
            let counts: Vec<i64> = sqlx::query_scalar(
                "SELECT count(*) FROM monitoring_decisions WHERE schedule_id = ANY($1)
                   AND decision = 'continue' GROUP BY schedule_id",
            )
            .bind(&ids)
            .fetch_all(&pool)
            .await
            .unwrap();
            (counts.len() == ids.len() && counts.iter().all(|c| *c as usize >= n)).then_some(())
        }
    };
    eventually(Duration::from_secs(30), "two closes analysed", || {
        analysed_through(2)
    })
    .await;
    sim.state.drop_websockets(Duration::from_secs(3));
    eventually(Duration::from_secs(60), "four more closes analysed", || {
        analysed_through(6)
    })
    .await;

    // At the proxy: no (signal, candle) twice; each call matches one stored decision.
    let requests = proxy.requests();
    let mut seen = BTreeSet::new();
    for request in &requests {
        let key = (
            request.body["signal_id"].as_str().unwrap().to_owned(),
            request.body["candle_open_time"].as_i64().unwrap(),
        );
        assert!(seen.insert(key.clone()), "analysed twice: {key:?}");
    }
    // Every stored decision is one of those calls.
    let ids: Vec<Uuid> = schedules.iter().map(|s| s.0).collect();
    let stored: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT entity_id, candle_open_time FROM monitoring_decisions
          WHERE schedule_id = ANY($1) AND decision = 'continue'",
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(stored.len() >= 30);
    for (signal, candle) in &stored {
        assert!(
            seen.contains(&(signal.to_string(), *candle)),
            "{signal} {candle}"
        );
    }
    // Each schedule's analysed candles are distinct minutes in order (closes the
    // backfill delivered late are skipped as stale, never analysed twice).
    for (id, _) in &schedules {
        let rows = decisions(&pool, *id).await;
        let candles: Vec<i64> = rows.iter().map(|r| r.1).collect();
        assert!(candles.windows(2).all(|w| w[0] < w[1]), "{candles:?}");
    }
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_process_is_resumed_and_the_key_never_logged() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    // Real time (the binary's clock) and weekly candles: the candle stays the latest
    // for the test's length.
    let sim = market_sim::start(SimConfig {
        extra_symbols: vec![SYMBOL.into()],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let proxy = proxy().await;
    let (id, signal) = schedule(&pool, "1w", 5).await;
    // In the cycle already: after a start, the latest close it missed is analysed.
    sqlx::query("UPDATE workflow_schedules SET last_candle_time = 0 WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let mut vars = base_vars(&database.url, &redis_url());
    vars.extend([
        ("BINANCE_BASE_URL", sim.binance_url()),
        ("ANALYSIS_URL", proxy.url()),
        ("ANALYSIS_API_KEY", KEY.to_owned()),
        ("ANALYSIS_TIMEOUT_MS", "1000".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ]);
    let log = std::env::temp_dir().join(format!("analysis-crash-{}.log", Uuid::new_v4()));
    let mut crashing = vars.clone();
    crashing.push(("MONITORING_FAIL_POINT", "analysis_after_claim".to_owned()));
    let doomed = Service::start(&crashing, &log);
    let pending = eventually(Duration::from_secs(30), "the claim", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT candle_open_time FROM monitoring_decisions WHERE schedule_id = $1 AND decision = 'pending'",
        )
        .bind(id)
        .fetch_optional(&pool)
        .await
        .unwrap()
    })
    .await;
    doomed.kill();
    assert!(proxy.requests().is_empty(), "killed before any call");

    let survivor = Service::start(&vars, &log);
    wait_status_or_count(&pool, id).await;
    let rows = decisions(&pool, id).await;
    assert_eq!(rows, [("continue".to_owned(), pending)]);
    let sent = requests_for(&proxy, signal);
    assert_eq!(sent.len(), 1, "analysed once, by the survivor");
    assert_eq!(sent[0]["candle_open_time"], pending);
    // Run by name, the monitor reloads the schedules and finds no stale claim left.
    let (status, run) = survivor
        .post_json("/internal/monitors/analysis/run", &json!({}))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(
        run["details"],
        json!({"schedules": 1, "resumed": 0}),
        "{run}"
    );
    assert_eq!(
        requests_for(&proxy, signal).len(),
        1,
        "nothing analysed twice"
    );
    survivor.kill();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("resuming a claim left pending"), "{logged}");
    assert!(!logged.contains(KEY), "the API key appears in the log");
    pool.close().await;
    database.drop_now().await;
}

async fn wait_status_or_count(pool: &PgPool, id: Uuid) {
    eventually(Duration::from_secs(60), "the resumed analysis", || async {
        (status_of(pool, id).await.1 == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_added_later_is_followed_on_workflow_updated_and_shown() {
    // A scratch database rather than `sqlx::test`'s: these tests hold several
    // connections for seconds, and sqlx's shared parent pool (20) ran dry across them.
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    let app = start(&pool, &sim, &proxy, &[]).await;
    let schedules = || async {
        let (_, status) = app.internal(reqwest::Method::GET, "/internal/status").await;
        status["analysis"]["schedules"].as_u64()
    };
    eventually(Duration::from_secs(10), "the empty book loaded", || async {
        (schedules().await == Some(0)).then_some(())
    })
    .await;
    let (id, signal) = schedule(&pool, "1m", 1).await;
    proxy.script(&signal.to_string(), vec![LlmAnswer::decide("enter")]);
    // synapse-api's announcement: the replica reads the schedules at once (before its
    // 10 s resync) and follows the series.
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("workflow:updated")
        .arg(json!({"schedule_id": id}).to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the new schedule loaded",
        || async { (schedules().await == Some(1)).then_some(()) },
    )
    .await;
    wait_status(&pool, id, "in_position").await;

    let (status, view) = app
        .internal(reqwest::Method::GET, &format!("/internal/workflows/{id}"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["schedule"]["status"], "in_position");
    assert_eq!(view["schedule"]["entity_id"], signal.to_string());
    let decisions = view["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["decision"], "enter");
    assert_eq!(decisions[0]["reasoning"], "simulated: enter");
    assert_eq!(decisions[0]["response"]["decision"], "enter");
    let (status, body) = app
        .internal(
            reqwest::Method::GET,
            &format!("/internal/workflows/{}", Uuid::new_v4()),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = app
        .internal(reqwest::Method::GET, "/internal/workflows/not-a-uuid")
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("id: must be a UUID"))
    );
    // Tokens as the proxy reported them.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("monitoring_analysis_tokens_total{kind=\"completion\"} 24"),
        "{metrics}"
    );
    assert!(metrics.contains("monitoring_analysis_decisions_total{decision=\"enter\"} 1"));
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_traders_of_analysis_traders_are_analysed() {
    let (database, pool) = ScratchDatabase::migrated().await;
    let sim = fast_sim().await;
    let proxy = proxy().await;
    let (canary, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (in_canary, canary_signal) = schedule_of(&pool, "1m", 2, canary).await;
    let (left_out, _) = schedule_of(&pool, "1m", 2, other).await;
    let traders = canary.to_string();
    let app = start(&pool, &sim, &proxy, &[("ANALYSIS_TRADERS", &traders)]).await;
    wait_status(&pool, in_canary, "expired").await;
    assert!(decisions(&pool, left_out).await.is_empty());
    assert_eq!(
        status_of(&pool, left_out).await,
        ("monitoring".to_owned(), 0, 0, true)
    );
    let signals: BTreeSet<String> = proxy
        .requests()
        .iter()
        .map(|r| r.body["signal_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(signals, BTreeSet::from([canary_signal.to_string()]));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("monitoring_analysis_skipped_total{reason=\"trader\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(skipped >= 2, "one per close analysed: {skipped}");
    app.stop().await.unwrap();
    pool.close().await;
    database.drop_now().await;
}
