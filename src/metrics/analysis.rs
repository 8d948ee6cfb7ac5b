//! The candle-close analysis metrics. Labels are fixed words: `outcome` (ok,
//! transport, status, rate_limited, invalid, timeout), `decision` (enter, abandon,
//! continue), `reason` (superseded, stale, trader, paused, inactive, outdated), `kind` (prompt,
//! completion).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge};

use super::counter;

/// Calls to the llm-proxy and what they decided.
#[derive(Clone)]
pub struct AnalysisMetrics {
    /// `monitoring_analysis_queue_depth`: claimed closes waiting for a call.
    pub queue_depth: IntGauge,
    /// `monitoring_analysis_in_flight`: calls under way.
    pub in_flight: IntGauge,
    /// `monitoring_analysis_calls_total{outcome}`
    pub calls: IntCounterVec,
    /// `monitoring_analysis_call_duration_seconds{outcome}`: retries included.
    pub latency: HistogramVec,
    /// `monitoring_analysis_decisions_total{decision}`
    pub decisions: IntCounterVec,
    /// `monitoring_analysis_skipped_total{reason}`: closes not analysed.
    pub skipped: IntCounterVec,
    /// `monitoring_analysis_tokens_total{kind}`: as the answers report them.
    pub tokens: IntCounterVec,
}

impl AnalysisMetrics {
    pub(super) fn new() -> Self {
        Self {
            queue_depth: IntGauge::new(
                "monitoring_analysis_queue_depth",
                "Claimed candle closes waiting for an llm-proxy call.",
            )
            .expect("valid metric"),
            in_flight: IntGauge::new(
                "monitoring_analysis_in_flight",
                "llm-proxy calls under way.",
            )
            .expect("valid metric"),
            calls: counter(
                "monitoring_analysis_calls_total",
                "llm-proxy calls by outcome (retries within one call counted once).",
                &["outcome"],
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "monitoring_analysis_call_duration_seconds",
                    "llm-proxy call duration, retries included.",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
                ]),
                &["outcome"],
            )
            .expect("valid metric"),
            decisions: counter(
                "monitoring_analysis_decisions_total",
                "Decisions recorded, by kind.",
                &["decision"],
            ),
            skipped: counter(
                "monitoring_analysis_skipped_total",
                "Candle closes of monitored signals not analysed, by reason.",
                &["reason"],
            ),
            tokens: counter(
                "monitoring_analysis_tokens_total",
                "Tokens the llm-proxy reported using.",
                &["kind"],
            ),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.queue_depth.clone()),
            Box::new(self.in_flight.clone()),
            Box::new(self.calls.clone()),
            Box::new(self.latency.clone()),
            Box::new(self.decisions.clone()),
            Box::new(self.skipped.clone()),
            Box::new(self.tokens.clone()),
        ]
    }
}

impl std::fmt::Debug for AnalysisMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisMetrics").finish_non_exhaustive()
    }
}
