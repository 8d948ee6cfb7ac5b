//! Automatic sharding's metrics. The one label is a fixed word: `kind` (acquired,
//! released, lost).

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::counter;

/// Shards held, replicas seen, hand-overs and fenced writes.
#[derive(Clone)]
pub struct ShardMetrics {
    /// `monitoring_shards_held`: virtual shards this replica holds (auto mode).
    pub held: IntGauge,
    /// `monitoring_shard_replicas_live`: live replicas this replica divides them with.
    pub live_replicas: IntGauge,
    /// `monitoring_shard_handoffs_total{kind}`: shards acquired, released, or lost (a
    /// lease that lapsed before it was renewed).
    pub handoffs: IntCounterVec,
    /// `monitoring_writes_fenced_total`: triggers and states not written because the
    /// shard's lease was no longer held under its token.
    pub fenced: IntCounter,
}

impl ShardMetrics {
    pub(super) fn new() -> Self {
        Self {
            held: IntGauge::new(
                "monitoring_shards_held",
                "Virtual shards this replica holds (SHARD_COUNT=auto).",
            )
            .expect("valid metric"),
            live_replicas: IntGauge::new(
                "monitoring_shard_replicas_live",
                "Live replicas dividing the virtual shards, as this replica sees them.",
            )
            .expect("valid metric"),
            handoffs: counter(
                "monitoring_shard_handoffs_total",
                "Virtual shards acquired, released, or lost (lease lapsed before renewal).",
                &["kind"],
            ),
            fenced: IntCounter::new(
                "monitoring_writes_fenced_total",
                "Triggers and states not written: the shard's lease was no longer held.",
            )
            .expect("valid metric"),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.held.clone()),
            Box::new(self.live_replicas.clone()),
            Box::new(self.handoffs.clone()),
            Box::new(self.fenced.clone()),
        ]
    }
}

impl std::fmt::Debug for ShardMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardMetrics").finish_non_exhaustive()
    }
}
