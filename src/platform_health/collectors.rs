//! The collectors, one per kind of target: HTTP (`GET`, status and latency), Redis
//! (`PING` on the service's connection), Postgres (`SELECT 1` on the service's pool,
//! with its saturation), Binance (`/api/v3/ping` through the upstream client, so the
//! weight budget and 429 pauses hold). Every target is checked at once, each within
//! `HEALTH_CHECK_TIMEOUT_MS`. Errors are kinds (`timeout`, `refused`, `error`),
//! never an address or a body.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::status::{Answer, Health, Kind, Limits, classify};
use super::targets::{Probe, Target};
use crate::market::MarketData;

/// One target's check.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: Kind,
    pub critical: bool,
    pub status: Health,
    pub latency_ms: f64,
    /// What went wrong, as a kind (`timeout`, `refused`, `http 503`, …).
    pub error: Option<String>,
    /// Kind-specific details (Postgres: the pool's use).
    pub detail: Option<Value>,
}

/// Checks targets.
#[derive(Clone)]
pub struct Collectors {
    http: reqwest::Client,
    db: PgPool,
    redis: Option<redis::aio::ConnectionManager>,
    market: MarketData,
    limits: Limits,
    timeout: Duration,
}

impl std::fmt::Debug for Collectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collectors").finish_non_exhaustive()
    }
}

impl Collectors {
    pub fn new(
        db: PgPool,
        redis: Option<redis::aio::ConnectionManager>,
        market: MarketData,
        limits: Limits,
        timeout: Duration,
    ) -> Self {
        // Operator-configured targets: private addresses are expected, no guard.
        let http = crate::outbound::client_builder(timeout)
            .timeout(timeout)
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            db,
            redis,
            market,
            limits,
            timeout,
        }
    }

    /// Each check's own limit (`HEALTH_CHECK_TIMEOUT_MS`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks every target at once.
    pub async fn check_all(&self, targets: &[Target]) -> Vec<CheckResult> {
        futures_util::future::join_all(targets.iter().map(|t| self.check(t))).await
    }

    /// Checks one target within the timeout.
    pub async fn check(&self, target: &Target) -> CheckResult {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.probe(&target.probe)).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (answer, error, detail) = match outcome {
            Err(_) => (Answer::Failed, Some("timeout".to_owned()), None),
            Ok(probed) => probed,
        };
        let status = classify(&answer, latency_ms, &self.limits);
        let error = error.or_else(|| match (&answer, status) {
            (Answer::Http(code), Health::Degraded | Health::Down) if !(200..400).contains(code) => {
                Some(format!("http {code}"))
            }
            (_, Health::Degraded | Health::Down) => Some("slow".to_owned()),
            _ => None,
        });
        CheckResult {
            name: target.name.clone(),
            kind: target.kind,
            critical: target.critical,
            status,
            latency_ms: (latency_ms * 100.0).round() / 100.0,
            error,
            detail,
        }
    }

    async fn probe(&self, probe: &Probe) -> (Answer, Option<String>, Option<Value>) {
        match probe {
            Probe::Http(url) => match self.http.get(url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read what a health answer holds (up to 64 KiB) so the connection
                    // goes back to the pool for the next cycle instead of being closed.
                    crate::bounded_body::read_prefix(response, 64 * 1024).await;
                    (Answer::Http(status), None, None)
                }
                Err(error) => (
                    Answer::Failed,
                    Some(http_error_kind(&error).to_owned()),
                    None,
                ),
            },
            Probe::Postgres => {
                let detail = json!({
                    "pool_size": self.db.size(),
                    "pool_idle": self.db.num_idle(),
                    "pool_max": self.db.options().get_max_connections(),
                });
                match sqlx::query_scalar::<_, i32>("SELECT 1")
                    .fetch_one(&self.db)
                    .await
                {
                    Ok(_) => (Answer::Answered, None, Some(detail)),
                    Err(_) => (
                        Answer::Failed,
                        Some("query failed".to_owned()),
                        Some(detail),
                    ),
                }
            }
            Probe::Redis => match self.redis.clone() {
                None => (Answer::Failed, Some("not configured".to_owned()), None),
                Some(mut redis) => {
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut redis).await;
                    match pong {
                        Ok(_) => (Answer::Answered, None, None),
                        Err(_) => (Answer::Failed, Some("ping failed".to_owned()), None),
                    }
                }
            },
            Probe::Binance => match self.market.ping_binance().await {
                Ok(()) => (Answer::Answered, None, None),
                Err(error) => (Answer::Failed, Some(error.kind().to_owned()), None),
            },
        }
    }
}

/// A reqwest error as a kind, without its URL.
fn http_error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "refused"
    } else {
        "error"
    }
}
