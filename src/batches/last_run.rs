//! The last run of each batch (by frequency as written), kept in memory for
//! `/internal/status`: when it ran, for which period, what it found, how long it took.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// One batch's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LastRun {
    pub started_at: DateTime<Utc>,
    /// The period (or candle close) the run belonged to.
    pub due: DateTime<Utc>,
    pub duration_ms: f64,
    pub evaluated: usize,
    pub triggered: usize,
    /// Strategies evaluated unknown.
    pub errors: usize,
    /// Market data that could not be fetched.
    pub data_failures: usize,
    /// Share of the batch's data lookups answered by a cache, 0..1.
    pub cache_hit_rate: f64,
    /// `ok`, or `partial` when some data failed.
    pub status: &'static str,
}

/// The last run per batch name (`1m`, a cron expression, `candle_close`).
#[derive(Debug, Default)]
pub struct LastRuns {
    runs: Mutex<BTreeMap<String, LastRun>>,
}

impl LastRuns {
    pub fn record(&self, name: &str, run: LastRun) {
        self.runs
            .lock()
            .expect("last runs lock")
            .insert(name.to_owned(), run);
    }

    pub fn get(&self, name: &str) -> Option<LastRun> {
        self.runs.lock().expect("last runs lock").get(name).cloned()
    }
}
