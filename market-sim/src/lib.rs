//! A local market simulator for monitoring-service's tests, benchmarks and offline demo.
//!
//! It serves, each provider on its own loopback listener, the documented wire formats
//! of Binance Spot REST (`/api/v3/ping`, `/time`, `/ticker/price`, `/klines`,
//! `/exchangeInfo`, with `X-MBX-USED-WEIGHT-1M`), Binance market streams (`/ws/<stream>`
//! and `/stream?streams=`, kline events, server pings, `SUBSCRIBE`), CoinGecko
//! (`/api/v3/simple/price`, `/api/v3/coins/{id}/market_chart/range`) and an Ethereum
//! JSON-RPC node answering `eth_call` for Uniswap v3 pools (`slot0()`, `token0()`,
//! `token1()`, `decimals()`); beside them, a simulated llm-proxy ([`LlmProxy`]) for
//! candle-close analysis.
//!
//! Prices are deterministic per instrument, or scripted from a file; time can be
//! shifted, sped up or frozen and stepped; faults (latency, 429/418 with
//! `Retry-After`, 5xx, malformed bodies, dropped or refused WebSockets, `serverShutdown`)
//! switch on at run time; every request is logged for tests to count. Control routes
//! live under `/__sim/` on every listener.
//!
//! It deliberately shares no code with the service: it writes the documented JSON
//! itself.

pub mod binance_rest;
pub mod binance_ws;
pub mod clock;
pub mod coingecko;
pub mod control;
pub mod ethereum;
pub mod faults;
pub mod inbox;
pub mod llm_proxy;
pub mod market;
pub mod paths;
pub mod requests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

pub use clock::{ClockAnchor, SimClock};
pub use faults::{Fault, FaultKind, Provider};
pub use inbox::{Inbox, InboxMessage};
pub use llm_proxy::{LlmAnswer, LlmProxy, LlmRequest};
pub use market::{Market, USDC_WETH_POOL};
pub use paths::{PricePath, Script, ScriptedPath};
pub use requests::RequestRecord;

/// Binance's documented request-weight limit per IP and minute.
pub const BINANCE_WEIGHT_LIMIT: u32 = 6000;

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Simulated time at start (Unix ms); real time when `None`.
    pub start_ms: Option<i64>,
    /// 1 = real time; 0 = frozen until set.
    pub speed: f64,
    /// Extra Binance symbols with generated prices.
    pub extra_symbols: Vec<String>,
    /// Scripted paths applied at start.
    pub script: Option<Script>,
    /// Real interval between WebSocket pings.
    pub ws_ping_interval: Duration,
    /// Real age at which the server closes a WebSocket (Binance: 24 h).
    pub ws_max_age: Duration,
    /// The loopback address to bind (port 0 = any).
    pub bind: [SocketAddr; 3],
}

impl Default for SimConfig {
    fn default() -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        Self {
            start_ms: None,
            speed: 1.0,
            extra_symbols: Vec::new(),
            script: None,
            ws_ping_interval: Duration::from_secs(20),
            ws_max_age: Duration::from_secs(24 * 3600),
            bind: [any; 3],
        }
    }
}

/// Signals to every open WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsSignal {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Send a `serverShutdown` event, then close.
    Shutdown,
}

/// The shared state behind every listener.
#[derive(Debug)]
pub struct SimState {
    pub clock: SimClock,
    pub market: RwLock<Market>,
    pub faults: faults::FaultBook,
    pub requests: requests::RequestLog,
    /// (real minute, weight used in it).
    weight: Mutex<(i64, u32)>,
    ws_signal: broadcast::Sender<WsSignal>,
    /// WebSocket upgrades are refused until this real time (Unix ms).
    ws_reject_until: AtomicI64,
    ws_open: AtomicUsize,
    ws_ping_interval: Duration,
    ws_max_age: Duration,
}

