//! The `expiry` monitor: strategies past `expires_at` become `expired`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport};
use crate::strategy::StrategyLoader;

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
