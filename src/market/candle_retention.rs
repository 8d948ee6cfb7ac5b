//! The `candle_retention` monitor: stored candles (the candle history backtests read)
//! older than `CANDLE_RETENTION_DAYS` are removed, daily, on one replica.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use sqlx::PgPool;

use crate::monitors::{Cadence, Monitor, Outcome, RunReport};

/// `candle_retention`: removes candles past their retention.
pub struct CandleRetentionMonitor {
    pub db: PgPool,
    /// `CANDLE_RETENTION_DAYS`.
    pub retention_days: u32,
}

impl Monitor for CandleRetentionMonitor {
    fn name(&self) -> String {
        "candle_retention".to_owned()
    }

    fn cadence(&self) -> Cadence {
        Cadence::Interval(Duration::from_secs(86_400))
    }

    fn singleton(&self) -> bool {
        true
    }

    fn run(&self, _: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>> {
        Box::pin(async move {
            let before = Utc::now() - chrono::Duration::days(i64::from(self.retention_days));
            let removed = crate::storage::candles::remove_before(&self.db, before)
                .await
                .map_err(|e| format!("candles: {e}"))?;
            Ok(Outcome::Ran(RunReport::ok(json!({
                "candles_removed": removed,
                "before": before,
            }))))
        })
    }
}
