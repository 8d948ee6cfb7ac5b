//! The `retention` monitor: what the platform keeps for a while (closed operational
//! alerts and their log files, engine ticks and snapshot files, ledger rows) is removed
//! past its retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport};

/// `retention`: closed operational alerts and their log files, engine ticks and
/// snapshot files, and ledger rows past their retention; daily, on one replica.
pub struct RetentionMonitor {
    pub alerts: crate::ops_alerts::OpsAlerts,
    pub alert_settings: crate::ops_alerts::AlertSettings,
    pub engine_settings: super::EngineSettings,
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
            let ticks = super::remove_old_ticks(db, &self.engine_settings)
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
