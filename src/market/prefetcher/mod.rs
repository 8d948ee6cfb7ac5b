//! The prefetcher: given a batch's data needs, fetches each datum once however many
//! strategies need it, and returns the batch's [`MarketSnapshot`].
//!
//! Per datum the order is one ladder ([`ladder`]): L1 (in-process), a flight another
//! batch already started (single flight), L2 (Redis, shared by replicas, one replica
//! fetching under a lock), then the source. [`prices`] and [`series`] say what each
//! kind of datum does at each rung. Spot prices of one source go out in one batched request; candles
//! once per (symbol, interval), and after the first fetch only the candles closed since.
//! A price lives `price_ttl`; a candle series until its interval's next close. A failed
//! datum is left out of the snapshot, so only the conditions that need it are
//! `unknown`.

mod ladder;
mod prices;
mod series;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::kline_cache::{KlineCache, MAX_CANDLES};
use super::memory_cache::MemoryCache;
use super::shared_cache::SharedCache;
use super::single_flight::SingleFlight;
use super::sources::{Sources, UpstreamError};
use super::{CandleSeries, Clock, DataNeeds, MarketSnapshot, PriceKey, Quote, SeriesKey, Source};
use crate::metrics::MarketMetrics;

pub use series::{price_ago_series, price_from_candles};

type PriceResult = Result<Quote, UpstreamError>;
type SeriesResult = Result<Arc<CandleSeries>, UpstreamError>;
/// A past price: the price key, the window in seconds, the minute it falls in.
type PastPriceKey = (PriceKey, u32, i64);

/// Freshness and concurrency of the prefetcher.
#[derive(Debug, Clone)]
pub struct PrefetchSettings {
    /// How long a spot price is reused (market time); shorter than the smallest
    /// frequency.
    pub price_ttl: Duration,
    /// After a close, how long to wait for a live WebSocket stream to deliver the
    /// closed candle before fetching it over REST.
    pub ws_close_grace: Duration,
    /// Candle series fetched at once.
    pub series_concurrency: usize,
}

impl Default for PrefetchSettings {
    fn default() -> Self {
        Self {
            price_ttl: Duration::from_secs(5),
            ws_close_grace: Duration::from_millis(1500),
            series_concurrency: 16,
        }
    }
}

/// A datum that could not be fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct DatumFailure {
    /// E.g. `price binance:BTCUSDT` or `klines binance:BTCUSDT:1h`.
    pub datum: String,
    pub error: UpstreamError,
}

/// What one prefetch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefetchReport {
    /// Lookups the batch's conditions made (before deduplication).
    pub demand: usize,
    /// Distinct data needed.
    pub data: usize,
    /// Data this replica fetched from a source during the call.
    pub fetched: usize,
    pub failures: Vec<DatumFailure>,
}

impl PrefetchReport {
    /// The share of the conditions' lookups answered without an upstream call.
    pub fn hit_rate(&self) -> f64 {
        if self.demand == 0 {
            return 1.0;
        }
        1.0 - self.fetched as f64 / self.demand as f64
    }
}

/// A batch's market data and how it was obtained.
#[derive(Debug, Clone)]
pub struct Prefetched {
    pub snapshot: MarketSnapshot,
    pub report: PrefetchReport,
}

/// The prefetcher; clones share caches and flights.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    inner: Arc<PrefetchCore>,
}

#[derive(Debug)]
struct PrefetchCore {
    sources: Arc<Sources>,
    clock: Clock,
    settings: PrefetchSettings,
    prices: MemoryCache<PriceKey, Quote>,
    prices_ago: MemoryCache<(PriceKey, u32, i64), f64>,
    klines: Arc<KlineCache>,
    shared: Option<SharedCache>,
    price_flights: SingleFlight<PriceKey, PriceResult>,
    ago_flights: SingleFlight<PastPriceKey, Result<f64, UpstreamError>>,
    series_flights: SingleFlight<SeriesKey, SeriesResult>,
    series_permits: Semaphore,
    metrics: Arc<MarketMetrics>,
    /// Data fetched from a source, ever (the report takes differences).
    fetched: AtomicUsize,
}

fn abandoned() -> UpstreamError {
    UpstreamError::Transport("fetch abandoned".into())
}

