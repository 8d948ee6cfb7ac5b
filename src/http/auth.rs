//! The API key guard on `/internal/*` and `/api/v2/*`: `X-MONITORING-KEY: <key>`, or
//! `Authorization: Bearer <key>` (what Prometheus' `authorization` and amtool's
//! `--http.config.file` send).
//!
//! Keys are kept only as SHA-256 digests and a presented key is hashed and compared
//! against every digest in constant time, so neither the key's content nor its length
//! leaks through timing, and rotation (several comma-separated keys) costs nothing.
//! Keys are never logged. Each key has its own request budget (governor's GCRA): over
//! it, 429 `rate_limited` with `Retry-After`. Engine ticks and posted alerts each have
//! a budget of their own, so a flood of either leaves the operators' routes usable.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;

/// The header that carries the key.
pub const API_KEY_HEADER: &str = "x-monitoring-key";

/// Requests per key: keyed by the key's position in the list, never by the key.
type KeyLimiter = RateLimiter<usize, DashMapStateStore<usize>, DefaultClock>;

/// The accepted API keys, as digests, and each key's request budget.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    limiter: Option<KeyLimiter>,
    /// Engine ticks have a budget of their own, apart from the operator routes'.
    ticks_limiter: Option<KeyLimiter>,
    /// So have alerts posted through the Alertmanager API.
    ingest_limiter: Option<KeyLimiter>,
    /// Alert streams each key may hold open at once, by key position.
    streams: Vec<Arc<tokio::sync::Semaphore>>,
}

/// Which configured key a request presented (its position in the list, never the key),
/// put in the request's extensions by [`require_api_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPosition(pub usize);

/// The route whose requests count against the ticks' budget.
pub const TICKS_PATH: &str = "/internal/engine/ticks";
/// The route whose POSTs count against the posted alerts' budget.
pub const INGEST_PATH: &str = "/api/v2/alerts";

/// Which request budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    Operator,
    Ticks,
    Ingest,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys([{} key(s) REDACTED])", self.digests.len())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl ApiKeys {
    /// The keys, without a request limit.
    pub fn new(keys: &[SecretString]) -> Self {
        Self::with_rate_limit(keys, 0, 0)
    }

    /// The keys, each allowed `per_minute` requests after a burst of `burst` (0: no
    /// limit).
    pub fn with_rate_limit(keys: &[SecretString], per_minute: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::dashmap(Quota::per_minute(rate).allow_burst(burst))
        });
        Self {
            digests: keys
                .iter()
                .map(|key| digest(key.expose_secret().as_bytes()))
                .collect(),
            limiter,
            ticks_limiter: None,
            ingest_limiter: None,
            streams: Vec::new(),
        }
    }

    /// Lets each key hold at most `per_key` alert streams open at once.
    pub fn with_stream_limit(mut self, per_key: usize) -> Self {
        self.streams = (0..self.digests.len())
            .map(|_| Arc::new(tokio::sync::Semaphore::new(per_key)))
            .collect();
        self
    }

    /// A place for one more open stream of key `key`, held until dropped; `None` when
    /// the key holds its limit already.
    pub fn open_stream(&self, key: KeyPosition) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.streams.get(key.0) {
            Some(slots) => slots.clone().try_acquire_owned().ok(),
            // No limit configured: an unbounded permit of a throwaway semaphore.
            None => Arc::new(tokio::sync::Semaphore::new(1))
                .try_acquire_owned()
                .ok(),
        }
    }

    /// Gives engine ticks a budget of their own: `per_minute` per key, with a burst of
    /// a second's worth (0: no limit).
    pub fn with_ticks_limit(mut self, per_minute: u32) -> Self {
        self.ticks_limiter = per_second_burst(per_minute);
        self
    }

    /// Gives posted alerts (`POST /api/v2/alerts`) a budget of their own, as ticks.
    pub fn with_ingest_limit(mut self, per_minute: u32) -> Self {
        self.ingest_limiter = per_second_burst(per_minute);
        self
    }

    /// Whether `presented` is one of the keys. Looks at every key whatever the answer.
    pub fn verify(&self, presented: &[u8]) -> bool {
        self.position(presented).is_some()
    }

    /// Which key `presented` is, comparing against every key whatever the answer.
    fn position(&self, presented: &[u8]) -> Option<usize> {
        let presented = digest(presented);
        let mut matched = Choice::from(0);
        let mut position = 0u64;
        for (i, key) in self.digests.iter().enumerate() {
            let equal = key.ct_eq(&presented);
            position = u64::conditional_select(&position, &(i as u64), equal);
            matched |= equal;
        }
        bool::from(matched).then_some(position as usize)
    }

    /// How long key `position` must wait, if it is over `budget`.
    fn wait_for(&self, position: usize, budget: Budget) -> Option<Duration> {
        let limiter = match budget {
            Budget::Operator => self.limiter.as_ref()?,
            Budget::Ticks => self.ticks_limiter.as_ref()?,
            Budget::Ingest => self.ingest_limiter.as_ref()?,
        };
        limiter
            .check_key(&position)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// No key configured: every `/internal/*` request is refused.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// A limiter of `per_minute` requests per key with a burst of a second's worth (0: none).
fn per_second_burst(per_minute: u32) -> Option<KeyLimiter> {
    NonZeroU32::new(per_minute).map(|rate| {
        let burst = NonZeroU32::new(per_minute / 60).unwrap_or(NonZeroU32::MIN);
        RateLimiter::dashmap(Quota::per_minute(rate).allow_burst(burst))
    })
}

/// The key a request presents: `X-MONITORING-KEY`, else `Authorization: Bearer`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    if let Some(key) = headers.get(API_KEY_HEADER) {
        return Some(key.as_bytes());
    }
    let authorization = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let scheme = authorization.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| authorization[7..].trim_ascii())
}

