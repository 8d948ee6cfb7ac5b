//! The service's monitors: each strategy bucket, the platform health cycle, the
//! engines' heartbeat check, resuming deliveries a dead replica left, retention, and
//! strategy expiry. Each wraps one pass of work that lives in its own module.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use super::{Cadence, Monitor, Outcome, RunReport, RunStatus};
use crate::scheduler::{BatchError, BatchRunner};
use crate::strategy::{Frequency, StrategyIndex, StrategyLoader};

/// `batch:<frequency>`: evaluates one strategy bucket at its frequency's boundaries
/// (the batch writes its own ledger row).
pub struct BatchMonitor {
    pub runner: Arc<BatchRunner>,
    pub frequency: Frequency,
}

impl BatchMonitor {
    /// The monitor's name for `frequency`.
    pub fn name_of(frequency: &Frequency) -> String {
        format!("batch:{frequency}")
    }
}

impl Monitor for BatchMonitor {
    fn name(&self) -> String {
        Self::name_of(&self.frequency)
    }

    fn cadence(&self) -> Cadence {
        Cadence::Boundaries(self.frequency.clone())
    }

    fn run(&self, scheduled: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            match self.runner.run_at(&self.frequency, scheduled).await {
                Ok(report) => Ok(Outcome::Ran(RunReport {
                    status: if report.data_failures == 0 {
                        RunStatus::Ok
                    } else {
                        RunStatus::Partial
                    },
                    evaluated: report.evaluated,
                    triggered: report.triggered,
                    errors: report.errors,
                    details: json!({}),
                    recorded: true,
                })),
                // Run by `POST /internal/run/{frequency}` meanwhile: the batch recorded
                // the skip itself.
                Err(BatchError::AlreadyRunning(_)) => Ok(Outcome::NotHere),
                // The batch recorded its failure itself (queued while Postgres is
                // unreachable).
                Err(error) => Ok(Outcome::Ran(RunReport {
                    status: RunStatus::Failed,
                    errors: 1,
                    recorded: true,
                    ..RunReport::ok(json!({"error": error.to_string()}))
                })),
            }
        })
    }
}

/// `expiry`: strategies past `expires_at` become `expired` and leave the index.
pub struct ExpiryMonitor {
    pub loader: Arc<StrategyLoader>,
}

impl Monitor for ExpiryMonitor {
    fn name(&self) -> String {
        "expiry".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(Duration::from_secs(30))
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let expired = self.loader.expire_due().await.map_err(|e| e.to_string())?;
            Ok(Outcome::Ran(RunReport::ok(json!({"expired": expired}))))
        })
    }
}

/// `delivery_resume`: delivers what a replica whose delivery lease lapsed (a crash)
/// left pending, once the strategies are loaded.
pub struct DeliveryResumeMonitor {
    pub runner: Arc<BatchRunner>,
    pub index: Arc<StrategyIndex>,
}

impl Monitor for DeliveryResumeMonitor {
    fn name(&self) -> String {
        "delivery_resume".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(Duration::from_secs(10))
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            if !self.index.is_loaded() {
                return Ok(Outcome::NotHere);
            }
            let resumed = self
                .runner
                .triggers()
                .resume_pending()
                .await
                .map_err(|e| e.to_string())?;
            if resumed > 0 {
                tracing::info!(component = "trigger", resumed, "pending deliveries resumed");
            }
            Ok(Outcome::Ran(RunReport {
                triggered: resumed,
                ..RunReport::ok(json!({"resumed": resumed}))
            }))
        })
    }
}

/// `ops_rules`: raises `heartbeat_lapsed` for engines not heard from, on one replica
/// per cycle.
pub struct OpsRulesMonitor {
    pub applier: crate::ops_rules::Applier,
    pub settings: crate::ops_rules::EngineSettings,
}

impl Monitor for OpsRulesMonitor {
    fn name(&self) -> String {
        "ops_rules".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(Duration::from_secs(5))
    }

    fn singleton(&self) -> bool {
        true
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let lapsed =
                crate::ops_rules::judge_heartbeats(&self.applier, &self.settings.expected_engines)
                    .await
                    .map_err(|e| e.to_string())?;
            Ok(Outcome::Ran(RunReport {
                triggered: lapsed,
                ..RunReport::ok(json!({"lapsed": lapsed}))
            }))
        })
    }
}

/// `retention`: closed operational alerts and their log files, engine ticks and
/// snapshot files, and ledger rows past their retention; daily, on one replica.
pub struct RetentionMonitor {
    pub alerts: crate::alerts::OpsAlerts,
    pub alert_settings: crate::alerts::AlertSettings,
    pub engine_settings: crate::ops_rules::EngineSettings,
}

/// How long ledger rows are kept.
const LEDGER_DAYS: i64 = 30;

impl Monitor for RetentionMonitor {
    fn name(&self) -> String {
        "retention".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(Duration::from_secs(86_400))
    }

    fn singleton(&self) -> bool {
        true
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let db = self.alerts.pool();
            let alerts = self
                .alerts
                .apply_retention(
                    self.alert_settings.retention_days,
                    self.alert_settings.log_dir.as_deref(),
                )
                .await
                .map_err(|e| format!("operational alerts: {e}"))?;
            let ticks = crate::ops_rules::remove_old_ticks(db, &self.engine_settings)
                .await
                .map_err(|e| format!("engine ticks: {e}"))?;
            let ledger = crate::storage::ledger::remove_before(
                db,
                Utc::now() - chrono::Duration::days(LEDGER_DAYS),
            )
            .await
            .map_err(|e| format!("ledger: {e}"))?;
            Ok(Outcome::Ran(RunReport::ok(json!({
                "alert_rows": alerts,
                "engine_ticks": ticks,
                "ledger_rows": ledger,
            }))))
        })
    }
}

/// `platform_health`: one turn of the health cycle (its own lease decides which
/// replica checks; while Postgres is unreachable every replica checks for itself).
pub struct PlatformHealthMonitor {
    pub cycle: crate::platform_health::Cycle,
    pub replica: String,
}

impl Monitor for PlatformHealthMonitor {
    fn name(&self) -> String {
        "platform_health".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(self.cycle.interval)
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let Some((snapshot, shared)) = self.cycle.turn(&self.replica).await else {
                return Ok(Outcome::NotHere);
            };
            let mut report = RunReport::ok(json!({"system_status": snapshot.status,
                "critical_failures": snapshot.critical_failures}));
            if !shared {
                report.status = RunStatus::Partial;
                report.details["reason"] =
                    json!("lease unavailable (Postgres unreachable): this replica's own check");
            }
            Ok(Outcome::Ran(report))
        })
    }
}

/// `analysis`: driven by candle closes, so only `enabled` and `snoozed_until` apply
/// (a paused monitor's closes are skipped and counted). A run — by name — reads the
/// schedules again and resumes claims a crashed replica left pending.
pub struct AnalysisMonitor {
    pub analysis: crate::analysis::Analysis,
}

impl AnalysisMonitor {
    pub const NAME: &'static str = "analysis";
}

impl Monitor for AnalysisMonitor {
    fn name(&self) -> String {
        Self::NAME.to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Events
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let schedules = self
                .analysis
                .reload()
                .await
                .map_err(|e| format!("schedules: {e}"))?;
            let resumed = self
                .analysis
                .resume_stale()
                .await
                .map_err(|e| format!("stale claims: {e}"))?;
            Ok(Outcome::Ran(RunReport::ok(
                json!({"schedules": schedules, "resumed": resumed}),
            )))
        })
    }
}