impl Prefetcher {
    pub fn new(
        sources: Arc<Sources>,
        klines: Arc<KlineCache>,
        shared: Option<SharedCache>,
        clock: Clock,
        settings: PrefetchSettings,
        metrics: Arc<MarketMetrics>,
    ) -> Self {
        Self {
            inner: Arc::new(PrefetchCore {
                sources,
                clock,
                series_permits: Semaphore::new(settings.series_concurrency.max(1)),
                settings,
                prices: MemoryCache::default(),
                prices_ago: MemoryCache::default(),
                klines,
                shared,
                price_flights: SingleFlight::default(),
                ago_flights: SingleFlight::default(),
                series_flights: SingleFlight::default(),
                metrics,
                fetched: AtomicUsize::new(0),
            }),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn klines(&self) -> &Arc<KlineCache> {
        &self.inner.klines
    }

    pub fn sources(&self) -> &Arc<Sources> {
        &self.inner.sources
    }

    /// The closed candles of `key` up to the last close, at least `count` of them,
    /// through the caches: for the candle feed's backfills and polls.
    pub async fn refresh_series(&self, key: &SeriesKey, count: usize) -> SeriesResult {
        self.refresh_many(&BTreeMap::from([(key.clone(), count)]))
            .await
            .remove(key)
            .unwrap_or_else(|| Err(abandoned()))
    }

    /// [`Prefetcher::refresh_series`] for many series at once (fetched concurrently).
    pub async fn refresh_many(
        &self,
        wanted: &BTreeMap<SeriesKey, usize>,
    ) -> HashMap<SeriesKey, SeriesResult> {
        let now = self.inner.clock.now_ms();
        let needs = wanted
            .iter()
            .map(|(key, count)| (key.clone(), (*count).clamp(2, MAX_CANDLES)))
            .collect();
        self.series(&needs, now, false).await
    }

    /// Fetches everything `needs` names, as of the market clock's now.
    pub async fn fetch(&self, needs: &DataNeeds) -> Prefetched {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let fetched_before = inner.fetched.load(Ordering::Relaxed);
        // Binance past prices are read from candles, which the batch may need anyway.
        let mut candles = needs.candles.clone();
        let mut ago_from_series = Vec::new();
        let mut ago_direct = Vec::new();
        for (key, window) in &needs.prices_ago {
            if key.source == Source::Binance {
                let (interval, count) = price_ago_series(*window);
                let series = SeriesKey {
                    source: key.source,
                    symbol: key.symbol.clone(),
                    interval,
                };
                let entry = candles.entry(series.clone()).or_insert(0);
                *entry = (*entry).max(count);
                ago_from_series.push((key.clone(), *window, series));
            } else {
                ago_direct.push((key.clone(), *window));
            }
        }
        let (prices, series, agos) = tokio::join!(
            self.prices(&needs.prices, now),
            self.series(&candles, now, true),
            self.prices_ago_direct(&ago_direct, now),
        );

        let mut report = PrefetchReport {
            demand: needs.demand,
            data: needs.len(),
            ..PrefetchReport::default()
        };
        let mut snapshot = MarketSnapshot {
            taken_at_ms: now,
            ..MarketSnapshot::default()
        };
        let mut fail = |datum: String, error: UpstreamError| {
            report.failures.push(DatumFailure { datum, error })
        };
        for (key, result) in prices {
            match result {
                Ok(quote) => {
                    snapshot.prices.insert(key, quote);
                }
                Err(error) => fail(format!("price {}:{}", key.source, key.symbol), error),
            }
        }
        for (key, window, series_key) in ago_from_series {
            let at = now - i64::from(window) * 1000;
            let price = match series.get(&series_key) {
                Some(Ok(s)) => price_from_candles(s, series_key.interval, at)
                    .ok_or(UpstreamError::Unsupported("no candle that old")),
                Some(Err(e)) => Err(e.clone()),
                None => Err(abandoned()),
            };
            match price {
                Ok(price) => {
                    snapshot.prices_ago.insert((key, window), price);
                }
                Err(error) => fail(
                    format!("price_ago {}:{}:{window}s", key.source, key.symbol),
                    error,
                ),
            }
        }
        for ((key, window), result) in agos {
            match result {
                Ok(price) => {
                    snapshot.prices_ago.insert((key, window), price);
                }
                Err(error) => fail(
                    format!("price_ago {}:{}:{window}s", key.source, key.symbol),
                    error,
                ),
            }
        }
        for (key, result) in series {
            match result {
                Ok(s) if needs.candles.contains_key(&key) => {
                    snapshot.candles.insert(key, s);
                }
                Ok(_) => {}
                Err(error) => fail(
                    format!("klines {}:{}:{}", key.source, key.symbol, key.interval),
                    error,
                ),
            }
        }
        report.fetched = inner.fetched.load(Ordering::Relaxed) - fetched_before;
        if !report.failures.is_empty() {
            tracing::warn!(
                failed = report.failures.len(),
                first = %report.failures[0].datum,
                error = %report.failures[0].error,
                "some market data is unavailable; the conditions that need it are unknown"
            );
        }
        Prefetched { snapshot, report }
    }
}
