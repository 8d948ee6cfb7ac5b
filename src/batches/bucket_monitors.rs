//! Strategy buckets as monitors: `batch:<frequency>` evaluates one bucket at its
//! frequency's boundaries, one monitor for each frequency of the loaded strategies
//! (except `candle_close`, which follows candle closes), added and removed as reloads
//! change the index.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;

use tokio_util::sync::CancellationToken;

use super::{BatchError, BatchRunner};
use crate::frequency::Frequency;
use crate::monitors::{Cadence, Monitor, Outcome, Registry, RunReport, RunStatus};
use crate::strategy::StrategyIndex;

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

/// Keeps the registry's bucket monitors equal to the index's buckets until `shutdown`.
pub async fn follow_buckets(
    registry: Arc<Registry>,
    runner: Arc<BatchRunner>,
    index: Arc<StrategyIndex>,
    shutdown: CancellationToken,
) {
    let mut generations = index.subscribe();
    loop {
        let snapshot = index.snapshot();
        runner.follow_buckets(&snapshot);
        let wanted: BTreeSet<String> = snapshot
            .by_frequency
            .keys()
            .filter(|f| **f != Frequency::CandleClose)
            .map(BatchMonitor::name_of)
            .collect();
        for name in registry.names() {
            if name.starts_with("batch:") && !wanted.contains(&name) {
                registry.unregister(&name);
            }
        }
        for frequency in snapshot.by_frequency.keys() {
            let name = BatchMonitor::name_of(frequency);
            if *frequency != Frequency::CandleClose && registry.get(&name).is_none() {
                registry
                    .register(Arc::new(BatchMonitor {
                        runner: runner.clone(),
                        frequency: frequency.clone(),
                    }))
                    .await;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = generations.changed() => if changed.is_err() { return },
        }
    }
}
