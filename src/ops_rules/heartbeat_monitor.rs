//! The `ops_rules` monitor: engines not heard from raise `heartbeat_lapsed`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport};

/// `ops_rules`: raises `heartbeat_lapsed` for engines not heard from, on one replica
/// per cycle.
pub struct OpsRulesMonitor {
    pub applier: super::Applier,
    pub settings: super::EngineSettings,
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
            let lapsed = super::judge_heartbeats(&self.applier, &self.settings.expected_engines)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Outcome::Ran(RunReport {
                triggered: lapsed,
                ..RunReport::ok(json!({"lapsed": lapsed}))
            }))
        })
    }
}
