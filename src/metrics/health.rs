//! The platform health metrics. `target` is one of the configured targets (a fixed
//! set), `kind` is `infrastructure` or `service`.

use prometheus::{GaugeVec, IntGauge, IntGaugeVec, Opts};

/// The platform's status and each dependency's.
#[derive(Clone)]
pub struct HealthMetrics {
    /// `monitoring_system_status`: 0 OK, 1 DEGRADED, 2 CRITICAL.
    pub system_status: IntGauge,
    /// `monitoring_dependency_status{target, kind}`: 0 OK, 1 DEGRADED, 2 DOWN.
    pub dependency_status: IntGaugeVec,
    /// `monitoring_dependency_latency_seconds{target}`: the latest check's latency.
    pub dependency_latency: GaugeVec,
}

impl HealthMetrics {
    pub(super) fn new() -> Self {
        Self {
            system_status: IntGauge::new(
                "monitoring_system_status",
                "The platform status at the latest health cycle: 0 OK, 1 DEGRADED, 2 CRITICAL.",
            )
            .expect("valid metric"),
            dependency_status: IntGaugeVec::new(
                Opts::new(
                    "monitoring_dependency_status",
                    "Each dependency at the latest health cycle: 0 OK, 1 DEGRADED, 2 DOWN.",
                ),
                &["target", "kind"],
            )
            .expect("valid metric"),
            dependency_latency: GaugeVec::new(
                Opts::new(
                    "monitoring_dependency_latency_seconds",
                    "Each dependency's check latency at the latest health cycle.",
                ),
                &["target"],
            )
            .expect("valid metric"),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.system_status.clone()),
            Box::new(self.dependency_status.clone()),
            Box::new(self.dependency_latency.clone()),
        ]
    }
}

impl std::fmt::Debug for HealthMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMetrics").finish_non_exhaustive()
    }
}