impl SimState {
    fn new(config: &SimConfig) -> Result<Self, String> {
        let mut market = Market::with_defaults(&config.extra_symbols);
        if let Some(script) = &config.script {
            market.apply(script)?;
        }
        Ok(Self {
            clock: SimClock::new(config.start_ms, config.speed),
            market: RwLock::new(market),
            faults: faults::FaultBook::default(),
            requests: requests::RequestLog::default(),
            weight: Mutex::new((0, 0)),
            ws_signal: broadcast::channel(16).0,
            ws_reject_until: AtomicI64::new(0),
            ws_open: AtomicUsize::new(0),
            ws_ping_interval: config.ws_ping_interval,
            ws_max_age: config.ws_max_age,
        })
    }

    /// Adds `weight` to this real minute's budget and returns the total used.
    fn use_weight(&self, weight: u32) -> u32 {
        let minute = clock::real_now_ms() / 60_000;
        let mut used = self.weight.lock().expect("weight lock");
        if used.0 != minute {
            *used = (minute, 0);
        }
        used.1 += weight;
        used.1
    }

    /// Drops every open WebSocket and refuses new ones for `reject_for` (real time).
    pub fn drop_websockets(&self, reject_for: Duration) {
        self.ws_reject_until.store(
            clock::real_now_ms() + reject_for.as_millis() as i64,
            Ordering::SeqCst,
        );
        let _ = self.ws_signal.send(WsSignal::Drop);
    }

    /// Sends `serverShutdown` on every open WebSocket and closes it.
    pub fn shutdown_websockets(&self) {
        let _ = self.ws_signal.send(WsSignal::Shutdown);
    }

    /// Open WebSocket connections.
    pub fn websockets_open(&self) -> usize {
        self.ws_open.load(Ordering::SeqCst)
    }

    /// Requests served for `provider` (and `endpoint`, when given).
    pub fn request_count(&self, provider: Provider, endpoint: Option<&str>) -> usize {
        self.requests.count(provider, endpoint)
    }
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct SimHandle {
    pub state: Arc<SimState>,
    pub binance_addr: SocketAddr,
    pub coingecko_addr: SocketAddr,
    pub ethereum_addr: SocketAddr,
}

impl SimHandle {
    pub fn binance_url(&self) -> String {
        format!("http://{}", self.binance_addr)
    }
    pub fn binance_ws_url(&self) -> String {
        format!("ws://{}", self.binance_addr)
    }
    pub fn coingecko_url(&self) -> String {
        format!("http://{}", self.coingecko_addr)
    }
    pub fn ethereum_url(&self) -> String {
        format!("http://{}", self.ethereum_addr)
    }
}

/// Binds the three listeners and serves them on the current runtime.
pub async fn start(config: SimConfig) -> Result<SimHandle, String> {
    let state = Arc::new(SimState::new(&config)?);
    let routers = [
        binance_rest::router()
            .merge(binance_ws::router())
            .merge(control::router()),
        coingecko::router().merge(control::router()),
        ethereum::router().merge(control::router()),
    ];
    let mut addrs = Vec::new();
    for (router, bind) in routers.into_iter().zip(config.bind) {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| format!("bind {bind}: {e}"))?;
        addrs.push(listener.local_addr().map_err(|e| e.to_string())?);
        let app: Router = router.with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    Ok(SimHandle {
        state,
        binance_addr: addrs[0],
        coingecko_addr: addrs[1],
        ethereum_addr: addrs[2],
    })
}

/// The outcome of admitting one REST request: go on, or this answer instead.
pub(crate) struct Admitted {
    /// Binance's used weight after this request (0 for other providers).
    pub used_weight: u32,
}

/// Logs the request, applies faults and (for Binance) the weight limit.
pub(crate) async fn admit(
    state: &SimState,
    provider: Provider,
    endpoint: &str,
    query: &str,
    weight: u32,
) -> Result<Admitted, Response> {
    state.requests.record(provider, endpoint, query);
    let faults = state.faults.take(provider, endpoint);
    let used_weight = if provider == Provider::Binance {
        state.use_weight(weight)
    } else {
        0
    };
    for fault in faults {
        match fault {
            FaultKind::Latency { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultKind::Status {
                status,
                retry_after,
                body,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                let body = body.unwrap_or_else(|| default_error_body(provider, status));
                let mut response = json(status, body);
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from(seconds));
                }
                return Err(with_weight(response, provider, used_weight));
            }
            FaultKind::Malformed { body } => {
                let body = body.unwrap_or_else(|| "{\"symbol\":\"BTC".to_owned());
                return Err(with_weight(
                    json(StatusCode::OK, body),
                    provider,
                    used_weight,
                ));
            }
        }
    }
    if provider == Provider::Binance && used_weight > BINANCE_WEIGHT_LIMIT {
        let wait = 60 - (clock::real_now_ms() / 1000) % 60;
        let mut response = json(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{{\"code\":-1003,\"msg\":\"Too many requests; current limit of IP(127.0.0.1) request weight per minute is {BINANCE_WEIGHT_LIMIT}. Please use WebSocket Streams for live updates to avoid polling the API.\"}}"
            ),
        );
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(wait));
        return Err(with_weight(response, provider, used_weight));
    }
    Ok(Admitted { used_weight })
}

