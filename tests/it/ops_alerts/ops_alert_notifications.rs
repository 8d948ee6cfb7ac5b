//! Operational alerts' notifications and event stream against the real binary, Postgres
//! and Redis (DESIGN §10): a storm grouped into one message per route even with two
//! replicas dispatching, one resolved message, repeats until acknowledged, silences
//! holding messages back until they end, a dead replica's claimed message taken over,
//! and the event stream fanned out across replicas and replayed after `Last-Event-ID`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use monitoring_service::ops_alerts::{OpsAlerts, Severity};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::process::{Service, base_vars};
use crate::support::recorder::Recorder;
use crate::support::{ScratchDatabase, TEST_KEY, alert_event_followers, eventually, redis_url};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Raises `rule` for engine `engine` at `severity`; returns the alert id.
async fn raise(alerts: &OpsAlerts, rule: &str, engine: &str, severity: Severity) -> String {
    alerts
        .raise(
            rule,
            &labels(&[("engine_id", engine), ("component", "engine")]),
            severity,
            &format!("{rule} on {engine}"),
            "the rule holds",
            &json!({"engine_id": engine}),
        )
        .await
        .unwrap()
        .alert
        .alert_id
}

/// A replica's settings: `routes` as `OPS_ALERT_ROUTES`, plus `extra`.
fn replica(
    database: &str,
    routes: &Value,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(database, &redis_url());
    vars.push(("ENABLE_SCHEDULER", "false".to_owned()));
    vars.push(("ALERT_LOG_DIR", String::new()));
    vars.push(("OPS_ALERT_ROUTES", routes.to_string()));
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    vars
}

fn log_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("monitoring-ops-alerts-{}.log", Uuid::new_v4()))
}

/// The Slack texts `path` received, in order.
fn texts(recorder: &Recorder, path: &str) -> Vec<String> {
    recorder
        .received(path)
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn scratch() -> (ScratchDatabase, PgPool) {
    ScratchDatabase::migrated().await
}

#[tokio::test]
async fn a_storm_on_two_replicas_is_one_message_per_route_and_one_resolved_message() {
    let (database, pool) = scratch().await;
    let (recorder, address) = Recorder::start().await;
    let routes = json!({
        "CRITICAL": [{"type": "slack", "webhook_url": format!("http://{address}/critical")},
                     {"type": "webhook", "url": format!("http://{address}/critical-hook"), "secret": "s"}],
        "WARNING": [{"type": "slack", "webhook_url": format!("http://{address}/warning")}],
    });
    // The storm lasts about 10 s; the group waits 12 s from its first alert.
    let extra = [("OPS_ALERT_GROUP_WAIT_SECONDS", "12")];
    let (log_a, log_b) = (log_file(), log_file());
    let a = Service::start(&replica(&database.url, &routes, &extra), &log_a);
    let b = Service::start(&replica(&database.url, &routes, &extra), &log_b);
    a.wait_ready().await;
    b.wait_ready().await;

    // 300 raises in 10 s from two producers: 100 CRITICAL alerts, 50 WARNING ones, each
    // raised twice (once on each side).
    let producers = [OpsAlerts::new(pool.clone()), OpsAlerts::new(pool.clone())];
    let started = Instant::now();
    for i in 0..150 {
        let (rule, severity) = if i % 3 == 2 {
            ("position_limit_breached", Severity::Warning)
        } else {
            ("circuit_breaker_triggered", Severity::Critical)
        };
        let engine = format!("engine-{i}");
        for producer in &producers {
            raise(producer, rule, &engine, severity).await;
        }
        tokio::time::sleep_until((started + Duration::from_millis(66 * (i + 1))).into()).await;
    }
    let episodes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ops_alerts WHERE state = 'firing'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(episodes, 150, "300 raises, 150 episodes");

    let hook = eventually(Duration::from_secs(60), "the grouped messages", || async {
        let hook = recorder.received("/critical-hook");
        (!hook.is_empty()
            && !recorder.received("/critical").is_empty()
            && !recorder.received("/warning").is_empty())
        .then_some(hook)
    })
    .await;
    let listed: BTreeSet<&str> = hook[0].body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed.len(),
        100,
        "one message listing every CRITICAL alert"
    );
    assert!(
        texts(&recorder, "/critical")[0].starts_with("🚨 [CRITICAL] 100 operational alerts firing")
    );
    assert!(
        texts(&recorder, "/warning")[0].starts_with("🚨 [WARNING] 50 operational alerts firing")
    );

    // Every alert resolves: one resolved message per route, and nothing else.
    for i in 0..150 {
        let rule = if i % 3 == 2 {
            "position_limit_breached"
        } else {
            "circuit_breaker_triggered"
        };
        producers[i % 2]
            .resolve(
                rule,
                &labels(&[
                    ("engine_id", &format!("engine-{i}")),
                    ("component", "engine"),
                ]),
            )
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(30), "the resolved messages", || async {
        (recorder.received("/critical").len() >= 2 && recorder.received("/warning").len() >= 2)
            .then_some(())
    })
    .await;
    // Both replicas have finished a pass since (their messages are marked sent).
    eventually(
        Duration::from_secs(30),
        "every message marked sent",
        || async {
            let unsent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM ops_alert_notifications WHERE sent_at IS NULL",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (unsent == 0).then_some(())
        },
    )
    .await;
    let critical = texts(&recorder, "/critical");
    assert_eq!(critical.len(), 2, "{critical:?}");
    assert!(critical[1].starts_with("✅ [CRITICAL] 100 operational alerts resolved"));
    assert_eq!(recorder.received("/critical-hook").len(), 2);
    assert_eq!(texts(&recorder, "/warning").len(), 2);
    let messages: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT severity, kind, cardinality(alert_ids) FROM ops_alert_notifications ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut messages = messages;
    messages.sort();
    assert_eq!(
        messages,
        [
            ("CRITICAL".into(), "firing".into(), 100),
            ("CRITICAL".into(), "resolved".into(), 100),
            ("WARNING".into(), "firing".into(), 50),
            ("WARNING".into(), "resolved".into(), 50),
        ]
    );
    drop((a, b));
    pool.close().await;
    database.drop_now().await;
}

