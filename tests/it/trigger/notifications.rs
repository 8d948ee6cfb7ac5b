//! Delivering alerts to local servers that record what Telegram, Slack, Discord and a
//! webhook receiver would get, answering with scripted statuses.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::recorder::Recorder;

use hmac::{Hmac, KeyInit, Mac};
use monitoring_service::notify::{
    Channel, DeliveryStatus, Notifier, NotifierSettings, OutgoingAlert, parse_channels,
};
use serde_json::{Value, json};
use sha2::Sha256;

fn settings(address: SocketAddr, allow_private: bool) -> NotifierSettings {
    NotifierSettings {
        max_attempts: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        telegram_api_url: format!("http://{address}"),
        telegram_bot_token: Some("123456:SECRET-TOKEN".to_owned().into()),
        allow_private_networks: allow_private,
        ..NotifierSettings::default()
    }
}

fn channel(json: Value) -> Channel {
    parse_channels(&json!([json]).to_string())
        .unwrap()
        .remove(0)
}

const EVENT_KEY: &str = "7f0c:bar:1795392000000";

fn alert(event: &Value) -> OutgoingAlert<'_> {
    OutgoingAlert {
        dedup_key: EVENT_KEY,
        text: "BTC <oversold> & falling: RSI 28.41",
        event,
        owner: None,
        place: None,
    }
}

#[tokio::test]
async fn a_signed_webhook_carries_the_event_its_signature_and_idempotency_key() {
    let (recorder, address) = Recorder::start().await;
    let notifier = Notifier::new(settings(address, true));
    let event = json!({"strategy_id": "7f0c", "result": true, "observed": {"value": 28.41}});
    let hook = channel(
        json!({"type": "webhook", "url": format!("http://{address}/hook"), "secret": "whsec-42"}),
    );
    let delivery = notifier.deliver(&hook, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts, delivery.error),
        (DeliveryStatus::Delivered, 1, None)
    );
    let got = recorder.received("/hook");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, event);
    assert_eq!(got[0].headers["x-idempotency-key"], EVENT_KEY);
    // The receiver verifies with its copy of the secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec-42").unwrap();
    mac.update(event.to_string().as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got[0].headers["x-monitoring-signature"],
        format!("sha256={expected}")
    );
}

#[tokio::test]
async fn five_hundreds_are_retried_and_a_dead_channel_ends_failed() {
    let (recorder, address) = Recorder::start().await;
    let notifier = Notifier::new(settings(address, true));
    let event = json!({});
    let flaky = channel(json!({"type": "slack", "webhook_url": format!("http://{address}/flaky")}));
    let dead = channel(json!({"type": "discord", "webhook_url": format!("http://{address}/dead")}));
    recorder.script(
        "/flaky",
        vec![(500, vec![], String::new()), (500, vec![], String::new())],
    );
    recorder.script(
        "/dead",
        (0..10).map(|_| (500, vec![], String::new())).collect(),
    );
    let outgoing = alert(&event);
    let (flaky_delivery, dead_delivery) = tokio::join!(
        notifier.deliver(&flaky, &outgoing),
        notifier.deliver(&dead, &outgoing)
    );
    assert_eq!(
        (flaky_delivery.status, flaky_delivery.attempts),
        (DeliveryStatus::Delivered, 3)
    );
    assert_eq!(
        (
            dead_delivery.status,
            dead_delivery.attempts,
            dead_delivery.error.as_deref()
        ),
        (DeliveryStatus::Failed, 3, Some("HTTP 500"))
    );
    assert_eq!(
        recorder.received("/flaky")[2].body,
        json!({"text": "BTC <oversold> & falling: RSI 28.41"})
    );
    assert_eq!(
        recorder.received("/dead")[0].body,
        json!({"content": "BTC <oversold> & falling: RSI 28.41"})
    );
    // A 4xx other than 429 is not retried.
    recorder.script("/gone", vec![(404, vec![], String::new())]);
    let gone = channel(json!({"type": "slack", "webhook_url": format!("http://{address}/gone")}));
    let delivery = notifier.deliver(&gone, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Failed, 1)
    );
}

