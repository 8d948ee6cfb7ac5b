//! The `X-MONITORING-KEY` guard on `/internal/*`.
//!
//! Keys are kept only as SHA-256 digests and a presented key is hashed and compared
//! against every digest in constant time, so neither the key's content nor its length
//! leaks through timing, and rotation (several comma-separated keys) costs nothing.
//! Keys are never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;

/// The header that carries the key.
pub const API_KEY_HEADER: &str = "x-monitoring-key";

/// The accepted API keys, as digests.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
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
    pub fn new(keys: &[SecretString]) -> Self {
        Self {
            digests: keys
                .iter()
                .map(|key| digest(key.expose_secret().as_bytes()))
                .collect(),
        }
    }

    /// Whether `presented` is one of the keys. Looks at every key whatever the answer.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let mut matched = Choice::from(0);
        for key in &self.digests {
            matched |= key.ct_eq(&presented);
        }
        matched.into()
    }

    /// No key configured: every `/internal/*` request is refused.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// Middleware: lets the request through only with a valid key, else 401.
pub async fn require_api_key(
    State(keys): State<Arc<ApiKeys>>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = request
        .headers()
        .get(API_KEY_HEADER)
        .is_some_and(|value| keys.verify(value.as_bytes()));
    if authorized {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
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
    fn without_keys_nothing_is_accepted() {
        let keys = ApiKeys::new(&[]);
        assert!(keys.is_empty());
        assert!(!keys.verify(b""));
    }
}
