//! The in-memory index of compiled strategies: one immutable snapshot, swapped
//! atomically, so a batch reads a consistent set while a reload builds the next.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CompiledStrategy, Frequency};
use crate::market::SeriesKey;

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
    /// Every candle series an indicator uses: what the candle feed follows.
    pub series: BTreeSet<SeriesKey>,
}

impl IndexSnapshot {
    fn new(
        generation: u64,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
    ) -> Self {
        let mut by_frequency: BTreeMap<Frequency, Vec<Arc<CompiledStrategy>>> = BTreeMap::new();
        let mut series = BTreeSet::new();
        for strategy in strategies.values() {
            for key in strategy.indicator_keys() {
                if !series.contains(&key.series) {
                    series.insert(key.series.clone());
                }
            }
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
            series,
        }
    }
}

/// The current snapshot, readable without locks.
#[derive(Debug)]
pub struct StrategyIndex {
    current: ArcSwap<IndexSnapshot>,
    /// The generation, for tasks that follow the index (the candle feed).
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for StrategyIndex {
    fn default() -> Self {
        Self {
            current: ArcSwap::default(),
            generation: tokio::sync::watch::channel(0).0,
        }
    }
}

impl StrategyIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes whenever a new snapshot is published.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
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
        self.generation.send_replace(generation);
        snapshot
    }
}