fn default_error_body(provider: Provider, status: StatusCode) -> String {
    match (provider, status.as_u16()) {
        (Provider::Binance, 429) => {
            "{\"code\":-1003,\"msg\":\"Too many requests; please use WebSocket Streams.\"}".into()
        }
        (Provider::Binance, 418) => {
            "{\"code\":-1003,\"msg\":\"Way too many requests; IP banned.\"}".into()
        }
        (Provider::Binance, _) => {
            "{\"code\":-1001,\"msg\":\"Internal error; unable to process your request. Please try again.\"}".into()
        }
        (Provider::Coingecko, 429) => "{\"status\":{\"error_code\":429,\"error_message\":\"You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits.\"}}".into(),
        (_, code) => format!("{{\"error\":\"simulated status {code}\"}}"),
    }
}

/// A JSON response from an already-serialized body.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    (status, headers, body).into_response()
}

/// Adds Binance's used-weight header.
pub(crate) fn with_weight(mut response: Response, provider: Provider, used: u32) -> Response {
    if provider == Provider::Binance {
        response
            .headers_mut()
            .insert("x-mbx-used-weight-1m", HeaderValue::from(used));
        response
            .headers_mut()
            .insert("x-mbx-used-weight", HeaderValue::from(used));
    }
    response
}

/// Interval names and lengths as Binance documents them (months omitted).
pub(crate) fn interval_ms(name: &str) -> Option<i64> {
    const MINUTE: i64 = 60_000;
    Some(match name {
        "1s" => 1_000,
        "1m" => MINUTE,
        "3m" => 3 * MINUTE,
        "5m" => 5 * MINUTE,
        "15m" => 15 * MINUTE,
        "30m" => 30 * MINUTE,
        "1h" => 60 * MINUTE,
        "2h" => 120 * MINUTE,
        "4h" => 240 * MINUTE,
        "6h" => 360 * MINUTE,
        "8h" => 480 * MINUTE,
        "12h" => 720 * MINUTE,
        "1d" => 1_440 * MINUTE,
        "3d" => 4_320 * MINUTE,
        "1w" => 10_080 * MINUTE,
        _ => return None,
    })
}

/// The open time of the candle containing `t` (weeks open on Monday, as on Binance).
pub(crate) fn candle_open(t: i64, interval_ms: i64) -> i64 {
    const WEEK: i64 = 604_800_000;
    // The Unix epoch was a Thursday; Binance's weekly candles open on Mondays.
    let offset = if interval_ms == WEEK {
        3 * 86_400_000
    } else {
        0
    };
    (t + offset).div_euclid(interval_ms) * interval_ms - offset
}
