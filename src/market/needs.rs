//! What a batch must fetch: the union of its conditions' needs, deduplicated.

use std::collections::{BTreeMap, BTreeSet};

use super::{PriceKey, SeriesKey};

/// One datum a condition needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataNeed {
    /// The current spot price.
    Price(PriceKey),
    /// The spot price `window_seconds` ago (percent-change alerts).
    PriceAgo(PriceKey, u32),
    /// At least `count` closed candles, enough for the indicator's warm-up.
    Candles(SeriesKey, usize),
}

/// The deduplicated needs of a batch: each price once, each series once with the
/// largest candle count any condition asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataNeeds {
    pub prices: BTreeSet<PriceKey>,
    pub prices_ago: BTreeSet<(PriceKey, u32)>,
    pub candles: BTreeMap<SeriesKey, usize>,
    /// How many needs were added before deduplication: the lookups a batch's
    /// conditions make.
    pub demand: usize,
}

impl DataNeeds {
    pub fn add(&mut self, need: DataNeed) {
        self.demand += 1;
        match need {
            DataNeed::Price(key) => {
                self.prices.insert(key);
            }
            DataNeed::PriceAgo(key, window) => {
                self.prices_ago.insert((key, window));
            }
            DataNeed::Candles(key, count) => {
                let entry = self.candles.entry(key).or_insert(0);
                *entry = (*entry).max(count);
            }
        }
    }

    /// How many distinct data the batch needs.
    pub fn len(&self) -> usize {
        self.prices.len() + self.prices_ago.len() + self.candles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
