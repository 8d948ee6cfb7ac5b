//! The llm-proxy client: one `analyze-signal` request (DESIGN §14) with the last
//! closed candles, retried with backoff on transport errors, 5xx and 429 (honouring
//! `Retry-After`) — all within `ANALYSIS_TIMEOUT_MS` — and the answer parsed
//! strictly: an unknown decision, a confidence outside 0–1 or a missing field is an
//! error for that call, never a transition. The API key is sent as a bearer token and
//! appears in no error, log line or metric.

use crate::outbound::Backoff;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::transition::Decision;
use crate::bounded_body::BodyError;

/// The first wait before a retry, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most of an answer read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// One closed candle as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandleJson {
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// The request body.
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisRequest {
    pub operation: &'static str,
    pub signal_id: Uuid,
    pub trader_id: Uuid,
    pub symbol: String,
    pub interval: String,
    pub candle_open_time: i64,
    /// Which re-analysis this is (1 for the first after creation).
    pub reanalysis: i32,
    pub candles: Vec<CandleJson>,
}

/// Tokens the proxy reported using.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub decision: Decision,
    pub confidence: f64,
    pub reasoning: String,
    pub usage: Option<Usage>,
    /// The whole answer, stored with the decision.
    pub raw: Value,
    pub attempts: u32,
}

/// Why a call gave no usable answer. No variant carries the key or a header.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("the llm-proxy could not be reached: {0}")]
    Transport(String),
    #[error("the llm-proxy answered {0}")]
    Status(u16),
    #[error("the llm-proxy's answer is invalid: {0}")]
    Invalid(String),
    #[error("no answer within the analysis timeout")]
    Timeout,
}

impl CallError {
    /// The bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Transport(_) => "transport",
            CallError::Status(429) => "rate_limited",
            CallError::Status(_) => "status",
            CallError::Invalid(_) => "invalid",
            CallError::Timeout => "timeout",
        }
    }
}

/// Parses an answer strictly.
pub fn parse_answer(raw: Value) -> Result<Answer, CallError> {
    let invalid = |message: &str| CallError::Invalid(message.to_owned());
    let decision = match raw.get("decision") {
        None => return Err(invalid("decision: missing")),
        Some(Value::String(text)) => Decision::parse(text).ok_or_else(|| {
            let shown: String = text.chars().take(40).collect();
            CallError::Invalid(format!(
                "decision: `{shown}` is not enter, abandon or continue"
            ))
        })?,
        Some(_) => return Err(invalid("decision: must be a string")),
    };
    let confidence = raw
        .get("confidence")
        .ok_or_else(|| invalid("confidence: missing"))?
        .as_f64()
        .ok_or_else(|| invalid("confidence: must be a number"))?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(invalid("confidence: must be between 0 and 1"));
    }
    let reasoning = raw
        .get("reasoning")
        .ok_or_else(|| invalid("reasoning: missing"))?
        .as_str()
        .ok_or_else(|| invalid("reasoning: must be a string"))?
        .to_owned();
    let usage = raw.get("usage").and_then(|usage| {
        Some(Usage {
            prompt_tokens: usage.get("prompt_tokens")?.as_u64()?,
            completion_tokens: usage.get("completion_tokens")?.as_u64()?,
        })
    });
    Ok(Answer {
        decision,
        confidence,
        reasoning,
        usage,
        raw,
        attempts: 0,
    })
}

/// The client of one llm-proxy endpoint.
#[derive(Clone)]
pub struct AnalysisClient {
    http: reqwest::Client,
    url: SecretString,
    key: Option<SecretString>,
    timeout: Duration,
}

