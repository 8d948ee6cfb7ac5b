//! The platform health cycle: every `HEALTH_CHECK_INTERVAL`, the replica holding the
//! `platform_health` lease checks every target, judges the system, stores the snapshot
//! (every replica serves the latest), publishes it on Redis (`health.snapshot_updated`),
//! and moves the alerts: `dependency_down` / `dependency_degraded` per target after
//! `HEALTH_ALERT_AFTER` bad cycles in a row, resolved after as many good ones, and
//! `system_status` following the system status. If the holder dies, its lease lapses
//! after 1.5 intervals and another replica takes over within two.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::collectors::Collectors;
use super::snapshot::{AlertCounts, Snapshot, Streaks, TargetState};
use super::status::{Judged, Kind, Limits, critical_failures, system_status};
use super::targets::Target;
use crate::alerts::{OpsAlerts, Severity};
use crate::storage::{health_snapshots, leases};

/// The lease's name.
const LEASE: &str = "platform_health";
/// The Redis channel each snapshot is published on.
pub const SNAPSHOT_CHANNEL: &str = "health.snapshot_updated";
/// The rule an emergency stop raises.
pub const ESS_TRIPPED: &str = "ess_tripped";

/// What a cycle needs.
#[derive(Clone)]
pub struct Cycle {
    pub collectors: Collectors,
    pub targets: Vec<Target>,
    pub alerts: OpsAlerts,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub limits: Limits,
    /// `HEALTH_ALERT_AFTER`.
    pub alert_after: u32,
    pub interval: Duration,
    pub metrics: crate::metrics::HealthMetrics,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cycle").finish_non_exhaustive()
    }
}

