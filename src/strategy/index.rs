//! The in-memory index of compiled strategies: one immutable snapshot, swapped
//! atomically, so a batch reads a consistent set while a reload builds the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CompiledStrategy, Frequency};

/// A strategy that failed validation, as last judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyError {
    pub version: DateTime<Utc>,
    pub message: String,
}

/// One version of the index.
#[derive(Debug, Default)]
pub struct IndexSnapshot {
    /// 0 until the first load completes, then +1 per swap.
    pub generation: u64,
    pub loaded_at: Option<DateTime<Utc>>,
    pub strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
    /// Strategies in status `error`, with their message.
    pub errors: HashMap<Uuid, StrategyError>,
    /// The strategies of each frequency: the batches.
    pub by_frequency: BTreeMap<Frequency, Vec<Arc<CompiledStrategy>>>,
}

impl IndexSnapshot {
    fn new(
        generation: u64,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
    ) -> Self {
        let mut by_frequency: BTreeMap<Frequency, Vec<Arc<CompiledStrategy>>> = BTreeMap::new();
        for strategy in strategies.values() {
            by_frequency
                .entry(strategy.frequency.clone())
                .or_default()
                .push(strategy.clone());
        }
        Self {
            generation,
            loaded_at: Some(Utc::now()),
            strategies,
            errors,
            by_frequency,
        }
    }
}

/// The current snapshot, readable without locks.
#[derive(Debug, Default)]
pub struct StrategyIndex {
    current: ArcSwap<IndexSnapshot>,
}

impl StrategyIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot; holding it keeps it alive across a swap.
    pub fn snapshot(&self) -> Arc<IndexSnapshot> {
        self.current.load_full()
    }

    /// Whether a load has completed (readiness).
    pub fn is_loaded(&self) -> bool {
        self.current.load().generation > 0
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<CompiledStrategy>> {
        self.current.load().strategies.get(&id).cloned()
    }

    /// Publishes a new version built from `strategies` and `errors`.
    pub(crate) fn publish(
        &self,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
    ) -> Arc<IndexSnapshot> {
        let generation = self.current.load().generation + 1;
        let snapshot = Arc::new(IndexSnapshot::new(generation, strategies, errors));
        self.current.store(snapshot.clone());
        snapshot
    }
}
