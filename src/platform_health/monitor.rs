//! The `platform_health` monitor: one turn of the health cycle per run.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport, RunStatus};

/// `platform_health`: one turn of the health cycle (its own lease decides which
/// replica checks; while Postgres is unreachable every replica checks for itself).
pub struct PlatformHealthMonitor {
    pub cycle: super::Cycle,
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