impl Cycle {
    /// Runs until shutdown as `replica`: a cycle each interval while holding the lease.
    pub async fn run(self, replica: String, shutdown: CancellationToken) {
        let ttl = self.interval.mul_f64(1.5).max(Duration::from_secs(2));
        loop {
            match leases::acquire(self.alerts.pool(), LEASE, &replica, ttl).await {
                Ok(Some(_)) => {
                    if let Err(error) = self.once().await {
                        tracing::warn!(component = "health", %error, "health cycle failed");
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(component = "health", %error, "platform_health lease unavailable");
                }
            }
            // Every replica shows the latest snapshot, whoever took it.
            if let Ok(Some(snapshot)) = latest(self.alerts.pool()).await {
                self.show(&snapshot);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One cycle; answers its snapshot.
    pub async fn once(&self) -> Result<Snapshot, sqlx::Error> {
        let previous: Option<Snapshot> = health_snapshots::latest(self.alerts.pool())
            .await
            .ok()
            .flatten()
            .and_then(|value| serde_json::from_value(value).ok());
        let results = self.collectors.check_all(&self.targets).await;
        let now = Utc::now();
        let mut targets = BTreeMap::new();
        for check in results {
            let before = previous.as_ref().and_then(|p| p.targets.get(&check.name));
            let since = before
                .filter(|b| b.check.status == check.status)
                .map_or(now, |b| b.since);
            let streaks = before
                .map_or(Streaks::default(), |b| b.streaks)
                .after(check.status);
            targets.insert(
                check.name.clone(),
                TargetState {
                    check,
                    since,
                    streaks,
                },
            );
        }
        self.move_dependency_alerts(&targets).await?;
        let ess_tripped = self
            .alerts
            .active()
            .await?
            .iter()
            .any(|a| a.rule == ESS_TRIPPED);
        let judged: Vec<Judged<'_>> = targets
            .values()
            .map(|t| Judged {
                name: &t.check.name,
                kind: t.check.kind,
                critical: t.check.critical,
                health: t.check.status,
                latency_ms: t.check.latency_ms,
            })
            .collect();
        let status = system_status(&judged, ess_tripped, &self.limits);
        let failures: Vec<String> = critical_failures(&judged)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let context =
            serde_json::json!({"critical_failures": failures, "ess_tripped": ess_tripped});
        self.alerts.follow_system_status(status, &context).await?;
        let active = self.alerts.active().await?;
        let alerts = AlertCounts {
            active_count: active.len(),
            critical_count: active.iter().filter(|a| a.severity == "CRITICAL").count(),
            warning_count: active.iter().filter(|a| a.severity == "WARNING").count(),
        };
        let snapshot = Snapshot {
            status: status.as_str().to_owned(),
            timestamp: now,
            targets,
            critical_failures: failures,
            ess_tripped,
            alerts,
        };
        let value = serde_json::to_value(&snapshot).unwrap_or_default();
        health_snapshots::insert(self.alerts.pool(), &value).await?;
        health_snapshots::remove_before(self.alerts.pool(), now - chrono::Duration::days(1))
            .await?;
        self.publish(&value).await;
        tracing::info!(
            component = "health",
            status = status.as_str(),
            critical_failures = snapshot.critical_failures.len(),
            "health cycle"
        );
        Ok(snapshot)
    }

    /// Raises and resolves each target's dependency alerts from its streaks.
    async fn move_dependency_alerts(
        &self,
        targets: &BTreeMap<String, TargetState>,
    ) -> Result<(), sqlx::Error> {
        let after = self.alert_after.max(1);
        for target in targets.values() {
            let check = &target.check;
            let labels = BTreeMap::from([
                ("component".to_owned(), "health".to_owned()),
                ("target".to_owned(), check.name.clone()),
            ]);
            let important = check.kind == Kind::Infrastructure || check.critical;
            let rules = [
                (
                    "dependency_down",
                    target.streaks.down,
                    target.streaks.not_down,
                    if important {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    "down",
                ),
                (
                    "dependency_degraded",
                    target.streaks.degraded,
                    target.streaks.not_degraded,
                    Severity::Warning,
                    "degraded",
                ),
            ];
            for (rule, holding, clear, severity, word) in rules {
                if holding >= after {
                    let title = format!("{} is {word}", check.name);
                    let message = format!(
                        "{} has been {word} for {holding} checks in a row ({})",
                        check.name,
                        check.error.as_deref().unwrap_or("slow")
                    );
                    let context = serde_json::json!({"latency_ms": check.latency_ms,
                        "error": check.error, "since": target.since});
                    self.alerts
                        .raise(rule, &labels, severity, &title, &message, &context)
                        .await?;
                } else if clear >= after {
                    self.alerts.resolve(rule, &labels).await?;
                }
            }
        }
        Ok(())
    }

    /// Sets the health metrics from `snapshot`.
    pub fn show(&self, snapshot: &Snapshot) {
        self.metrics.system_status.set(snapshot.status_code());
        for target in snapshot.targets.values() {
            let check = &target.check;
            let kind = match check.kind {
                Kind::Infrastructure => "infrastructure",
                Kind::Service => "service",
            };
            let code = match check.status {
                super::status::Health::Ok => 0,
                super::status::Health::Degraded => 1,
                super::status::Health::Down => 2,
            };
            self.metrics
                .dependency_status
                .with_label_values(&[&check.name, kind])
                .set(code);
            self.metrics
                .dependency_latency
                .with_label_values(&[&check.name])
                .set(check.latency_ms / 1000.0);
        }
    }

    async fn publish(&self, snapshot: &serde_json::Value) {
        let Some(mut redis) = self.redis.clone() else {
            return;
        };
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(SNAPSHOT_CHANNEL)
            .arg(snapshot.to_string())
            .query_async(&mut redis)
            .await;
        if let Err(error) = published {
            tracing::warn!(component = "health", kind = ?error.kind(), "health snapshot not published on Redis");
        }
    }
}

/// The latest snapshot, as every replica serves it.
pub async fn latest(db: &sqlx::PgPool) -> Result<Option<Snapshot>, sqlx::Error> {
    Ok(health_snapshots::latest(db)
        .await?
        .and_then(|value| serde_json::from_value(value).ok()))
}
