//! The platform health cycle: every `HEALTH_CHECK_INTERVAL`, the replica holding the
//! `platform_health` lease checks every target, judges the system, stores the snapshot
//! (every replica serves the latest), publishes it on Redis (`health.snapshot_updated`),
//! and moves the alerts: `dependency_down` / `dependency_degraded` per target after
//! `HEALTH_ALERT_AFTER` bad cycles in a row, resolved after as many good ones, and
//! `system_status` following the system status. The holder renews its lease each
//! turn for an interval and two seconds; if it dies, another replica takes over at its
//! first turn after the lapse.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;

use super::collectors::Collectors;
use super::snapshot::{AlertCounts, Snapshot, Streaks, TargetState};
use super::status::{Judged, Kind, Limits, critical_failures, system_status};
use super::targets::Target;
use crate::ops_alerts::{OpsAlerts, Severity};
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
    /// What this replica's routes answer from.
    pub latest: super::latest::LatestSnapshot,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cycle").finish_non_exhaustive()
    }
}

impl Cycle {
    /// How long the lease is held per renewal: an interval and two seconds. The holder
    /// renews it as each turn starts, an interval apart (the scheduler fires within
    /// half a second), so it keeps it however long its checks take; if it dies, the
    /// lease lapses two seconds after its next turn was due, and another replica's
    /// turn, at most an interval later, takes it: within two intervals and two seconds
    /// of the holder's last cycle.
    fn lease_ttl(&self) -> Duration {
        self.interval + Duration::from_secs(2)
    }

    /// One turn on `replica`, run every interval by the `platform_health` monitor. The
    /// lease holder runs the cycle (renewing the lease as it starts); another replica
    /// shows the stored snapshot and answers `None`, and takes the lease over at its
    /// first turn after the lease lapsed. While the lease cannot be asked for
    /// (Postgres unreachable), every replica checks for itself and serves what it saw.
    /// Answers the snapshot taken and whether it was the shared cycle.
    pub async fn turn(&self, replica: &str) -> Option<(Snapshot, bool)> {
        match leases::acquire(self.alerts.pool(), LEASE, replica, self.lease_ttl()).await {
            Ok(Some(_)) => Some((self.once(true).await, true)),
            Ok(None) => {
                if let Ok(Some(snapshot)) = latest(self.alerts.pool()).await {
                    self.hold(snapshot);
                }
                None
            }
            Err(error) => {
                tracing::warn!(%error,
                    "platform_health lease unavailable; checking on this replica alone");
                Some((self.once(false).await, false))
            }
        }
    }

    /// Shows `snapshot` on this replica (routes and metrics) unless it holds a newer one.
    fn hold(&self, snapshot: Snapshot) {
        self.show(&snapshot);
        self.latest.offer(snapshot);
    }

    /// One cycle; answers its snapshot. With `shared`, the holder's cycle: the previous
    /// snapshot, the emergency stop and the alert counts come from Postgres, the alerts
    /// move and the snapshot is stored. A step Postgres cannot take is logged and the
    /// cycle goes on from what this replica last knew: the checks, the status, the
    /// Redis event and this replica's routes never wait for Postgres to come back.
    pub async fn once(&self, shared: bool) -> Snapshot {
        let db = self.alerts.pool();
        let stored = if shared {
            latest(db).await.ok().flatten()
        } else {
            None
        };
        let known = self.latest.get().map(|held| (*held).clone());
        let previous = match (stored, known) {
            (Some(stored), Some(known)) if known.timestamp > stored.timestamp => Some(known),
            (Some(stored), _) => Some(stored),
            (None, known) => known,
        };
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
        let active = if shared {
            self.move_dependency_alerts(&targets)
                .await
                .map_err(|error| self.skipped("dependency alerts", &error))
                .ok();
            self.alerts
                .active()
                .await
                .map_err(|error| self.skipped("active alerts", &error))
                .ok()
        } else {
            None
        };
        let ess_tripped = match &active {
            Some(active) => active.iter().any(|a| a.rule == ESS_TRIPPED),
            None => previous.as_ref().is_some_and(|p| p.ess_tripped),
        };
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
        let mut alerts = previous.as_ref().map(|p| p.alerts).unwrap_or_default();
        if active.is_some() {
            let context =
                serde_json::json!({"critical_failures": failures, "ess_tripped": ess_tripped});
            if let Err(error) = self.alerts.follow_system_status(status, &context).await {
                self.skipped("the system_status alert", &error);
            }
            if let Ok(active) = self.alerts.active().await {
                alerts = AlertCounts {
                    active_count: active.len(),
                    critical_count: active.iter().filter(|a| a.severity == "CRITICAL").count(),
                    warning_count: active.iter().filter(|a| a.severity == "WARNING").count(),
                };
            }
        }
        let snapshot = Snapshot {
            status: status.as_str().to_owned(),
            timestamp: now,
            targets,
            critical_failures: failures,
            ess_tripped,
            alerts,
        };
        let value = serde_json::to_value(&snapshot).unwrap_or_default();
        if shared {
            let stored = async {
                health_snapshots::insert(db, &value).await?;
                health_snapshots::remove_before(db, now - chrono::Duration::days(1)).await
            };
            if let Err(error) = stored.await {
                self.skipped("storing the snapshot", &error);
            }
        }
        self.publish(&value).await;
        self.hold(snapshot.clone());
        tracing::info!(
            status = status.as_str(),
            critical_failures = snapshot.critical_failures.len(),
            shared,
            "health cycle"
        );
        snapshot
    }

    fn skipped(&self, step: &str, error: &sqlx::Error) {
        tracing::warn!(step, %error, "health cycle step skipped");
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
            tracing::warn!(kind = ?error.kind(), "health snapshot not published on Redis");
        }
    }
}

/// The latest snapshot, as every replica serves it.
pub async fn latest(db: &sqlx::PgPool) -> Result<Option<Snapshot>, sqlx::Error> {
    Ok(health_snapshots::latest(db)
        .await?
        .and_then(|value| serde_json::from_value(value).ok()))
}