#[tokio::test]
async fn telegram_gets_escaped_html_and_its_retry_after_is_honoured() {
    let (recorder, address) = Recorder::start().await;
    let notifier = Notifier::new(settings(address, false));
    let path = "/bot123456:SECRET-TOKEN/sendMessage";
    recorder.script(path, vec![(
        429,
        vec![],
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}).to_string(),
    )]);
    let event = json!({});
    let telegram = channel(json!({"type": "telegram", "chat_id": "-100123"}));
    let delivery = notifier.deliver(&telegram, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Delivered, 2)
    );
    let got = recorder.received(path);
    assert!(
        got[1].at - got[0].at >= Duration::from_secs(1),
        "waited {:?}",
        got[1].at - got[0].at
    );
    assert_eq!(
        got[1].body,
        json!({"chat_id": "-100123", "text": "BTC &lt;oversold&gt; &amp; falling: RSI 28.41",
               "parse_mode": "HTML", "disable_web_page_preview": true})
    );
    // A refusal never leaks the token.
    recorder.script(
        path,
        vec![(
            401,
            vec![],
            json!({"ok": false, "description": "Unauthorized"}).to_string(),
        )],
    );
    let refused = notifier.deliver(&telegram, &alert(&event)).await;
    assert_eq!(refused.error.as_deref(), Some("HTTP 401: Unauthorized"));
}

#[tokio::test]
async fn a_429_retry_after_header_is_honoured_for_webhooks() {
    let (recorder, address) = Recorder::start().await;
    let notifier = Notifier::new(settings(address, true));
    recorder.script(
        "/slow",
        vec![(429, vec![("retry-after", "1".into())], String::new())],
    );
    let event = json!({"n": 1});
    let hook =
        channel(json!({"type": "webhook", "url": format!("http://{address}/slow"), "secret": "s"}));
    let delivery = notifier.deliver(&hook, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Delivered, 2)
    );
    let got = recorder.received("/slow");
    assert!(got[1].at - got[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn private_addresses_are_refused_and_redirects_not_followed() {
    let (recorder, address) = Recorder::start().await;
    let strict = Notifier::new(settings(address, false));
    let event = json!({});
    for url in [
        format!("http://{address}/internal"),
        "http://127.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://localhost:9/".to_owned(),
    ] {
        let hook = channel(json!({"type": "webhook", "url": url, "secret": "s"}));
        let delivery = strict.deliver(&hook, &alert(&event)).await;
        assert_eq!(delivery.status, DeliveryStatus::Failed, "{url}");
        assert_eq!(delivery.attempts, 0, "{url}");
        assert_eq!(
            delivery.error.as_deref(),
            Some("refused: the host resolves to a private, loopback or link-local address")
        );
    }
    assert!(recorder.received("/internal").is_empty());

    let open = Notifier::new(settings(address, true));
    recorder.script(
        "/moved",
        vec![(
            302,
            vec![("location", format!("http://{address}/elsewhere"))],
            String::new(),
        )],
    );
    let hook = channel(json!({"type": "slack", "webhook_url": format!("http://{address}/moved")}));
    let delivery = open.deliver(&hook, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.error.as_deref()),
        (DeliveryStatus::Failed, Some("HTTP 302"))
    );
    assert!(recorder.received("/elsewhere").is_empty());
}

#[tokio::test]
async fn an_unanswered_request_is_retried_once_for_chat_channels_and_until_done_for_webhooks() {
    let (recorder, address) = Recorder::start().await;
    // Every answer comes after the client gave up: each request may have arrived.
    recorder.delay("/slow-slack", Duration::from_secs(2));
    recorder.delay("/slow-hook", Duration::from_secs(2));
    let notifier = Notifier::new(NotifierSettings {
        max_attempts: 4,
        timeout: Duration::from_millis(300),
        // Six unanswered requests in a row to one host: not this test's subject.
        breaker_threshold: 100,
        ..settings(address, true)
    });
    let event = json!({});
    let slack =
        channel(json!({"type": "slack", "webhook_url": format!("http://{address}/slow-slack")}));
    let delivery = notifier.deliver(&slack, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts, delivery.ambiguous),
        (DeliveryStatus::Failed, 2, 2),
        "{:?}",
        delivery.error
    );
    assert_eq!(
        recorder.received("/slow-slack").len(),
        2,
        "one retry at most"
    );
    assert!(delivery.error.unwrap().contains("may have arrived"));

    // A webhook has an idempotency key: retried up to the attempt limit.
    let hook = channel(
        json!({"type": "webhook", "url": format!("http://{address}/slow-hook"), "secret": "k"}),
    );
    let delivery = notifier.deliver(&hook, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts, delivery.ambiguous),
        (DeliveryStatus::Failed, 4, 4)
    );
    let got = recorder.received("/slow-hook");
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|r| r.headers["x-idempotency-key"] == EVENT_KEY)
    );

    // Nobody listening: nothing was sent, so every attempt is made and none is ambiguous.
    let closed = channel(json!({"type": "slack", "webhook_url": "http://127.0.0.1:9/closed"}));
    let delivery = notifier.deliver(&closed, &alert(&event)).await;
    assert_eq!(
        (delivery.status, delivery.attempts, delivery.ambiguous),
        (DeliveryStatus::Failed, 4, 0)
    );
}