/// `POST /internal/silences` on `service`: the silence's id.
async fn silence(service: &Service, rule: &str, ends_at: chrono::DateTime<chrono::Utc>) -> String {
    let (status, answer) = service
        .post_json(
            "/internal/silences",
            &json!({"matchers": [{"name": "rule", "value": rule, "is_regex": false}],
                    "ends_at": ends_at, "created_by": "test", "comment": "maintenance"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn repeats_stop_when_acknowledged_and_a_silence_holds_messages_until_it_ends() {
    let (database, pool) = scratch().await;
    let (recorder, address) = Recorder::start().await;
    let routes = json!({
        "CRITICAL": [{"type": "slack", "webhook_url": format!("http://{address}/critical")}],
        "WARNING": [{"type": "slack", "webhook_url": format!("http://{address}/warning")}],
    });
    let extra = [
        ("OPS_ALERT_GROUP_WAIT_SECONDS", "0"),
        ("OPS_ALERT_REPEAT_SECONDS", "2"),
    ];
    let service = Service::start(&replica(&database.url, &routes, &extra), &log_file());
    service.wait_ready().await;
    let producer = OpsAlerts::new(pool.clone());

    // Firing and unacknowledged: sent, then repeated.
    let lapsed = raise(&producer, "heartbeat_lapsed", "live-1", Severity::Critical).await;
    eventually(Duration::from_secs(30), "a first repeat", || async {
        (recorder.received("/critical").len() >= 2).then_some(())
    })
    .await;
    let (status, answer) = service
        .post_json(
            &format!("/internal/alerts/{lapsed}/ack"),
            &json!({"by": "oncall"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let after_ack = recorder.received("/critical").len();

    // A silence on another rule, ending in 4 s: that alert waits for its end.
    let ends_at = chrono::Utc::now() + chrono::Duration::seconds(4);
    silence(&service, "sentiment_failures_high", ends_at).await;
    let silenced_at = Instant::now();
    raise(
        &producer,
        "sentiment_failures_high",
        "live-1",
        Severity::Warning,
    )
    .await;
    // A witness on the same route: notified and repeated meanwhile.
    raise(
        &producer,
        "stale_teacher_model",
        "live-1",
        Severity::Warning,
    )
    .await;
    let first_silenced = eventually(
        Duration::from_secs(30),
        "the silenced alert, once its silence ended",
        || async {
            recorder.received("/warning").into_iter().find(|r| {
                r.body["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("sentiment_failures_high")
            })
        },
    )
    .await;
    let warnings = texts(&recorder, "/warning");
    let witnessed = warnings
        .iter()
        .filter(|t| t.contains("stale_teacher_model"))
        .count();
    assert!(
        witnessed >= 2,
        "the witness was repeated while the silence held: {warnings:?}"
    );
    assert!(
        first_silenced.at >= silenced_at + Duration::from_secs(3),
        "the silenced alert was sent {:?} after the silence began",
        first_silenced.at - silenced_at
    );

    // The acknowledged alert was not repeated through all of that (≥ 2 repeat periods).
    assert_eq!(
        recorder.received("/critical").len(),
        after_ack,
        "repeated after the ack"
    );
    let lines = service.metric_lines().await;
    for series in [
        r#"monitoring_ops_alerts{rule="heartbeat_lapsed",severity="CRITICAL",state="firing"} 1"#,
        r#"monitoring_ops_alerts{rule="sentiment_failures_high",severity="WARNING",state="firing"} 1"#,
    ] {
        assert!(lines.iter().any(|l| l == series), "{series} missing");
    }
    assert!(lines.iter().any(|l| l.starts_with(
        r#"monitoring_ops_alert_notifications_total{kind="firing",outcome="delivered"}"#
    )));
    drop(service);
    pool.close().await;
    database.drop_now().await;
}

#[tokio::test]
async fn a_message_claimed_by_a_replica_killed_before_sending_is_sent_by_another() {
    let (database, pool) = scratch().await;
    let (recorder, address) = Recorder::start().await;
    let routes = json!({"CRITICAL": [{"type": "slack", "webhook_url": format!("http://{address}/critical")}]});
    let extra = [
        ("OPS_ALERT_GROUP_WAIT_SECONDS", "0"),
        ("OPS_ALERT_CLAIM_SECONDS", "3"),
    ];
    let mut armed = replica(&database.url, &routes, &extra);
    armed.push(("MONITORING_FAIL_POINT", "ops_alert_after_claim".to_owned()));
    let first = Service::start(&armed, &log_file());
    first.wait_ready().await;
    let alert = raise(
        &OpsAlerts::new(pool.clone()),
        "connectivity_lost",
        "live-1",
        Severity::Critical,
    )
    .await;
    eventually(Duration::from_secs(30), "the message claimed", || async {
        let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM ops_alert_notifications")
            .fetch_one(&pool)
            .await
            .unwrap();
        (claimed == 1).then_some(())
    })
    .await;
    first.kill();
    assert!(
        recorder.received("/critical").is_empty(),
        "sent before the kill"
    );

    let second = Service::start(&replica(&database.url, &routes, &extra), &log_file());
    let sent = eventually(
        Duration::from_secs(30),
        "the message taken over",
        || async {
            let sent = texts(&recorder, "/critical");
            (!sent.is_empty()).then_some(sent)
        },
    )
    .await;
    assert!(sent[0].contains(&alert), "{sent:?}");
    let (attempts, outcome): (i32, Option<String>) =
        eventually(Duration::from_secs(10), "marked sent", || async {
            sqlx::query_as(
                "SELECT attempts, outcome FROM ops_alert_notifications WHERE sent_at IS NOT NULL",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        })
        .await;
    assert_eq!((attempts, outcome.as_deref()), (2, Some("delivered")));
    assert_eq!(recorder.received("/critical").len(), 1, "sent once");
    drop(second);
    pool.close().await;
    database.drop_now().await;
}

/// Reads server-sent events from `response` until `count` events (and, when asked, a
/// keep-alive comment) have arrived: each event's (id, event, data).
async fn read_events(
    mut response: reqwest::Response,
    count: usize,
    want_keep_alive: bool,
) -> Vec<(i64, String, Value)> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = parse_events(&text);
        if events.len() >= count && (!want_keep_alive || text.contains(": keep-alive")) {
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out; the stream so far: {text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn parse_events(text: &str) -> Vec<(i64, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name).map(str::trim).map(str::to_owned))
            };
            Some((
                field("id:")?.parse().ok()?,
                field("event:")?,
                serde_json::from_str(&field("data:")?).ok()?,
            ))
        })
        .collect()
}

async fn open_stream(service: &Service, last_event_id: Option<i64>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(service.url("/internal/alerts/stream"))
        .header("X-MONITORING-KEY", TEST_KEY);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    response
}

#[tokio::test]
async fn the_stream_carries_another_replicas_events_and_replays_after_last_event_id() {
    let (database, pool) = scratch().await;
    let routes = json!({});
    let extra = [("ALERT_STREAM_KEEPALIVE_SECONDS", "1")];
    let watched = Service::start(&replica(&database.url, &routes, &extra), &log_file());
    let other = Service::start(&replica(&database.url, &routes, &extra), &log_file());
    watched.wait_ready().await;
    other.wait_ready().await;

    // Both replicas follow the database's event channel before anything happens.
    alert_event_followers(&database.name, 2).await;
    let stream = open_stream(&watched, None).await;
    // Events from the other replica: an alert cleared there after another one was raised
    // and acknowledged there.
    let on_other = |rule: &'static str| {
        let pool = pool.clone();
        async move {
            // The producer is a third process's worth of OpsAlerts with Redis fan-out.
            let redis = redis::Client::open(redis_url()).unwrap();
            let manager = redis::aio::ConnectionManager::new(redis).await.unwrap();
            let metrics = monitoring_service::metrics::Metrics::new();
            let producer = OpsAlerts::new(pool).with_sinks(
                monitoring_service::ops_alerts::Journal::start(
                    None,
                    metrics.alerts.log_errors.clone(),
                ),
                Some(manager),
                &metrics.alerts,
            );
            raise(&producer, rule, "live-1", Severity::Critical).await
        }
    };
    let first = on_other("daily_loss_exceeded").await;
    let (status, _) = other
        .post_json(&format!("/internal/alerts/{first}/ack"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = other
        .post_json(&format!("/internal/alerts/{first}/clear"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let events = read_events(stream, 3, true).await;
    let kinds: Vec<&str> = events.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["raised", "acknowledged", "cleared"]);
    for (_, kind, data) in &events {
        assert_eq!(data["alert_id"], first.as_str());
        assert_eq!(data["event"], kind.as_str());
        assert_eq!(data["rule"], "daily_loss_exceeded");
        assert_eq!(data["severity"], "CRITICAL");
    }
    let ids: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // A client that saw only the first event reconnects and gets the two it missed, then
    // live events.
    let resumed = open_stream(&watched, Some(ids[0])).await;
    let second = on_other("connectivity_lost").await;
    let replayed = read_events(resumed, 3, false).await;
    assert_eq!(replayed[0].0, ids[1]);
    assert_eq!(replayed[1].0, ids[2]);
    assert_eq!(
        (replayed[2].1.as_str(), replayed[2].2["alert_id"].as_str()),
        ("raised", Some(second.as_str()))
    );

    let bad = reqwest::Client::new()
        .get(watched.url("/internal/alerts/stream"))
        .header("X-MONITORING-KEY", TEST_KEY)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Last-Event-ID"),
        "{body}"
    );
    drop((watched, other));
    pool.close().await;
    database.drop_now().await;
}
