//! The trading-engine metrics. `engine_id` is bounded by the caller (the configured
//! engines plus the first hundred seen, then `other`).

use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounterVec, Opts};

use super::counter;

/// Engine ticks and the rules over them.
#[derive(Clone)]
pub struct EngineMetrics {
    /// `monitoring_engine_ticks_total{engine_id}`: ticks taken.
    pub ticks: IntCounterVec,
    /// `monitoring_engine_last_tick_timestamp_seconds{engine_id}`: when the latest tick
    /// was received (Unix seconds).
    pub last_tick: GaugeVec,
    /// `monitoring_ops_rule_evaluation_seconds`: every rule on one tick.
    pub rule_evaluation: Histogram,
    /// `monitoring_engine_tick_batch_size`: ticks committed together.
    pub batch_size: Histogram,
    /// `monitoring_engine_state_unreadable_total`: stored engine states that could not
    /// be decoded (each read as no previous state for its engine alone).
    pub unreadable_state: prometheus::IntCounter,
}

impl EngineMetrics {
    pub(super) fn new() -> Self {
        Self {
            ticks: counter(
                "monitoring_engine_ticks_total",
                "Trading-engine ticks taken, by engine (bounded; `other` past the first hundred unconfigured engines).",
                &["engine_id"],
            ),
            last_tick: GaugeVec::new(
                Opts::new(
                    "monitoring_engine_last_tick_timestamp_seconds",
                    "When each engine's latest tick was received (Unix seconds).",
                ),
                &["engine_id"],
            )
            .expect("valid metric"),
            rule_evaluation: Histogram::with_opts(
                HistogramOpts::new(
                    "monitoring_ops_rule_evaluation_seconds",
                    "Time to evaluate every operational rule on one tick.",
                )
                .buckets(vec![
                    0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_5, 0.001,
                ]),
            )
            .expect("valid metric"),
            batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "monitoring_engine_tick_batch_size",
                    "Engine ticks committed in one transaction.",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )
            .expect("valid metric"),
            unreadable_state: prometheus::IntCounter::new(
                "monitoring_engine_state_unreadable_total",
                "Stored engine states that could not be decoded since start (each taken as no previous state for its engine).",
            )
            .expect("valid metric"),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.ticks.clone()),
            Box::new(self.last_tick.clone()),
            Box::new(self.rule_evaluation.clone()),
            Box::new(self.batch_size.clone()),
            Box::new(self.unreadable_state.clone()),
        ]
    }
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMetrics").finish_non_exhaustive()
    }
}
