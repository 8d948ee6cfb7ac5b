//! The context a batch evaluates in: the market snapshot and every indicator its
//! conditions use, each distinct (series, indicator, parameters) computed once.

use std::sync::Arc;

use crate::indicators::{IndicatorSpec, IndicatorValues};
use crate::market::{MarketSnapshot, SeriesKey};

/// An indicator on a series: the unit computed once per batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorKey {
    pub series: SeriesKey,
    pub spec: IndicatorSpec,
}

/// The snapshot plus computed indicators. Read-only during evaluation, so any number of
/// evaluations may share it.
#[derive(Debug, Clone, Default)]
pub struct BatchContext {
    pub snapshot: Arc<MarketSnapshot>,
    /// Hashed with foldhash: looked up for every condition of every evaluation.
    indicators: foldhash::HashMap<IndicatorKey, IndicatorValues>,
}

impl BatchContext {
    /// Computes each distinct indicator in `keys` once on the snapshot's candles.
    /// Indicators whose candles are missing are left out (their conditions are
    /// `unknown`).
    pub fn prepare<'k>(
        snapshot: Arc<MarketSnapshot>,
        keys: impl IntoIterator<Item = &'k IndicatorKey>,
    ) -> Self {
        let mut indicators = foldhash::HashMap::default();
        for key in keys {
            if indicators.contains_key(key) {
                continue;
            }
            if let Some(series) = snapshot.candles(&key.series) {
                indicators.insert(key.clone(), key.spec.compute(series));
            }
        }
        Self {
            snapshot,
            indicators,
        }
    }

    /// Sets `key`'s values, computed elsewhere on the snapshot's candles: the
    /// backtest's seam. It walks past moments in one context updated in place, each
    /// indicator computed (by [`IndicatorSpec::compute_window`]) on the candles a batch
    /// at that moment would have had, so the evaluation itself is the batch's.
    pub fn set_indicator(&mut self, key: &IndicatorKey, values: IndicatorValues) {
        match self.indicators.get_mut(key) {
            Some(slot) => *slot = values,
            None => {
                self.indicators.insert(key.clone(), values);
            }
        }
    }

    /// The snapshot, to update in place between two evaluations (copied first if an
    /// evaluation still shares it).
    pub fn snapshot_mut(&mut self) -> &mut MarketSnapshot {
        Arc::make_mut(&mut self.snapshot)
    }

    pub fn indicator(&self, key: &IndicatorKey) -> Option<&IndicatorValues> {
        self.indicators.get(key)
    }

    /// How many distinct indicators were computed.
    pub fn indicator_count(&self) -> usize {
        self.indicators.len()
    }
}
