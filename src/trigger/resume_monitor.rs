//! The `delivery_resume` monitor: what a crashed replica left pending goes out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use super::TriggerHandler;
use crate::monitors::{Cadence, Monitor, Outcome, RunReport};
use crate::strategy::StrategyIndex;

/// `delivery_resume`: delivers what a replica whose delivery lease lapsed (a crash)
/// left pending, once the strategies are loaded.
pub struct DeliveryResumeMonitor {
    pub triggers: TriggerHandler,
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
                .triggers
                .resume_pending()
                .await
                .map_err(|e| e.to_string())?;
            if resumed > 0 {
                tracing::info!(resumed, "pending deliveries resumed");
            }
            Ok(Outcome::Ran(RunReport {
                triggered: resumed,
                ..RunReport::ok(json!({"resumed": resumed}))
            }))
        })
    }
}
