//! A local inbox for the offline demo: the Telegram Bot API's `sendMessage` (the wire
//! format of `https://api.telegram.org/bot<token>/sendMessage`, a JSON body) and
//! any other `POST` path as a webhook (Slack, Discord, signed webhooks). Each message
//! received is printed on stdout, one line, and kept for whoever asks
//! (`GET /__sim/inbox`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One message the inbox received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InboxMessage {
    /// `telegram` or `webhook`.
    pub kind: &'static str,
    /// The chat (Telegram) or the path (webhooks).
    pub to: String,
    /// The text (Telegram, Slack's `text`, Discord's `content`) or the JSON body.
    pub text: String,
    /// `X-Idempotency-Key`, when the sender gave one.
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct InboxState {
    received: Mutex<Vec<InboxMessage>>,
    /// Whether each message is printed on stdout (the demo) or only kept (tests).
    print: bool,
}

/// A running inbox.
#[derive(Clone)]
pub struct Inbox {
    state: Arc<InboxState>,
    address: SocketAddr,
}

impl Inbox {
    /// Serves on `bind` (port 0: any); prints each message when `print`.
    pub async fn start(bind: SocketAddr, print: bool) -> Result<Self, String> {
        let state = Arc::new(InboxState {
            received: Mutex::default(),
            print,
        });
        let app = Router::new()
            .route("/__sim/inbox", get(list))
            .route("/{bot}/sendMessage", post(send_message))
            .fallback(post(webhook))
            .with_state(state.clone());
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| format!("inbox {bind}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { state, address })
    }

    /// The Telegram API base (`TELEGRAM_API_URL`) and the webhooks' origin.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every message received, in order.
    pub fn received(&self) -> Vec<InboxMessage> {
        self.state.received.lock().expect("inbox lock").clone()
    }
}

impl InboxState {
    fn keep(&self, message: InboxMessage) -> usize {
        if self.print {
            let text = message.text.replace('\n', " ⏎ ");
            println!("inbox: {} {} ← {text}", message.kind, message.to);
        }
        let mut received = self.received.lock().expect("inbox lock");
        received.push(message);
        received.len()
    }
}

async fn list(State(state): State<Arc<InboxState>>) -> Json<Vec<InboxMessage>> {
    Json(state.received.lock().expect("inbox lock").clone())
}

/// `POST /bot<token>/sendMessage`: answers as Telegram does, `{"ok": true, "result":
/// Message}`, or 400 with `{"ok": false, "description"}` when `chat_id` or `text` is
/// missing.
async fn send_message(
    State(state): State<Arc<InboxState>>,
    Path(bot): Path<String>,
    body: Bytes,
) -> Response {
    if !bot.starts_with("bot") {
        return StatusCode::NOT_FOUND.into_response();
    }
    // The JSON body (the service sends JSON; Telegram also takes forms, not served here).
    let fields: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let chat = match &fields["chat_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return bad_request("Bad Request: chat_id is empty"),
    };
    let Some(text) = fields["text"].as_str().map(str::to_owned) else {
        return bad_request("Bad Request: message text is empty");
    };
    let id = state.keep(InboxMessage {
        kind: "telegram",
        to: chat.clone(),
        text: text.clone(),
        idempotency_key: None,
    });
    Json(json!({"ok": true, "result": {
        "message_id": id,
        "chat": {"id": chat.parse::<i64>().map_or(json!(chat), |n| json!(n)), "type": "private"},
        "date": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "text": text,
    }}))
    .into_response()
}

fn bad_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"ok": false, "error_code": 400, "description": description})),
    )
        .into_response()
}

/// Any other `POST`: a webhook. Slack's `text` and Discord's `content` are shown as
/// text, any other body as its JSON.
async fn webhook(
    State(state): State<Arc<InboxState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = parsed["text"]
        .as_str()
        .or_else(|| parsed["content"].as_str())
        .map_or_else(
            || String::from_utf8_lossy(&body).into_owned(),
            str::to_owned,
        );
    state.keep(InboxMessage {
        kind: "webhook",
        to: uri.path().to_owned(),
        text,
        idempotency_key: headers
            .get("x-idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    Json(json!({"ok": true}))
}
