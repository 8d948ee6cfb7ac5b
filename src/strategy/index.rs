//! The in-memory index of compiled strategies: one immutable snapshot, swapped
//! atomically, so a batch reads a consistent set while a reload builds the next.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::CompiledStrategy;
use crate::frequency::Frequency;
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
    /// How many indicator uses each series has, so a change can update `series`
    /// without visiting every strategy.
    series_uses: BTreeMap<SeriesKey, usize>,
}

impl IndexSnapshot {
    fn new(
        generation: u64,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
    ) -> Self {
        let mut by_frequency: BTreeMap<Frequency, Vec<Arc<CompiledStrategy>>> = BTreeMap::new();
        let mut series_uses = BTreeMap::new();
        for strategy in strategies.values() {
            count_uses(&mut series_uses, strategy, 1);
            by_frequency
                .entry(strategy.frequency.clone())
                .or_default()
                .push(strategy.clone());
        }
        Self::assemble(generation, strategies, errors, by_frequency, series_uses)
    }

    fn assemble(
        generation: u64,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
        by_frequency: BTreeMap<Frequency, Vec<Arc<CompiledStrategy>>>,
        series_uses: BTreeMap<SeriesKey, usize>,
    ) -> Self {
        Self {
            generation,
            loaded_at: Some(Utc::now()),
            strategies,
            errors,
            by_frequency,
            series: series_uses.keys().cloned().collect(),
            series_uses,
        }
    }

    /// The next version after `previous` where only the strategies `changed` may
    /// differ: the buckets and series are updated for those alone, so reloading one
    /// strategy costs little more than copying the maps, whatever the index size.
    fn updated(
        previous: &IndexSnapshot,
        generation: u64,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
        changed: &HashSet<Uuid>,
    ) -> Self {
        let mut by_frequency = previous.by_frequency.clone();
        let mut series_uses = previous.series_uses.clone();
        let mut touched_buckets = BTreeSet::new();
        let mut replaced = Vec::new();
        for old in changed.iter().filter_map(|id| previous.strategies.get(id)) {
            count_uses(&mut series_uses, old, -1);
            touched_buckets.insert(old.frequency.clone());
            replaced.push(Arc::as_ptr(old));
        }
        // The old versions are found by address: reading each strategy's id would
        // visit 100,000 allocations (a cache miss each) to remove one.
        let replaced = Addresses::new(replaced);
        for frequency in touched_buckets {
            if let Some(bucket) = by_frequency.get_mut(&frequency) {
                bucket.retain(|s| !replaced.contains(Arc::as_ptr(s)));
            }
        }
        for new in changed.iter().filter_map(|id| strategies.get(id)) {
            count_uses(&mut series_uses, new, 1);
            by_frequency
                .entry(new.frequency.clone())
                .or_default()
                .push(new.clone());
        }
        by_frequency.retain(|_, bucket| !bucket.is_empty());
        series_uses.retain(|_, uses| *uses > 0);
        Self::assemble(generation, strategies, errors, by_frequency, series_uses)
    }
}

/// A set of strategy addresses: a short list scanned, a longer one hashed.
enum Addresses {
    Few(Vec<*const CompiledStrategy>),
    Many(HashSet<*const CompiledStrategy>),
}

impl Addresses {
    fn new(addresses: Vec<*const CompiledStrategy>) -> Self {
        if addresses.len() <= 16 {
            Addresses::Few(addresses)
        } else {
            Addresses::Many(addresses.into_iter().collect())
        }
    }

    fn contains(&self, address: *const CompiledStrategy) -> bool {
        match self {
            Addresses::Few(list) => list.contains(&address),
            Addresses::Many(set) => set.contains(&address),
        }
    }
}