impl std::fmt::Debug for AnalysisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AnalysisClient {
    pub fn new(url: SecretString, key: Option<SecretString>, timeout: Duration) -> Self {
        let http = crate::outbound::client_builder(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .expect("an HTTP client with static settings builds");
        Self {
            http,
            url,
            key,
            timeout,
        }
    }

    /// Sends `request`, retrying within the timeout; the parsed answer.
    pub async fn analyze(&self, request: &AnalysisRequest) -> Result<Answer, CallError> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallError::Timeout);
            }
            let (error, retry_after) = match self.attempt(request, remaining).await {
                Ok(mut answer) => {
                    answer.attempts = attempts;
                    return Ok(answer);
                }
                Err(Attempt::Final(error)) => return Err(error),
                Err(Attempt::Retry(error, retry_after)) => (error, retry_after),
            };
            let wait = retry_after.unwrap_or_else(|| backoff.next_delay());
            if Instant::now() + wait >= deadline {
                // No time left for another try: the last failure stands.
                return Err(error);
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        request: &AnalysisRequest,
        timeout: Duration,
    ) -> Result<Answer, Attempt> {
        let mut builder = self
            .http
            .post(self.url.expose_secret())
            .timeout(timeout)
            .json(request);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key.expose_secret());
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err(Attempt::Final(CallError::Timeout)),
            Err(error) => {
                return Err(Attempt::Retry(CallError::Transport(cause(&error)), None));
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::outbound::retry_after_seconds)
                .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0)));
            return Err(Attempt::Retry(
                CallError::Status(status.as_u16()),
                retry_after,
            ));
        }
        if !status.is_success() {
            return Err(Attempt::Final(CallError::Status(status.as_u16())));
        }
        let bytes = match crate::bounded_body::read(response, MAX_ANSWER_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge { .. }) => {
                return Err(Attempt::Final(CallError::Invalid(
                    "larger than 256 KiB".into(),
                )));
            }
            Err(BodyError::Transport(error)) if error.is_timeout() => {
                return Err(Attempt::Final(CallError::Timeout));
            }
            Err(BodyError::Transport(error)) => {
                return Err(Attempt::Retry(CallError::Transport(cause(&error)), None));
            }
        };
        let raw: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Attempt::Final(CallError::Invalid(format!("not JSON: {e}"))))?;
        parse_answer(raw).map_err(Attempt::Final)
    }
}

/// One attempt's failure: worth another try (with the server's `Retry-After`), or not.
enum Attempt {
    Retry(CallError, Option<Duration>),
    Final(CallError),
}

/// The innermost cause of a transport error: no URL (it may carry credentials).
fn cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_good_answer_parses_with_its_usage() {
        let answer = parse_answer(json!({"decision": "enter", "confidence": 0.82,
            "reasoning": "breakout confirmed", "usage": {"prompt_tokens": 900, "completion_tokens": 40},
            "model": "extra fields are allowed"}))
        .unwrap();
        assert_eq!(answer.decision, Decision::Enter);
        assert_eq!(answer.confidence, 0.82);
        assert_eq!(answer.reasoning, "breakout confirmed");
        assert_eq!(
            answer.usage,
            Some(Usage {
                prompt_tokens: 900,
                completion_tokens: 40
            })
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_the_field() {
        for (answer, message) in [
            (
                json!({"decision": "hold", "confidence": 0.5, "reasoning": ""}),
                "decision: `hold`",
            ),
            (
                json!({"decision": 1, "confidence": 0.5, "reasoning": ""}),
                "decision: must be a string",
            ),
            (
                json!({"confidence": 0.5, "reasoning": ""}),
                "decision: missing",
            ),
            (
                json!({"decision": "enter", "confidence": 1.5, "reasoning": ""}),
                "confidence: must be between 0 and 1",
            ),
            (
                json!({"decision": "enter", "confidence": -0.1, "reasoning": ""}),
                "confidence: must be between 0 and 1",
            ),
            (
                json!({"decision": "enter", "confidence": "high", "reasoning": ""}),
                "confidence: must be a number",
            ),
            (
                json!({"decision": "enter", "reasoning": ""}),
                "confidence: missing",
            ),
            (
                json!({"decision": "enter", "confidence": 0.5}),
                "reasoning: missing",
            ),
            (json!([]), "decision: missing"),
        ] {
            match parse_answer(answer.clone()) {
                Err(CallError::Invalid(text)) => {
                    assert!(text.starts_with(message), "{answer}: {text}")
                }
                other => panic!("{answer}: {other:?}"),
            }
        }
    }
}
