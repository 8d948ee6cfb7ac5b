//! The operational alerts' metrics. Labels are bounded: `rule` is one of the known rules
//! (else `other`), `severity` and `state` are fixed words, `event`, `kind` and
//! `outcome` too.

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts};

use super::counter;

/// Operational alerts: events, episodes by state, notifications, the log.
#[derive(Clone)]
pub struct AlertMetrics {
    /// `monitoring_alert_log_errors_total`: alert log lines not written (a failing disk
    /// or a queue far behind it).
    pub log_errors: IntCounter,
    /// `monitoring_ops_alert_events_total{event, severity}`: operational alert events
    /// (`raised`, `resolved`, `cleared`, `acknowledged`).
    pub events: IntCounterVec,
    /// `monitoring_ops_alerts{rule, severity, state}`: episodes kept, by state
    /// (`firing`, `resolved`, `cleared`).
    pub episodes: IntGaugeVec,
    /// `monitoring_ops_alert_notifications_total{kind, outcome}`: each channel's
    /// delivery of an alert message (`firing` or `resolved`; `delivered` or `failed`).
    pub notifications: IntCounterVec,
}

impl AlertMetrics {
    pub(super) fn new() -> Self {
        Self {
            log_errors: IntCounter::new(
                "monitoring_alert_log_errors_total",
                "Operational alert log lines not written (disk failing or far behind).",
            )
            .expect("valid metric"),
            events: counter(
                "monitoring_ops_alert_events_total",
                "Operational alert events, by event (raised, resolved, cleared, acknowledged) and severity.",
                &["event", "severity"],
            ),
            episodes: IntGaugeVec::new(
                Opts::new(
                    "monitoring_ops_alerts",
                    "Operational alert episodes kept, by rule, severity and state (firing, resolved, cleared).",
                ),
                &["rule", "severity", "state"],
            )
            .expect("valid metric"),
            notifications: counter(
                "monitoring_ops_alert_notifications_total",
                "Operational alert messages per channel, by kind (firing, resolved) and outcome (delivered, failed).",
                &["kind", "outcome"],
            ),
        }
    }

    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.log_errors.clone()),
            Box::new(self.events.clone()),
            Box::new(self.episodes.clone()),
            Box::new(self.notifications.clone()),
        ]
    }
}

impl std::fmt::Debug for AlertMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertMetrics").finish_non_exhaustive()
    }
}
