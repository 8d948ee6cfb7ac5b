//! The acceptance scenario end to end: the whole service with its scheduler and candle
//! feed against the market simulator, alerts recorded by a local Telegram/Slack
//! stand-in — an RSI(14) < 30 `candle_close` strategy on a scripted path, and a
//! process killed mid-cooldown and restarted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use market_sim::{Script, ScriptedPath, SimConfig};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::market::{hour, mirrored_clock};
use crate::support::process::{Service, migrate};
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{ScratchDatabase, TestApp, eventually, redis_url, test_config};

const MINUTE: i64 = 60_000;
const TOKEN: &str = "123456:TEST-TOKEN";

/// Wilder's RSI of the last close, over every close given (TA-Lib's definition: the
/// first average is the mean of the first `period` changes, then smoothed).
fn wilder_rsi(closes: &[f64], period: usize) -> f64 {
    let changes: Vec<f64> = closes.windows(2).map(|w| w[1] - w[0]).collect();
    let n = period as f64;
    let mut gain = changes[..period].iter().map(|c| c.max(0.0)).sum::<f64>() / n;
    let mut loss = changes[..period].iter().map(|c| (-c).max(0.0)).sum::<f64>() / n;
    for change in &changes[period..] {
        gain = (gain * (n - 1.0) + change.max(0.0)) / n;
        loss = (loss * (n - 1.0) + (-change).max(0.0)) / n;
    }
    if loss == 0.0 {
        100.0
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    }
}

