//! Strategy buckets as monitors: a `batch:<frequency>` monitor for each frequency of
//! the loaded strategies (except `candle_close`, which follows candle closes), added
//! and removed as reloads change the index.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::builtin::BatchMonitor;
use super::registry::Registry;
use crate::scheduler::BatchRunner;
use crate::strategy::{Frequency, StrategyIndex};

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
