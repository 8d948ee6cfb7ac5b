//! The health snapshot: every target's latest check with how long it has been in its
//! status and its alert streaks, the system status, and the active alerts' counts —
//! stored by the replica running the cycle and served by every replica in the shapes
//! of DESIGN §11 (`/internal/health/system`, `/internal/health/metrics`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::collectors::CheckResult;
use super::status::{Health, Kind};

/// One target in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    #[serde(flatten)]
    pub check: CheckResult,
    /// Since when the target has had this status.
    pub since: DateTime<Utc>,
    /// Cycles in a row the target has been DOWN / not DOWN / DEGRADED / not DEGRADED.
    pub streaks: Streaks,
}

/// Consecutive cycles, per alert rule, holding and not holding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streaks {
    pub down: u32,
    pub not_down: u32,
    pub degraded: u32,
    pub not_degraded: u32,
}

impl Streaks {
    /// The streaks after a check with `status`.
    pub fn after(self, status: Health) -> Self {
        let step = |holds: bool, on: u32, off: u32| {
            if holds {
                (on.saturating_add(1), 0)
            } else {
                (0, off.saturating_add(1))
            }
        };
        let (down, not_down) = step(status == Health::Down, self.down, self.not_down);
        let (degraded, not_degraded) =
            step(status == Health::Degraded, self.degraded, self.not_degraded);
        Self {
            down,
            not_down,
            degraded,
            not_degraded,
        }
    }
}

/// Active alerts, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCounts {
    pub active_count: usize,
    pub critical_count: usize,
    pub warning_count: usize,
}

/// One cycle's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `OK`, `DEGRADED` or `CRITICAL`.
    pub status: String,
    pub timestamp: DateTime<Utc>,
    pub targets: BTreeMap<String, TargetState>,
    pub critical_failures: Vec<String>,
    pub ess_tripped: bool,
    pub alerts: AlertCounts,
}

impl Snapshot {
    /// 0 OK, 1 DEGRADED, 2 CRITICAL.
    pub fn status_code(&self) -> i64 {
        match self.status.as_str() {
            "OK" => 0,
            "DEGRADED" => 1,
            _ => 2,
        }
    }

    fn latencies(&self) -> (f64, f64) {
        let all: Vec<f64> = self.targets.values().map(|t| t.check.latency_ms).collect();
        let max = all.iter().copied().fold(0.0, f64::max);
        let avg = if all.is_empty() {
            0.0
        } else {
            all.iter().sum::<f64>() / all.len() as f64
        };
        ((avg * 100.0).round() / 100.0, max)
    }

    /// Names by status among targets of `kind`.
    fn by_status(&self, kind: Kind) -> Value {
        let names = |health: Health| -> Vec<&str> {
            self.targets
                .values()
                .filter(|t| t.check.kind == kind && t.check.status == health)
                .map(|t| t.check.name.as_str())
                .collect()
        };
        json!({"ok": names(Health::Ok), "degraded": names(Health::Degraded), "down": names(Health::Down)})
    }

    /// `GET /internal/health/system`.
    pub fn system(&self) -> Value {
        let (avg, max) = self.latencies();
        let checks: BTreeMap<&str, Value> = self
            .targets
            .values()
            .map(|t| {
                (
                    t.check.name.as_str(),
                    json!({"status": t.check.status, "latency_ms": t.check.latency_ms,
                           "critical": t.check.critical, "kind": t.check.kind,
                           "error": t.check.error, "since": t.since, "detail": t.check.detail}),
                )
            })
            .collect();
        json!({
            "status": self.status,
            "timestamp": self.timestamp,
            "services": self.by_status(Kind::Service),
            "infrastructure": self.by_status(Kind::Infrastructure),
            "critical_failures": self.critical_failures,
            "ess_tripped": self.ess_tripped,
            "performance": {"avg_service_latency_ms": avg, "max_service_latency_ms": max},
            "checks": checks,
        })
    }

    /// `GET /internal/health/metrics`.
    pub fn metrics(&self) -> Value {
        let (avg, max) = self.latencies();
        let count = |kind: Kind, health: Option<Health>| {
            self.targets
                .values()
                .filter(|t| t.check.kind == kind && health.is_none_or(|h| t.check.status == h))
                .count()
        };
        json!({
            "timestamp": self.timestamp,
            "counters": {
                "total_services": count(Kind::Service, None),
                "services_ok": count(Kind::Service, Some(Health::Ok)),
                "services_degraded": count(Kind::Service, Some(Health::Degraded)),
                "services_down": count(Kind::Service, Some(Health::Down)),
                "infra_ok": count(Kind::Infrastructure, Some(Health::Ok)),
                "infra_down": count(Kind::Infrastructure, Some(Health::Down)),
            },
            "gauges": {
                "system_status_code": self.status_code(),
                "avg_service_latency_ms": avg,
                "max_service_latency_ms": max,
            },
            "alerts": self.alerts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaks_count_cycles_in_a_row() {
        let s = Streaks::default().after(Health::Down).after(Health::Down);
        assert_eq!(
            (s.down, s.not_down, s.degraded, s.not_degraded),
            (2, 0, 0, 2)
        );
        let s = s.after(Health::Degraded);
        assert_eq!(
            (s.down, s.not_down, s.degraded, s.not_degraded),
            (0, 1, 1, 0)
        );
        let s = s.after(Health::Ok).after(Health::Ok);
        assert_eq!(
            (s.down, s.not_down, s.degraded, s.not_degraded),
            (0, 3, 0, 2)
        );
    }
}
