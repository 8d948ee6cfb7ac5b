//! `POST /internal/notify/test`: a test message to one channel or to a severity's route,
//! through the real notifiers, answering each outcome — and its 4xx.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::recorder::Recorder;
use crate::support::{TestApp, test_config};

async fn test(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/internal/notify/test", &body).await
}

#[sqlx::test]
async fn a_channel_and_a_route_get_a_test_message_and_their_outcome(pool: PgPool) {
    let (recorder, address) = Recorder::start().await;
    recorder.script(
        "/broken",
        vec![(403, Vec::new(), r#"{"message": "revoked"}"#.into())],
    );
    let routes = json!({
        "CRITICAL": [{"type": "slack", "webhook_url": format!("http://{address}/ops")},
                     {"type": "webhook", "url": format!("http://{address}/hook"), "secret": "k"}],
    })
    .to_string();
    let telegram = format!("http://{address}");
    let config = test_config(
        false,
        &[
            ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true"),
            ("OPS_ALERT_ROUTES", routes.as_str()),
            ("TELEGRAM_API_URL", telegram.as_str()),
            ("TELEGRAM_BOT_TOKEN", "1:T"),
        ],
    );
    let app = TestApp::spawn_with(pool, config).await;

    let (status, answer) = test(
        &app,
        json!({"channel": {"type": "telegram", "chat_id": "4242"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["deliveries"][0]["status"], "delivered");
    let sent = recorder.received("/bot1:T/sendMessage");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["chat_id"], "4242");
    assert!(
        sent[0].body["text"]
            .as_str()
            .unwrap()
            .contains("test message")
    );

    let (status, answer) = test(&app, json!({"route": "CRITICAL"})).await;
    assert_eq!(status, 200, "{answer}");
    let kinds: Vec<&str> = answer["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["channel"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["slack", "webhook"]);
    assert_eq!(
        (
            recorder.received("/ops").len(),
            recorder.received("/hook").len()
        ),
        (1, 1)
    );
    assert!(
        !answer.to_string().contains(&address.to_string()),
        "no address echoed: {answer}"
    );

    // A revoked credential: the outcome says so (and the route answers 200).
    let (status, answer) = test(
        &app,
        json!({"channel": {"type": "discord", "webhook_url": format!("http://{address}/broken")}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            answer["ok"].clone(),
            answer["deliveries"][0]["status"].clone()
        ),
        (json!(false), json!("failed"))
    );
    assert!(
        answer["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{answer}"
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn bad_requests_are_400s_naming_the_field_and_an_empty_route_is_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (body, code, names) in [
        (
            json!({"channel": {"type": "telegram", "chat_id": 12}}),
            "invalid_channel",
            "channel: chat_id",
        ),
        (
            json!({"channel": {"type": "pigeon"}}),
            "invalid_channel",
            "channel: unknown variant",
        ),
        (json!({"route": "LOUD"}), "invalid_route", "route:"),
        (json!({}), "invalid_body", "exactly one"),
        (
            json!({"route": "INFO", "channel": {"type": "telegram", "chat_id": "1"}}),
            "invalid_body",
            "exactly one",
        ),
        (json!({"routes": "INFO"}), "invalid_body", "expected"),
    ] {
        let (status, answer) = test(&app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"], code, "{body} → {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(names),
            "{body} → {answer}"
        );
    }
    let (status, answer) = test(&app, json!({"route": "WARNING"})).await;
    assert_eq!(status, 404, "{answer}");
    app.stop().await.unwrap();
}
