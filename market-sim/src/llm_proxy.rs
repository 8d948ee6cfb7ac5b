//! A simulated llm-proxy for candle-close analysis: `POST /v1/analyze` takes the
//! `analyze-signal` request and answers `{"decision", "confidence", "reasoning",
//! "usage"}` — scripted per signal (a list of answers, used in order; the last one
//! repeats), or the default. Latency and failures (a status with `Retry-After`, a
//! malformed answer) are configurable at run time; every request is recorded with its
//! arrival time and bearer token, and the most calls ever in flight at once is kept,
//! so tests measure concurrency and rate where they are felt.
//!
//! Control routes, for the demo and manual runs: `POST /__sim/llm/script`
//! (`{"<signal_id>": [answer, …]}`), `GET /__sim/llm/requests` (the recorded bodies).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmAnswer {
    /// A well-formed decision.
    Decide {
        decision: String,
        confidence: f64,
        reasoning: String,
    },
    /// An error status, with `Retry-After` seconds when given.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// This body, as is (malformed answers).
    Raw(String),
}

impl LlmAnswer {
    /// A decision with a fixed confidence and a short reasoning.
    pub fn decide(decision: &str) -> Self {
        LlmAnswer::Decide {
            decision: decision.to_owned(),
            confidence: 0.7,
            reasoning: format!("simulated: {decision}"),
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        if let Some(status) = value.get("status").and_then(Value::as_u64) {
            return Some(LlmAnswer::Status {
                status: status as u16,
                retry_after: value.get("retry_after").and_then(Value::as_u64),
            });
        }
        let decision = value.get("decision")?.as_str()?;
        Some(LlmAnswer::Decide {
            decision: decision.to_owned(),
            confidence: value
                .get("confidence")
                .and_then(Value::as_f64)
                .unwrap_or(0.7),
            reasoning: value
                .get("reasoning")
                .and_then(Value::as_str)
                .unwrap_or("simulated")
                .to_owned(),
        })
    }
}

/// One request received.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub at: Instant,
    pub body: Value,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
}

#[derive(Debug)]
struct ProxyState {
    scripts: Mutex<HashMap<String, VecDeque<LlmAnswer>>>,
    default: Mutex<LlmAnswer>,
    /// Answers for the next requests, whatever the signal (failures first).
    next: Mutex<VecDeque<LlmAnswer>>,
    latency: Mutex<Duration>,
    requests: Mutex<Vec<LlmRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running simulated llm-proxy.
#[derive(Debug, Clone)]
pub struct LlmProxy {
    state: Arc<ProxyState>,
    address: SocketAddr,
}

impl LlmProxy {
    /// Serves on `bind` (port 0: any), answering `continue` by default.
    pub async fn start(bind: SocketAddr) -> Result<Self, String> {
        let state = Arc::new(ProxyState {
            scripts: Mutex::new(HashMap::new()),
            default: Mutex::new(LlmAnswer::decide("continue")),
            next: Mutex::new(VecDeque::new()),
            latency: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/analyze", post(analyze))
            .route("/__sim/llm/script", post(script))
            .route("/__sim/llm/requests", get(requests))
            .with_state(state.clone());
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| format!("llm-proxy {bind}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { state, address })
    }

    /// The analysis endpoint (`ANALYSIS_URL`).
    pub fn url(&self) -> String {
        format!("http://{}/v1/analyze", self.address)
    }

    /// Answers for `signal_id`, in order; the last repeats.
    pub fn script(&self, signal_id: &str, answers: Vec<LlmAnswer>) {
        self.state
            .scripts
            .lock()
            .expect("scripts lock")
            .insert(signal_id.to_owned(), answers.into());
    }

    /// The answer for signals without a script.
    pub fn set_default(&self, answer: LlmAnswer) {
        *self.state.default.lock().expect("default lock") = answer;
    }

    /// Answers for the next requests, whatever their signal, before any script.
    pub fn queue_next(&self, answers: Vec<LlmAnswer>) {
        self.state.next.lock().expect("next lock").extend(answers);
    }

    /// How long each answer takes.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().expect("latency lock") = latency;
    }

    pub fn requests(&self) -> Vec<LlmRequest> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// The most requests ever being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

fn answer_for(state: &ProxyState, signal: &str) -> LlmAnswer {
    if let Some(next) = state.next.lock().expect("next lock").pop_front() {
        return next;
    }
    let mut scripts = state.scripts.lock().expect("scripts lock");
    match scripts.get_mut(signal) {
        Some(queue) if queue.len() > 1 => queue.pop_front().expect("non-empty"),
        Some(queue) if !queue.is_empty() => queue[0].clone(),
        _ => state.default.lock().expect("default lock").clone(),
    }
}

async fn analyze(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let now_in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state
        .max_in_flight
        .fetch_max(now_in_flight, Ordering::SeqCst);
    let signal = body["signal_id"].as_str().unwrap_or_default().to_owned();
    let candles = body["candles"].as_array().map_or(0, Vec::len) as u64;
    state
        .requests
        .lock()
        .expect("requests lock")
        .push(LlmRequest {
            at: Instant::now(),
            body,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
    let latency = *state.latency.lock().expect("latency lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match answer_for(&state, &signal) {
        LlmAnswer::Decide {
            decision,
            confidence,
            reasoning,
        } => Json(
            json!({"decision": decision, "confidence": confidence, "reasoning": reasoning,
                         "usage": {"prompt_tokens": 40 + candles * 12, "completion_tokens": 24}}),
        )
        .into_response(),
        LlmAnswer::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, Json(json!({"error": "simulated"}))).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    "retry-after",
                    seconds
                        .to_string()
                        .parse()
                        .expect("digits are a header value"),
                );
            }
            response
        }
        LlmAnswer::Raw(text) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
    };
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn script(State(state): State<Arc<ProxyState>>, Json(body): Json<Value>) -> StatusCode {
    let Some(map) = body.as_object() else {
        return StatusCode::BAD_REQUEST;
    };
    let mut scripts = state.scripts.lock().expect("scripts lock");
    for (signal, answers) in map {
        let answers: VecDeque<LlmAnswer> = answers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(LlmAnswer::from_json)
            .collect();
        scripts.insert(signal.clone(), answers);
    }
    StatusCode::NO_CONTENT
}

async fn requests(State(state): State<Arc<ProxyState>>) -> Json<Value> {
    let bodies: Vec<Value> = state
        .requests
        .lock()
        .expect("requests lock")
        .iter()
        .map(|r| r.body.clone())
        .collect();
    Json(json!({"requests": bodies}))
}
