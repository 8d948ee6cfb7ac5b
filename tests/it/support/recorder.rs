//! A local HTTP server standing in for Telegram, Slack, Discord and webhook receivers:
//! it records every request and answers with scripted statuses.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request the recorder received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

/// A scripted answer: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

#[derive(Clone, Default)]
pub struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers per path, in order; 200 once exhausted.
    script: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    /// How long each path takes to answer (a slow channel).
    delays: Arc<Mutex<HashMap<String, std::time::Duration>>>,
}

impl Recorder {
    pub async fn start() -> (Self, SocketAddr) {
        let recorder = Recorder::default();
        let handler_state = recorder.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let recorder = handler_state.clone();
            async move {
                let delay = recorder.delays.lock().unwrap().get(uri.path()).copied();
                let response = recorder.answer(uri, headers, body);
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (recorder, address)
    }

    fn answer(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let path = uri.path().to_owned();
        self.received.lock().unwrap().push(Received {
            path: path.clone(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        });
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(&path)
            .and_then(VecDeque::pop_front);
        let (status, headers, body) = next.unwrap_or((200, Vec::new(), "ok".into()));
        let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    }

    /// Makes `path` answer `delay` after each request arrives (recorded on arrival).
    pub fn delay(&self, path: &str, delay: std::time::Duration) {
        self.delays.lock().unwrap().insert(path.into(), delay);
    }

    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        self.script
            .lock()
            .unwrap()
            .insert(path.into(), answers.into());
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}