#[tokio::test]
async fn a_burst_to_one_chat_arrives_complete_and_in_order_at_the_chat_rate() {
    use monitoring_service::notify::{FloodRates, Rate};
    let (recorder, address) = Recorder::start().await;
    // The chat's rate scaled down 25 times (40 a second instead of 1), so 200 alerts
    // take seconds, not minutes.
    let notifier = Notifier::new(NotifierSettings {
        flood: FloodRates {
            telegram_chat: Rate::new(1, Duration::from_millis(25)),
            ..FloodRates::default()
        },
        ..settings(address, true)
    });
    let chat = channel(json!({"type": "telegram", "chat_id": "555"}));
    let event = json!({});
    let texts: Vec<String> = (0..200).map(|i| format!("alert {i}")).collect();
    let sends = texts.iter().map(|text| {
        let alert = OutgoingAlert {
            dedup_key: EVENT_KEY,
            text,
            event: &event,
            owner: None,
            place: None,
        };
        let (notifier, chat) = (&notifier, &chat);
        async move { notifier.deliver(chat, &alert).await }
    });
    let deliveries = futures_util::future::join_all(sends).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Delivered)
    );
    let got = recorder.received("/bot123456:SECRET-TOKEN/sendMessage");
    let arrived: Vec<&str> = got
        .iter()
        .map(|r| r.body["text"].as_str().unwrap())
        .collect();
    assert_eq!(arrived, texts, "all 200, in the order they were sent");
    // Paced at the chat's rate: 199 intervals of 25 ms (the limiter's own spacing is
    // unit-tested on a paused clock; arrivals here carry network jitter, hence slack).
    let span = got[199].at.duration_since(got[0].at);
    assert!(span >= Duration::from_secs(4), "{span:?}");

    // At the real rate: one message a second to a chat.
    let notifier = Notifier::new(settings(address, true));
    let other = channel(json!({"type": "telegram", "chat_id": "556"}));
    let before = recorder
        .received("/bot123456:SECRET-TOKEN/sendMessage")
        .len();
    let once = alert(&event);
    let sends = (0..3).map(|_| notifier.deliver(&other, &once));
    futures_util::future::join_all(sends).await;
    let got = recorder.received("/bot123456:SECRET-TOKEN/sendMessage");
    let at: Vec<_> = got[before..].iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    let span = at[2].duration_since(at[0]);
    assert!(
        span >= Duration::from_millis(1500),
        "two intervals of 1 s: {span:?}"
    );
}
