//! The health of one market-data source as an operator judges it: when it last
//! answered, when and how it last failed, and how many calls in a row have failed.
//! Updated by every call through [`super::Upstream`]; shown in `/internal/status`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::UpstreamError;

/// One source's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct SourceHealthRecord {
    /// `idle` (not called yet), `ok` (the last call succeeded), `failing`, or `paused`
    /// (a rate-limit pause is in force).
    pub state: &'static str,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The kind of the last failure (`transport`, `status`, `rate_limited`, …).
    pub last_failure: Option<&'static str>,
    /// Calls that failed since the last success.
    pub consecutive_failures: u32,
    /// Milliseconds left of a rate-limit pause (0 when none).
    pub paused_for_ms: u64,
}

/// Kept by each upstream.
#[derive(Debug, Default)]
pub struct SourceHealth {
    record: Mutex<SourceHealthRecord>,
}

impl SourceHealth {
    pub fn succeeded(&self) {
        let mut record = self.record.lock().expect("health lock");
        record.last_success_at = Some(Utc::now());
        record.consecutive_failures = 0;
    }

    /// Records `error` if it is the source's failure (an unknown symbol is the caller's
    /// problem: the source answered).
    pub fn failed(&self, error: &UpstreamError) {
        if !error.source_failed() {
            return;
        }
        let mut record = self.record.lock().expect("health lock");
        record.last_failure_at = Some(Utc::now());
        record.last_failure = Some(error.kind());
        record.consecutive_failures = record.consecutive_failures.saturating_add(1);
    }

    /// The record now, `paused_for_ms` being what is left of a pause.
    pub fn snapshot(&self, paused_for_ms: u64) -> SourceHealthRecord {
        let mut record = self.record.lock().expect("health lock").clone();
        record.paused_for_ms = paused_for_ms;
        record.state = if paused_for_ms > 0 {
            "paused"
        } else if record.consecutive_failures > 0 {
            "failing"
        } else if record.last_success_at.is_some() {
            "ok"
        } else {
            "idle"
        };
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_calls() {
        let health = SourceHealth::default();
        assert_eq!(health.snapshot(0).state, "idle");
        health.succeeded();
        assert_eq!(health.snapshot(0).state, "ok");
        health.failed(&UpstreamError::UnknownSymbol);
        assert_eq!(
            health.snapshot(0).consecutive_failures,
            0,
            "not the source's fault"
        );
        health.failed(&UpstreamError::Transport("reset".into()));
        health.failed(&UpstreamError::Transport("reset".into()));
        let record = health.snapshot(0);
        assert_eq!(
            (
                record.state,
                record.consecutive_failures,
                record.last_failure
            ),
            ("failing", 2, Some("transport"))
        );
        assert_eq!(health.snapshot(1500).state, "paused");
        health.succeeded();
        assert_eq!(health.snapshot(0).state, "ok");
    }
}
