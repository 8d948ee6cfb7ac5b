//! Binance market streams, as documented at
//! <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>:
//! raw streams at `/ws/<stream>`, combined streams at `/stream?streams=a/b` wrapped as
//! `{"stream", "data"}`, kline events (`k.x` true when the candle closes), `SUBSCRIBE` /
//! `UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` requests, and server pings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use crate::faults::Provider;
use crate::{SimState, WsSignal, candle_open, interval_ms};

/// Binance's documented limit of streams per connection.
pub const MAX_STREAMS: usize = 1024;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/ws", get(raw_base))
        .route("/ws/{stream}", get(raw))
        .route("/stream", get(combined))
}

async fn raw_base(State(state): State<Arc<SimState>>, ws: WebSocketUpgrade) -> Response {
    upgrade(state, ws, "/ws", Vec::new(), false)
}

async fn raw(
    State(state): State<Arc<SimState>>,
    Path(stream): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, ws, "/ws", vec![stream], false)
}

async fn combined(
    State(state): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let streams = params
        .get("streams")
        .map(|s| {
            s.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    upgrade(state, ws, "/stream", streams, true)
}

fn upgrade(
    state: Arc<SimState>,
    ws: WebSocketUpgrade,
    endpoint: &str,
    streams: Vec<String>,
    combined: bool,
) -> Response {
    if crate::clock::real_now_ms() < state.ws_reject_until.load(Ordering::SeqCst) {
        let refused = format!("{endpoint} (refused)");
        state.requests.record(Provider::Binance, &refused, "");
        return (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
    }
    state
        .requests
        .record(Provider::Binance, endpoint, &streams.join("/"));
    if streams.len() > MAX_STREAMS {
        return (StatusCode::BAD_REQUEST, "too many streams").into_response();
    }
    ws.on_upgrade(move |socket| async move {
        state.ws_open.fetch_add(1, Ordering::SeqCst);
        Connection::new(state.clone(), combined)
            .run(socket, streams)
            .await;
        state.ws_open.fetch_sub(1, Ordering::SeqCst);
    })
}

/// One subscribed kline stream.
struct KlineStream {
    symbol: String,
    interval: String,
    step: i64,
    /// Open time of the last candle whose close was sent.
    last_closed: i64,
}

struct Connection {
    state: Arc<SimState>,
    combined: bool,
    streams: BTreeMap<String, KlineStream>,
}

impl Connection {
    fn new(state: Arc<SimState>, combined: bool) -> Self {
        Self {
            state,
            combined,
            streams: BTreeMap::new(),
        }
    }

    fn subscribe(&mut self, name: &str) {
        let Some((symbol, kind)) = name.split_once('@') else {
            return;
        };
        let Some(interval) = kind.strip_prefix("kline_") else {
            return;
        };
        let Some(step) = interval_ms(interval) else {
            return;
        };
        let symbol = symbol.to_ascii_uppercase();
        let now = self.state.clock.now_ms();
        self.streams.entry(name.to_owned()).or_insert(KlineStream {
            symbol,
            interval: interval.to_owned(),
            step,
            last_closed: candle_open(now, step) - step,
        });
    }

    async fn run(mut self, socket: WebSocket, initial: Vec<String>) {
        for name in &initial {
            self.subscribe(name);
        }
        let (mut tx, mut rx) = socket.split();
        let mut signals = self.state.ws_signal.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut ping = tokio::time::interval(self.state.ws_ping_interval);
        ping.reset();
        let opened = Instant::now();
        let mut last_update = Instant::now();
        let mut last_pong = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = self.state.clock.now_ms();
                    let forming = last_update.elapsed() >= Duration::from_secs(1);
                    if forming {
                        last_update = Instant::now();
                    }
                    for message in self.events(now, forming) {
                        if tx.send(Message::Text(message.into())).await.is_err() {
                            return;
                        }
                    }
                    if opened.elapsed() >= self.state.ws_max_age {
                        let _ = tx.send(Message::Close(None)).await;
                        return;
                    }
                    // Binance disconnects a client that does not answer its pings (20 s
                    // apart) within a minute: three intervals here.
                    if last_pong.elapsed() > self.state.ws_ping_interval * 3 {
                        let _ = tx.send(Message::Close(None)).await;
                        return;
                    }
                }
                _ = ping.tick() => {
                    let payload = crate::clock::real_now_ms().to_string();
                    if tx.send(Message::Ping(payload.into_bytes().into())).await.is_err() {
                        return;
                    }
                }
                message = rx.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(reply) = self.request(&text)
                            && tx.send(Message::Text(reply.into())).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                },
                signal = signals.recv() => match signal {
                    Ok(WsSignal::Drop) | Err(_) => return,
                    Ok(WsSignal::Shutdown) => {
                        let event = json!({"e": "serverShutdown", "E": self.state.clock.now_ms()});
                        let _ = tx.send(Message::Text(event.to_string().into())).await;
                        let _ = tx.send(Message::Close(None)).await;
                        return;
                    }
                },
            }
        }
    }

    /// Close events for every candle that closed since the last tick, then (every
    /// second) an update of each forming candle.
    fn events(&mut self, now: i64, forming: bool) -> Vec<String> {
        let market = self.state.market.read().expect("market lock");
        let mut out = Vec::new();
        let combined = self.combined;
        for (name, stream) in &mut self.streams {
            let Some(path) = market.binance.get(&stream.symbol) else {
                continue;
            };
            while stream.last_closed + 2 * stream.step <= now {
                stream.last_closed += stream.step;
                let open = stream.last_closed;
                let candle = path.candle(open, stream.step, now);
                out.push(kline_event(
                    name,
                    stream,
                    &candle,
                    open + stream.step,
                    true,
                    combined,
                ));
            }
            if forming {
                let open = stream.last_closed + stream.step;
                let candle = path.candle(open, stream.step, now);
                out.push(kline_event(name, stream, &candle, now, false, combined));
            }
        }
        out
    }

    /// Answers `SUBSCRIBE`, `UNSUBSCRIBE` and `LIST_SUBSCRIPTIONS`.
    fn request(&mut self, text: &str) -> Option<String> {
        let request: Value = serde_json::from_str(text).ok()?;
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let params: Vec<String> = request
            .get("params")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let result = match request.get("method").and_then(Value::as_str)? {
            "SUBSCRIBE" => {
                if self.streams.len() + params.len() > MAX_STREAMS {
                    return Some(
                        json!({"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": id})
                            .to_string(),
                    );
                }
                for name in &params {
                    self.subscribe(name);
                }
                Value::Null
            }
            "UNSUBSCRIBE" => {
                for name in &params {
                    self.streams.remove(name);
                }
                Value::Null
            }
            "LIST_SUBSCRIPTIONS" => json!(self.streams.keys().collect::<Vec<_>>()),
            _ => {
                return Some(
                    json!({"error": {"code": 1, "msg": "Invalid request"}, "id": id}).to_string(),
                );
            }
        };
        Some(json!({"result": result, "id": id}).to_string())
    }
}

fn kline_event(
    name: &str,
    stream: &KlineStream,
    candle: &crate::paths::Candle,
    event_time: i64,
    closed: bool,
    combined: bool,
) -> String {
    let text = |p: f64| format!("{p:.8}");
    let data = json!({
        "e": "kline",
        "E": event_time,
        "s": stream.symbol,
        "k": {
            "t": candle.open_time,
            "T": candle.open_time + stream.step - 1,
            "s": stream.symbol,
            "i": stream.interval,
            "f": 100,
            "L": 100 + candle.trades,
            "o": text(candle.open),
            "c": text(candle.close),
            "h": text(candle.high),
            "l": text(candle.low),
            "v": text(candle.volume),
            "n": candle.trades,
            "x": closed,
            "q": text(candle.volume * candle.close),
            "V": text(candle.volume / 2.0),
            "Q": text(candle.volume * candle.close / 2.0),
            "B": "0"
        }
    });
    if combined {
        json!({"stream": name, "data": data}).to_string()
    } else {
        data.to_string()
    }
}