/// Adds (`delta` 1) or removes (-1) `strategy`'s indicator uses of each series.
fn count_uses(uses: &mut BTreeMap<SeriesKey, usize>, strategy: &CompiledStrategy, delta: isize) {
    for key in strategy.indicator_keys() {
        match uses.get_mut(&key.series) {
            Some(count) => *count = count.saturating_add_signed(delta),
            None if delta > 0 => {
                uses.insert(key.series.clone(), 1);
            }
            None => {}
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

    /// Publishes a new version in which only the strategies `changed` differ from the
    /// current one (the caller serialises publishes; the loader does).
    pub(crate) fn publish_changes(
        &self,
        strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: HashMap<Uuid, StrategyError>,
        changed: &HashSet<Uuid>,
    ) -> Arc<IndexSnapshot> {
        let previous = self.current.load_full();
        let generation = previous.generation + 1;
        let snapshot = Arc::new(IndexSnapshot::updated(
            &previous, generation, strategies, errors, changed,
        ));
        self.current.store(snapshot.clone());
        self.generation.send_replace(generation);
        snapshot
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::SymbolInterner;
    use crate::strategy::ResolvedStrategy;
    use serde_json::json;

    /// Strategy `n` on `frequency`, with an RSI on `symbol` 1h.
    fn strategy(n: u128, frequency: &str, symbol: &str) -> Arc<CompiledStrategy> {
        let (id, condition) = (Uuid::from_u128(n), Uuid::from_u128(1_000_000 + n));
        let mut resolved = ResolvedStrategy::with_one_condition(
            id,
            condition,
            "technical_indicator",
            json!({"source": "binance", "symbol": symbol, "interval": "1h",
                   "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
        );
        resolved.row.frequency = frequency.into();
        Arc::new(CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).unwrap())
    }

    /// Buckets as sorted ids, and the series: what must not depend on how a version
    /// was built.
    fn shape(snapshot: &IndexSnapshot) -> (BTreeMap<String, Vec<Uuid>>, Vec<String>) {
        let buckets = snapshot
            .by_frequency
            .iter()
            .map(|(frequency, bucket)| {
                let mut ids: Vec<Uuid> = bucket.iter().map(|s| s.id).collect();
                ids.sort();
                (frequency.to_string(), ids)
            })
            .collect();
        let series = snapshot
            .series
            .iter()
            .map(|s| format!("{}:{}", s.symbol, s.interval))
            .collect();
        (buckets, series)
    }

    #[test]
    fn a_partial_update_equals_a_full_rebuild() {
        let frequencies = ["1m", "5m", "1h"];
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];
        let mut strategies: HashMap<Uuid, Arc<CompiledStrategy>> = (0..30u128)
            .map(|n| {
                let s = strategy(n, frequencies[n as usize % 3], symbols[n as usize % 3]);
                (s.id, s)
            })
            .collect();
        let index = StrategyIndex::new();
        index.publish(strategies.clone(), HashMap::new());

        // Moved to another bucket and series; removed (the only 1h users of CCCUSDT
        // are 2, 5, 8, …: all of them go); added on a new symbol and frequency.
        let mut changed = HashSet::new();
        for n in [0u128, 1] {
            let s = strategy(n, "1h", "DDDUSDT");
            changed.insert(s.id);
            strategies.insert(s.id, s);
        }
        for n in (2..30u128).step_by(3) {
            changed.insert(Uuid::from_u128(n));
            strategies.remove(&Uuid::from_u128(n));
        }
        let added = strategy(99, "30s", "EEEUSDT");
        changed.insert(added.id);
        strategies.insert(added.id, added);

        let partial = index.publish_changes(strategies.clone(), HashMap::new(), &changed);
        let full = IndexSnapshot::new(0, strategies, HashMap::new());
        assert_eq!(shape(&partial), shape(&full));
        assert!(!partial.series.iter().any(|s| &*s.symbol == "CCCUSDT"));
        assert_eq!(
            partial.by_frequency.len(),
            4,
            "{:?}",
            shape(&partial).0.keys()
        );
        assert_eq!(partial.generation, 2);
    }
}
