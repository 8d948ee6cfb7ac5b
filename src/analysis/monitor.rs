//! The `analysis` monitor: candle-close analysis, paused and resumed like any job.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport};

/// `analysis`: driven by candle closes, so only `enabled` and `snoozed_until` apply
/// (a paused monitor's closes are skipped and counted). A run — by name — reads the
/// schedules again and resumes claims a crashed replica left pending.
pub struct AnalysisMonitor {
    pub analysis: super::Analysis,
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