/// The value the default message prints for `symbol`: `RSIUSDT (binance 1m): 28.35…,`.
/// The value a message's condition line shows: `RSIUSDT 1m RSI(14) 27.93 below 30 …`.
fn value_in(text: &str, subject: &str) -> f64 {
    let prefix = format!("{subject} ");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no value line in {text:?}"));
    line.split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn rsi_below_30_on_candle_close_sends_one_telegram_message_per_qualifying_close(
    pool: PgPool,
) {
    // A path that rises by 1 a minute for 400 minutes, falls by 10 for 5, then rises by
    // 10 again: RSI(14) is 100 on the way up, below 30 from the third fall on (about
    // 28, 24, 18), and back above 30 (about 32) after the first rise.
    let top = hour(40) + 30 * MINUTE;
    let now = top - 10_000;
    let start = top - 400 * MINUTE;
    let mut points: Vec<f64> = (0..=400).map(|i| 1000.0 + f64::from(i)).collect();
    points.extend((1..=5).map(|i| 1400.0 - 10.0 * f64::from(i)));
    points.extend((1..=10).map(|i| 1350.0 + 10.0 * f64::from(i)));
    let script = Script {
        paths: vec![ScriptedPath {
            source: "binance".into(),
            symbol: "RSIUSDT".into(),
            start_ms: start,
            step_ms: MINUTE,
            points,
        }],
    };
    // 30 simulated minutes per real minute: a 1m candle closes every 2 s.
    let sim = market_sim::start(SimConfig {
        start_ms: Some(now),
        speed: 30.0,
        script: Some(script),
        ws_ping_interval: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (telegram, address) = Recorder::start().await;

    let rsi = (
        "technical_indicator",
        json!({"source": "binance", "symbol": "RSIUSDT", "interval": "1m",
               "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
    );
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[rsi], None).await;
    sqlx::query(
        "UPDATE strategies SET frequency = 'candle_close', trigger_mode = 'every_time',
                cooldown_seconds = 0, name = 'RSI oversold',
                channels = '[{\"type\": \"telegram\", \"chat_id\": \"424242\"}]'
          WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();

    let (binance, ws, telegram_url) = (
        sim.binance_url(),
        sim.binance_ws_url(),
        format!("http://{address}"),
    );
    let config = test_config(
        false,
        &[
            ("BINANCE_BASE_URL", &binance),
            ("BINANCE_WS_URL", &ws),
            ("ENABLE_WEBSOCKETS", "true"),
            ("ENABLE_SCHEDULER", "true"),
            ("TELEGRAM_API_URL", &telegram_url),
            ("TELEGRAM_BOT_TOKEN", TOKEN),
        ],
    );
    let app = TestApp::spawn_with_clock(pool.clone(), config, mirrored_clock(&sim)).await;
    app.wait_ready().await;

    // Run until the candle three minutes after the last fall has been evaluated.
    let last_open = top + 8 * MINUTE;
    let evaluated_through = eventually(
        Duration::from_secs(60),
        "the strategy to evaluate the closes past the dip",
        || {
            let pool = pool.clone();
            async move {
                let last: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT last_candle_open_time FROM strategy_state WHERE strategy_id = $1",
                )
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
                .flatten();
                last.map(|t| t.timestamp_millis())
                    .filter(|&t| t >= last_open)
            }
        },
    )
    .await;

    // Every close from the first one the service saw through the last evaluated: the
    // RSI on the simulator's candles decides which ones qualify.
    let market = sim.state.market.read().unwrap().binance["RSIUSDT"].clone();
    let close_at = |open: i64| market.candle(open, MINUTE, i64::MAX).close;
    let first_seen = top - MINUTE;
    let mut expected = Vec::new();
    for open in (first_seen..=evaluated_through).step_by(MINUTE as usize) {
        let closes: Vec<f64> = (0..)
            .map(|i| start + i * MINUTE)
            .take_while(|&o| o <= open)
            .map(close_at)
            .collect();
        let rsi = wilder_rsi(&closes, 14);
        if rsi < 30.0 {
            expected.push((open, rsi));
        }
    }
    assert!(
        expected.len() == 3,
        "the path dips below 30 a few times: {expected:?}"
    );

    app.state.triggers.wait_for_deliveries().await;
    let sent = telegram.received(&format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(
        sent.len(),
        expected.len(),
        "one message per qualifying close: {:?}",
        sent.iter().map(|r| &r.body["text"]).collect::<Vec<_>>()
    );
    let logs: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT dedup_key, message, snapshot FROM strategy_trigger_logs WHERE strategy_id = $1 ORDER BY triggered_at",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(logs.len(), expected.len());
    for (((open, rsi), message), (_, logged, snapshot)) in expected.iter().zip(&sent).zip(&logs) {
        assert_eq!(message.body["chat_id"], "424242");
        assert_eq!(message.body["parse_mode"], "HTML");
        let text = message.body["text"].as_str().unwrap();
        assert_eq!(text, logged);
        assert!(text.starts_with("🔔 RSI oversold\n"), "{text}");
        assert!(text.contains(" below 30 (was "), "{text}");
        // The message rounds for reading; the snapshot keeps the exact value.
        let value = value_in(text, "RSIUSDT 1m RSI(14)");
        assert!(
            (value - rsi).abs() <= 0.005 + 1e-9,
            "close at {open}: sent {value}, RSI on the simulator's candles {rsi}"
        );
        let exact = snapshot["conditions"][0]["value"].as_f64().unwrap();
        assert!(
            (exact - rsi).abs() < 1e-6,
            "close at {open}: recorded {exact}, RSI on the simulator's candles {rsi}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_service_killed_mid_cooldown_and_restarted_sends_no_duplicate() {
    let database = ScratchDatabase::create().await;
    migrate(&database.url);
    let pool = PgPool::connect(&database.url).await.unwrap();
    let sim = market_sim::start(SimConfig::default()).await.unwrap();
    let (slack, address) = Recorder::start().await;
    let above_one = (
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 1}),
    );
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[above_one], None).await;
    // Every 10 s, true every time, at most one alert per 25 s.
    sqlx::query(
        "UPDATE strategies SET frequency = '10s', trigger_mode = 'every_time',
                cooldown_seconds = 25, channels = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(json!([{"type": "slack", "webhook_url": format!("http://{address}/slack")}]))
    .execute(&pool)
    .await
    .unwrap();

    let log = std::env::temp_dir().join(format!("monitoring-kill-{}.log", Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = [
        ("POSTGRES_URL", database.url.clone()),
        ("REDIS_URL", redis_url()),
        ("MONITORING_HOST", "127.0.0.1".to_owned()),
        ("MONITORING_PORT", port.to_string()),
        ("BINANCE_BASE_URL", sim.binance_url()),
        ("ENABLE_WEBSOCKETS", "false".to_owned()),
        ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
    ];
    let first = Service::start(&vars, &log);
    eventually(Duration::from_secs(30), "the first alert", || async {
        (!slack.received("/slack").is_empty()).then_some(())
    })
    .await;
    // Killed without warning, right after its first alert.
    first.kill();
    let first_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT triggered_at FROM strategy_trigger_logs WHERE strategy_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let killed_at = Utc::now();

    let second = Service::start(&vars, &log);
    // The restarted service keeps evaluating; the next alert comes only once the
    // cooldown has passed.
    eventually(
        Duration::from_secs(60),
        "the alert after the cooldown",
        || async { (slack.received("/slack").len() >= 2).then_some(()) },
    )
    .await;
    second.kill();

    let logs: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT triggered_at FROM strategy_trigger_logs WHERE strategy_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    let ledger: Vec<(DateTime<Utc>, i32, i32, String)> = sqlx::query_as(
        "SELECT started_at, evaluated, triggered, status FROM monitor_ledger
          WHERE name = 'batch:10s' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let cooldown_ends = first_at + chrono::Duration::seconds(25);
    let batches_in_cooldown: Vec<(i32, i32)> = ledger
        .iter()
        .filter(|(started, ..)| *started > killed_at && *started < cooldown_ends)
        .map(|&(_, evaluated, triggered, _)| (evaluated, triggered))
        .collect();
    let service_log = std::fs::read_to_string(&log).unwrap_or_default();
    let output = format!(
        "first alert due {first_at}, killed {killed_at}, ledger {ledger:?}, logs {logs:?}\n{service_log}"
    );
    assert!(
        !batches_in_cooldown.is_empty(),
        "the restarted service ran batches within the cooldown\n{output}"
    );
    assert!(
        batches_in_cooldown.iter().all(|&(e, t)| e == 1 && t == 0),
        "evaluated, nothing sent within the cooldown\n{output}"
    );
    assert_eq!(logs.len(), 2, "{output}");
    assert!(
        logs[1] - logs[0] >= chrono::Duration::seconds(25),
        "{logs:?}"
    );
    assert_eq!(slack.received("/slack").len(), 2, "no duplicate");
    // One filter on strategy_id follows the strategy through its triggers and
    // deliveries, each line naming its frequency and component.
    let followed: Vec<serde_json::Value> = service_log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["strategy_id"] == json!(id))
        .collect();
    let lines_saying = |message: &str, component: &str| {
        followed
            .iter()
            .filter(|l| l["message"] == message)
            .inspect(|l| {
                assert_eq!(
                    (l["frequency"].as_str(), l["component"].as_str()),
                    (Some("10s"), Some(component)),
                    "{l}"
                );
            })
            .count()
    };
    assert_eq!(
        lines_saying("trigger claimed; delivering", "trigger"),
        2,
        "{output}"
    );
    assert_eq!(lines_saying("alert delivered", "delivery"), 2, "{output}");
    pool.close().await;
    database.drop_now().await;
    let _ = std::fs::remove_file(&log);
}
