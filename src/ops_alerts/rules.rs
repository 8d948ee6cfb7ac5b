//! The closed set of operational alert rules (DESIGN §§10–12, 14), which bounds the
//! `rule` label of `monitoring_ops_alerts`, and the platform status the
//! `system_status` rule follows.

use super::Severity;

/// The rule following the platform status (§11).
pub const SYSTEM_STATUS: &str = "system_status";

/// Every rule the service raises. Any other name is counted as `other`.
pub const RULES: &[&str] = &[
    SYSTEM_STATUS,
    "dependency_down",
    "dependency_degraded",
    "ess_tripped",
    "circuit_breaker_triggered",
    "daily_loss_exceeded",
    "position_limit_breached",
    "sentiment_failures_high",
    "stale_teacher_model",
    "stale_student_model",
    "connectivity_lost",
    "heartbeat_lapsed",
    "analysis_failing",
];

/// `rule` as a metric label: itself when known, else `other`.
pub fn rule_label(rule: &str) -> &'static str {
    RULES
        .iter()
        .find(|known| **known == rule)
        .copied()
        .unwrap_or("other")
}

/// The platform's status (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformStatus {
    Ok,
    Degraded,
    Critical,
}

impl PlatformStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformStatus::Ok => "OK",
            PlatformStatus::Degraded => "DEGRADED",
            PlatformStatus::Critical => "CRITICAL",
        }
    }

    /// The severity of the `system_status` alert in this status (none when OK).
    pub fn severity(self) -> Option<Severity> {
        match self {
            PlatformStatus::Ok => None,
            PlatformStatus::Degraded => Some(Severity::Warning),
            PlatformStatus::Critical => Some(Severity::Critical),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_rules_are_one_label() {
        assert_eq!(rule_label("heartbeat_lapsed"), "heartbeat_lapsed");
        assert_eq!(rule_label("anything a producer made up"), "other");
        assert_eq!(PlatformStatus::Degraded.severity(), Some(Severity::Warning));
        assert_eq!(PlatformStatus::Ok.severity(), None);
    }
}
