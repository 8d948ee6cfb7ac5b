//! Everything a batch fetched: prices, past prices and closed candles, keyed the way
//! conditions ask for them.

use std::collections::HashMap;
use std::sync::Arc;

use super::{CandleSeries, Interval, Source};

/// A spot price of one symbol at one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PriceKey {
    pub source: Source,
    pub symbol: Arc<str>,
}

/// The candles of one symbol at one interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub source: Source,
    pub symbol: Arc<str>,
    pub interval: Interval,
}

/// A price and where it really came from (a fallback source may have answered).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    pub price: f64,
    pub answered_by: Source,
    /// When the source produced it, Unix milliseconds.
    pub at_ms: i64,
}

/// The market data of one batch. Missing entries make the conditions that need them
/// `unknown`, nothing else.
#[derive(Debug, Clone, Default)]
pub struct MarketSnapshot {
    /// When the snapshot was taken, Unix milliseconds.
    pub taken_at_ms: i64,
    pub prices: HashMap<PriceKey, Quote>,
    /// The price `window_seconds` before `taken_at_ms`.
    pub prices_ago: HashMap<(PriceKey, u32), f64>,
    pub candles: HashMap<SeriesKey, Arc<CandleSeries>>,
}

impl MarketSnapshot {
    pub fn price(&self, key: &PriceKey) -> Option<&Quote> {
        self.prices.get(key).filter(|q| q.price.is_finite())
    }

    pub fn price_ago(&self, key: &PriceKey, window_seconds: u32) -> Option<f64> {
        // Looking up by a borrowed pair would need a custom Borrow; the clone is one
        // refcount increment.
        self.prices_ago
            .get(&(key.clone(), window_seconds))
            .copied()
            .filter(|p| p.is_finite())
    }

    pub fn candles(&self, key: &SeriesKey) -> Option<&Arc<CandleSeries>> {
        self.candles.get(key)
    }
}
