//! One HTTP upstream (a provider's base URL): pooled connections and timeouts, the
//! host's rate-limit pause and weight budget, retries with exponential backoff and
//! jitter for transient failures only, and metrics for every call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable;

use crate::outbound::Backoff;
use bytes::Bytes;
use reqwest::{Method, StatusCode};

use super::UpstreamError;
use super::error::truncate;
use super::host_gate::{HostGate, WeightBudget};
use super::source_health::{SourceHealth, SourceHealthRecord};
use crate::bounded_body::{self, BodyError};
use crate::metrics::MarketMetrics;

/// Largest body accepted from a market-data source.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How the upstreams are called.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Per-request timeout (connect + answer).
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures only.
    pub max_retries: usize,
    /// The first backoff; doubles, with jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The pause after a 429/418 without `Retry-After`.
    pub default_pause: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_retries: 2,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            default_pause: Duration::from_secs(30),
        }
    }
}

/// One request to an upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// The path template, for metrics (e.g. `/api/v3/klines`).
    pub endpoint: &'static str,
    /// The path to call (may differ from `endpoint` when it holds an id).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// Binance request weight (0 elsewhere).
    pub weight: u32,
    /// A JSON body: sent with POST.
    pub body: Option<serde_json::Value>,
}

impl UpstreamRequest {
    pub fn get(endpoint: &'static str) -> Self {
        Self {
            endpoint,
            path: endpoint.to_owned(),
            query: Vec::new(),
            weight: 0,
            body: None,
        }
    }

    pub fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// A provider's HTTP endpoint and the rules for calling it. Its `Debug` leaves out
/// the base URL, which may carry a provider key.
pub struct Upstream {
    source: &'static str,
    base_url: String,
    http: reqwest::Client,
    gate: HostGate,
    health: SourceHealth,
    weight: Option<WeightBudget>,
    settings: UpstreamSettings,
    metrics: Arc<MarketMetrics>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(
        source: &'static str,
        base_url: &str,
        http: reqwest::Client,
        weight: Option<WeightBudget>,
        settings: UpstreamSettings,
        metrics: Arc<MarketMetrics>,
    ) -> Self {
        Self {
            source,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            gate: HostGate::default(),
            health: SourceHealth::default(),
            weight,
            settings,
            metrics,
        }
    }

    /// The shared HTTP client: pooled, with timeouts, no redirects to follow.
    pub fn client(timeout: Duration) -> reqwest::Client {
        crate::outbound::client_builder(timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(32)
            .build()
            .expect("the HTTP client builds")
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    pub fn gate(&self) -> &HostGate {
        &self.gate
    }

    /// How the source has been answering.
    pub fn health(&self) -> SourceHealthRecord {
        self.health.snapshot(self.gate.remaining_ms())
    }

    /// Sends `request`, retrying transient failures, and returns the success body.
    pub async fn send(&self, request: &UpstreamRequest) -> Result<Bytes, UpstreamError> {
        let backoff = Backoff::new(self.settings.min_backoff, self.settings.max_backoff)
            .with_max_times(self.settings.max_retries)
            .jittered();
        let result = (|| self.send_once(request))
            .retry(backoff)
            .when(UpstreamError::is_transient)
            .await;
        match &result {
            Ok(_) => self.health.succeeded(),
            Err(error) => self.record_error(request.endpoint, error),
        }
        result
    }

    /// Counts a failure found after the call (e.g. a body that does not parse).
    pub fn record_error(&self, endpoint: &'static str, error: &UpstreamError) {
        self.health.failed(error);
        self.metrics
            .upstream_errors
            .with_label_values(&[self.source, endpoint, error.kind()])
            .inc();
        tracing::warn!(
            source = self.source,
            endpoint,
            error_kind = error.kind(),
            error = %error,
            "market-data request failed"
        );
    }

    async fn send_once(&self, request: &UpstreamRequest) -> Result<Bytes, UpstreamError> {
        if let Err(paused) = self.gate.check() {
            self.skipped("paused");
            return Err(paused);
        }
        if let Some(budget) = &self.weight
            && let Err(spent) = budget.reserve(request.weight)
        {
            self.skipped("weight_budget");
            return Err(spent);
        }
        let url = format!("{}{}", self.base_url, request.path);
        let method = if request.body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let mut builder = self.http.request(method, url).query(&request.query);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let started = Instant::now();
        let outcome = builder.send().await;
        self.metrics
            .upstream_duration
            .with_label_values(&[self.source, request.endpoint])
            .observe(started.elapsed().as_secs_f64());
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                self.count(request.endpoint, "error");
                return Err(UpstreamError::Transport(truncate(
                    &error.without_url().to_string(),
                )));
            }
        };
        let status = response.status();
        self.count(request.endpoint, status.as_str());
        if let (Some(budget), Some(used)) =
            (&self.weight, header_u32(&response, "x-mbx-used-weight-1m"))
        {
            budget.observe(used);
            self.metrics.binance_used_weight.set(i64::from(used));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
            let pause = header_u32(&response, "retry-after")
                .map(|s| Duration::from_secs(u64::from(s)))
                .unwrap_or(self.settings.default_pause);
            self.gate.pause(pause);
            return Err(UpstreamError::RateLimited {
                status: status.as_u16(),
                retry_after_ms: pause.as_millis() as u64,
            });
        }
        if !status.is_success() {
            let body = bounded_body::read_prefix(response, bounded_body::ERROR_BODY_LIMIT).await;
            return Err(status_error(status, &body));
        }
        bounded_body::read(response, MAX_BODY_BYTES)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge { .. } => UpstreamError::malformed("body too large"),
                BodyError::Transport(e) => {
                    UpstreamError::Transport(truncate(&e.without_url().to_string()))
                }
            })
    }

    fn count(&self, endpoint: &'static str, status: &str) {
        self.metrics
            .upstream_requests
            .with_label_values(&[self.source, endpoint, status])
            .inc();
    }

    fn skipped(&self, reason: &'static str) {
        self.metrics
            .upstream_skipped
            .with_label_values(&[self.source, reason])
            .inc();
    }
}

fn header_u32(response: &reqwest::Response, name: &str) -> Option<u32> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A non-success answer; Binance's `{"code", "msg"}` is kept when present.
pub(crate) fn status_error(status: StatusCode, body: &[u8]) -> UpstreamError {
    #[derive(serde::Deserialize)]
    struct BinanceError {
        code: i64,
        msg: String,
    }
    let (code, message) = match serde_json::from_slice::<BinanceError>(body) {
        Ok(e) => (Some(e.code), e.msg),
        Err(_) => (None, String::from_utf8_lossy(body).into_owned()),
    };
    UpstreamError::Status {
        status: status.as_u16(),
        code,
        message: truncate(&message),
    }
}
