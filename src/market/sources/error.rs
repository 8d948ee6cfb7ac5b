//! Why a datum could not be fetched. Messages never carry URLs (an RPC URL holds its
//! provider key) and upstream texts are truncated.

/// A failed upstream call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// A 429/418 paused every call to this host; none was sent.
    #[error("paused for {remaining_ms} ms after a rate limit")]
    Paused { remaining_ms: u64 },
    /// Sending would exceed our own share of the per-minute request weight.
    #[error("request weight budget spent until the next minute")]
    WeightBudget,
    /// The host answered 429 or 418.
    #[error("rate limited (HTTP {status}), retry after {retry_after_ms} ms")]
    RateLimited { status: u16, retry_after_ms: u64 },
    /// Any other non-success status.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        /// The provider's error code (Binance's `code`), when it sent one.
        code: Option<i64>,
        message: String,
    },
    /// A success status with a body that is not what the documentation promises.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Connection, timeout or body read failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The source does not know this symbol, coin or pool.
    #[error("unknown symbol")]
    UnknownSymbol,
    /// The source has no configured endpoint (e.g. `ETH_RPC_URL` unset).
    #[error("source not configured")]
    NotConfigured,
    /// The source cannot provide this kind of datum.
    #[error("not available from this source: {0}")]
    Unsupported(&'static str),
}

impl UpstreamError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Paused { .. } => "paused",
            UpstreamError::WeightBudget => "weight_budget",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Status { .. } => "status",
            UpstreamError::Malformed(_) => "malformed",
            UpstreamError::Transport(_) => "transport",
            UpstreamError::UnknownSymbol => "unknown_symbol",
            UpstreamError::NotConfigured => "not_configured",
            UpstreamError::Unsupported(_) => "unsupported",
        }
    }

    /// Worth retrying at once: the next attempt may well succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            UpstreamError::Transport(_) => true,
            UpstreamError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The source failed (rather than saying "no such symbol"): a fallback may answer.
    pub fn source_failed(&self) -> bool {
        !matches!(
            self,
            UpstreamError::UnknownSymbol
                | UpstreamError::NotConfigured
                | UpstreamError::Unsupported(_)
        )
    }

    pub(crate) fn malformed(what: impl std::fmt::Display) -> Self {
        UpstreamError::Malformed(truncate(&what.to_string()))
    }
}

/// At most 200 characters of an upstream text.
pub(crate) fn truncate(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