/// Middleware: lets the request through only with a valid key, else 401.
pub async fn require_api_key(
    State(keys): State<Arc<ApiKeys>>,
    request: Request,
    next: Next,
) -> Response {
    let position = presented_key(request.headers()).and_then(|key| keys.position(key));
    let Some(position) = position else {
        return ApiError::unauthorized().into_response();
    };
    let mut request = request;
    request.extensions_mut().insert(KeyPosition(position));
    // Inside the `/internal` nest the URI has lost its prefix: the original one has it.
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri().path(), |original| original.path());
    let budget = if path == TICKS_PATH {
        Budget::Ticks
    } else if path == INGEST_PATH && request.method() == axum::http::Method::POST {
        Budget::Ingest
    } else {
        Budget::Operator
    };
    match keys.wait_for(position, budget) {
        None => next.run(request).await,
        Some(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests for this key; retry in {seconds} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_key_and_nothing_else() {
        let keys = ApiKeys::new(&[
            SecretString::from("current-key-0123456789"),
            SecretString::from("previous-key-0123456789"),
        ]);
        assert!(keys.verify(b"current-key-0123456789"));
        assert!(keys.verify(b"previous-key-0123456789"));
        assert!(!keys.verify(b"current-key-012345678"));
        assert!(!keys.verify(b""));
        assert!(!format!("{keys:?}").contains("current"));
    }

    #[test]
    fn a_bearer_token_is_a_key_and_the_header_comes_first() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = axum::http::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let bearer = headers(&[("authorization", "Bearer  k-123 ")]);
        assert_eq!(presented_key(&bearer), Some(&b"k-123"[..]));
        let lower = headers(&[("authorization", "bearer k")]);
        assert_eq!(presented_key(&lower), Some(&b"k"[..]));
        let basic = headers(&[("authorization", "Basic azpr")]);
        assert_eq!(presented_key(&basic), None);
        let both = headers(&[("authorization", "Bearer b"), ("x-monitoring-key", "h")]);
        assert_eq!(presented_key(&both), Some(&b"h"[..]));
        assert_eq!(presented_key(&headers(&[])), None);
    }

    #[test]
    fn without_keys_nothing_is_accepted() {
        let keys = ApiKeys::new(&[]);
        assert!(keys.is_empty());
        assert!(!keys.verify(b""));
    }
}
