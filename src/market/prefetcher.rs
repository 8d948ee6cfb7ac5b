//! The prefetcher: given a batch's data needs, fetches each datum once however many
//! strategies need it, and returns the batch's [`MarketSnapshot`].
//!
//! Per datum the order is: L1 (in-process), a flight another batch already started
//! (single flight), L2 (Redis, shared by replicas, one replica fetching under a lock),
//! then the source. Spot prices of one source go out in one batched request; candles
//! once per (symbol, interval), and after the first fetch only the candles closed since.
//! A price lives `price_ttl`; a candle series until its interval's next close. A failed
//! datum is left out of the snapshot, so only the conditions that need it are
//! `unknown`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::codec;
use super::kline_cache::{self, KlineCache, Lookup, MAX_CANDLES};
use super::memory_cache::MemoryCache;
use super::shared_cache::{Fetched, Origin, SharedCache};
use super::single_flight::SingleFlight;
use super::sources::{Sources, UpstreamError};
use super::{
    CandleSeries, Clock, DataNeeds, Interval, MarketSnapshot, PriceKey, Quote, SeriesKey, Source,
};
use crate::metrics::MarketMetrics;

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sources: Arc<Sources>,
    clock: Clock,
    settings: PrefetchSettings,
    prices: MemoryCache<PriceKey, Quote>,
    prices_ago: MemoryCache<(PriceKey, u32, i64), f64>,
    klines: Arc<KlineCache>,
    shared: Option<SharedCache>,
    price_flights: SingleFlight<PriceKey, PriceResult>,
    series_flights: SingleFlight<SeriesKey, SeriesResult>,
    series_permits: Semaphore,
    metrics: Arc<MarketMetrics>,
    /// Data fetched from a source, ever (the report takes differences).
    fetched: AtomicUsize,
}

fn abandoned() -> UpstreamError {
    UpstreamError::Transport("fetch abandoned".into())
}

/// The candle interval and count that cover a price `window_seconds` ago.
pub fn price_ago_series(window_seconds: u32) -> (Interval, usize) {
    let window = u64::from(window_seconds);
    for interval in [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ] {
        let count = (window / interval.seconds()) as usize + 2;
        if count <= MAX_CANDLES {
            return (interval, count);
        }
    }
    (Interval::D1, MAX_CANDLES)
}

/// The price at `t_ms` read from closed candles: within the candle containing it, the
/// straight line from its open to its close.
pub fn price_from_candles(series: &CandleSeries, interval: Interval, t_ms: i64) -> Option<f64> {
    let i = series
        .open_time
        .partition_point(|&open| open <= t_ms)
        .checked_sub(1)?;
    let step = interval.millis();
    let into = t_ms - series.open_time[i];
    if into >= step {
        return None;
    }
    let f = into as f64 / step as f64;
    Some(series.open[i] + (series.close[i] - series.open[i]) * f)
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
            inner: Arc::new(Inner {
                sources,
                clock,
                series_permits: Semaphore::new(settings.series_concurrency.max(1)),
                settings,
                prices: MemoryCache::default(),
                prices_ago: MemoryCache::default(),
                klines,
                shared,
                price_flights: SingleFlight::default(),
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

    fn count_l1(&self, kind: &str, hits: usize, misses: usize) {
        let requests = &self.inner.metrics.cache_requests;
        if hits > 0 {
            requests
                .with_label_values(&[kind, "l1", "hit"])
                .inc_by(hits as u64);
        }
        if misses > 0 {
            requests
                .with_label_values(&[kind, "l1", "miss"])
                .inc_by(misses as u64);
        }
    }

    async fn prices(&self, keys: &BTreeSet<PriceKey>, now: i64) -> HashMap<PriceKey, PriceResult> {
        let mut out = HashMap::with_capacity(keys.len());
        let mut misses: BTreeMap<Source, Vec<PriceKey>> = BTreeMap::new();
        for key in keys {
            match self.inner.prices.get(key, now) {
                Some(quote) => {
                    out.insert(key.clone(), Ok(quote));
                }
                None => misses.entry(key.source).or_default().push(key.clone()),
            }
        }
        self.count_l1("price", out.len(), misses.values().map(Vec::len).sum());
        let lanes = misses.into_iter().map(|(source, keys)| {
            let inner = self.inner.clone();
            self.inner
                .price_flights
                .run(keys, Err(abandoned()), move |keys| async move {
                    inner.lead_prices(source, keys, now).await
                })
        });
        for lane in futures_util::future::join_all(lanes).await {
            out.extend(lane);
        }
        out
    }

    async fn series(
        &self,
        needs: &BTreeMap<SeriesKey, usize>,
        now: i64,
        wait_for_stream: bool,
    ) -> HashMap<SeriesKey, SeriesResult> {
        let inner = &self.inner;
        let mut out = HashMap::with_capacity(needs.len());
        let mut waits = Vec::new();
        let mut misses = Vec::new();
        let grace_ms =
            inner.settings.ws_close_grace.as_millis() as f64 * inner.clock.speed().max(1.0);
        for (key, &count) in needs {
            match inner.klines.lookup(key, now, count) {
                Lookup::Fresh(series) => {
                    out.insert(key.clone(), Ok(series));
                }
                _ if wait_for_stream
                    && inner.klines.is_live(key)
                    && ((now - key.interval.open_time(now)) as f64) < grace_ms =>
                {
                    waits.push((key.clone(), count));
                }
                _ => misses.push((key.clone(), count)),
            }
        }
        // A live stream delivers the close moments after the boundary: wait for it.
        let waited =
            futures_util::future::join_all(waits.into_iter().map(|(key, count)| async move {
                let series = inner
                    .klines
                    .wait_fresh(&key, now, count, inner.settings.ws_close_grace)
                    .await;
                (key, count, series)
            }))
            .await;
        for (key, count, series) in waited {
            match series {
                Some(series) => {
                    out.insert(key, Ok(series));
                }
                None => misses.push((key, count)),
            }
        }
        self.count_l1("klines", out.len(), misses.len());
        if misses.is_empty() {
            return out;
        }
        let counts: HashMap<SeriesKey, usize> = misses.iter().cloned().collect();
        let keys = misses.into_iter().map(|(k, _)| k).collect();
        let lead_inner = self.inner.clone();
        let fetched = inner
            .series_flights
            .run(keys, Err(abandoned()), move |keys| async move {
                let loads = keys.into_iter().map(|key| {
                    let count = counts.get(&key).copied().unwrap_or(1);
                    let inner = lead_inner.clone();
                    async move {
                        let _permit = inner.series_permits.acquire().await;
                        let result = inner.load_series(&key, count, now).await;
                        (key, result)
                    }
                });
                futures_util::future::join_all(loads)
                    .await
                    .into_iter()
                    .collect()
            })
            .await;
        out.extend(fetched);
        out
    }

    async fn prices_ago_direct(
        &self,
        keys: &[(PriceKey, u32)],
        now: i64,
    ) -> HashMap<(PriceKey, u32), Result<f64, UpstreamError>> {
        let inner = &self.inner;
        let mut out = HashMap::new();
        let mut misses = Vec::new();
        for (key, window) in keys {
            // Past prices are read at minute resolution.
            let at = (now - i64::from(*window) * 1000).div_euclid(60_000) * 60_000;
            match inner.prices_ago.get(&(key.clone(), *window, at), now) {
                Some(price) => {
                    out.insert((key.clone(), *window), Ok(price));
                }
                None => misses.push((key.clone(), *window, at)),
            }
        }
        self.count_l1("price_ago", out.len(), misses.len());
        if misses.is_empty() {
            return out;
        }
        let fetch = |keys: Vec<(PriceKey, u32, i64)>| async move {
            let calls = keys.into_iter().map(|(key, window, at)| async move {
                let result = match key.source {
                    Source::Coingecko => inner.sources.coingecko.price_at(&key.symbol, at).await,
                    _ => Err(UpstreamError::Unsupported("past prices of uniswap pools")),
                };
                if result.is_ok() {
                    inner.fetched.fetch_add(1, Ordering::Relaxed);
                }
                (
                    (key, window, at),
                    result.map(|p| (codec::encode_f64(p), 120_000)),
                )
            });
            futures_util::future::join_all(calls).await
        };
        let items = misses
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    cache_key("ago", &[&k.0.source, &k.0.symbol, &k.2]),
                )
            })
            .collect();
        let results: Vec<(PastPriceKey, Result<f64, UpstreamError>)> = inner
            .shared_or_source(
                "price_ago",
                items,
                |_, b| codec::decode_f64(b).is_some(),
                fetch,
                codec::decode_f64,
            )
            .await;
        for ((key, window, at), result) in results {
            if let Ok(price) = &result {
                inner
                    .prices_ago
                    .insert((key.clone(), window, at), *price, now + 60_000, now);
            }
            out.insert((key, window), result);
        }
        out
    }
}

fn decode<T>(origin: Origin, decoder: impl Fn(&[u8]) -> Option<T>) -> Result<T, UpstreamError> {
    let (Origin::Shared(bytes) | Origin::Fetched(bytes)) = origin;
    decoder(&bytes).ok_or_else(|| UpstreamError::malformed("undecodable cache entry"))
}

/// The Redis key of one datum: `monitoring:md:<kind>:<part>:<part>…`.
fn cache_key(kind: &str, parts: &[&dyn std::fmt::Display]) -> String {
    let mut key = format!("monitoring:md:{kind}");
    for part in parts {
        key.push(':');
        key.push_str(&part.to_string());
    }
    key
}

impl Inner {
    /// The shared half of every datum's ladder (L1 → single flight → here): Redis,
    /// when configured, for what another replica stored and `usable` accepts, else the
    /// source through `fetch` (under Redis's lock, so one replica fetches); decoded
    /// with `decoder`.
    async fn shared_or_source<K, T, F, Fut>(
        &self,
        kind: &'static str,
        items: Vec<(K, String)>,
        usable: impl Fn(&K, &[u8]) -> bool,
        fetch: F,
        decoder: fn(&[u8]) -> Option<T>,
    ) -> Vec<(K, Result<T, UpstreamError>)>
    where
        K: Eq + std::hash::Hash + Clone,
        F: Fn(Vec<K>) -> Fut,
        Fut: std::future::Future<Output = Vec<(K, Fetched)>>,
    {
        match &self.shared {
            Some(shared) => shared
                .get_or_fetch(kind, items, usable, fetch, &self.metrics)
                .await
                .into_iter()
                .map(|(k, r)| (k, r.and_then(|o| decode(o, decoder))))
                .collect(),
            None => fetch(items.into_iter().map(|(k, _)| k).collect())
                .await
                .into_iter()
                .map(|(k, r)| (k, r.and_then(|(b, _)| decode(Origin::Fetched(b), decoder))))
                .collect(),
        }
    }

    fn price_ttl_ms(&self) -> i64 {
        self.settings.price_ttl.as_millis() as i64
    }

    /// Leads the fetch of `keys` (all of `source`): L1 again, then L2 / the source.
    async fn lead_prices(
        &self,
        source: Source,
        keys: Vec<PriceKey>,
        now: i64,
    ) -> HashMap<PriceKey, PriceResult> {
        let ttl = self.price_ttl_ms();
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.prices.get(&key, now) {
                Some(quote) => {
                    out.insert(key, Ok(quote));
                }
                None => missing.push(key),
            }
        }
        if missing.is_empty() {
            return out;
        }
        let fetch = |keys: Vec<PriceKey>| async move {
            let symbols: Vec<Arc<str>> = keys.iter().map(|k| k.symbol.clone()).collect();
            let mut answers = self.sources.prices(source, &symbols, now).await;
            self.fetched.fetch_add(symbols.len(), Ordering::Relaxed);
            keys.into_iter()
                .map(|key| {
                    let answer = answers.remove(&key.symbol).unwrap_or_else(|| {
                        Err(UpstreamError::malformed("symbol missing from answer"))
                    });
                    let stored: Fetched = answer.map(|q| (codec::encode_quote(&q), ttl as u64));
                    (key, stored)
                })
                .collect::<Vec<_>>()
        };
        let items = missing
            .iter()
            .map(|k| (k.clone(), cache_key("price", &[&k.source, &k.symbol])))
            .collect();
        let usable = |_: &PriceKey, bytes: &[u8]| {
            codec::decode_quote(bytes).is_some_and(|q| q.at_ms <= now && now - q.at_ms < ttl)
        };
        let results: Vec<(PriceKey, PriceResult)> = self
            .shared_or_source("price", items, usable, fetch, codec::decode_quote)
            .await;
        for (key, result) in results {
            if let Ok(quote) = &result {
                self.prices
                    .insert(key.clone(), *quote, quote.at_ms + ttl, now);
            }
            out.insert(key, result);
        }
        out
    }

    /// One series: L1 again, then L2 / the source (only the new candles when the
    /// cache holds an older copy).
    async fn load_series(&self, key: &SeriesKey, count: usize, now: i64) -> SeriesResult {
        let base = match self.klines.lookup(key, now, count) {
            Lookup::Fresh(series) => return Ok(series),
            Lookup::Stale(series) => Some(series),
            Lookup::Missing => None,
        };
        if key.source != Source::Binance {
            return Err(UpstreamError::Unsupported("candles come from binance only"));
        }
        let fetch = |keys: Vec<SeriesKey>| {
            let base = base.clone();
            async move {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    let result = self.fetch_series(&key, count, base.clone(), now).await;
                    // Kept in Redis a little past the next close.
                    let ttl = (2 * key.interval.millis()).min(86_400_000) as u64 + 60_000;
                    out.push((key, result.map(|s| (codec::encode_series(&s), ttl))));
                }
                out
            }
        };
        let item = (
            key.clone(),
            cache_key("klines", &[&key.source, &key.symbol, &key.interval]),
        );
        let usable = |k: &SeriesKey, bytes: &[u8]| {
            codec::decode_series(bytes).is_some_and(|s| kline_cache::is_fresh(k, &s, now, count))
        };
        let series = self
            .shared_or_source("klines", vec![item], usable, fetch, codec::decode_series)
            .await
            .pop()
            .map_or_else(|| Err(abandoned()), |(_, result)| result)?;
        let series = Arc::new(series);
        self.klines.insert(key.clone(), series.clone());
        Ok(series)
    }

    /// Fetches a series from Binance: the candles closed since `base` when it is long
    /// enough and less than a page behind, else the last `count`.
    async fn fetch_series(
        &self,
        key: &SeriesKey,
        count: usize,
        base: Option<Arc<CandleSeries>>,
        now: i64,
    ) -> Result<CandleSeries, UpstreamError> {
        let step = key.interval.millis();
        let expected_last = key.interval.last_closed_open(now);
        let incremental = base
            .filter(|b| b.len() >= count.min(MAX_CANDLES))
            .and_then(|b| {
                let last = b.last_open_time()?;
                let behind = (expected_last - last) / step;
                (1..MAX_CANDLES as i64)
                    .contains(&behind)
                    .then_some((b, last, behind))
            });
        let binance = &self.sources.binance;
        let mut series = match incremental {
            Some((base, last, behind)) => {
                let rows = binance
                    .klines(
                        &key.symbol,
                        key.interval,
                        Some(last + step),
                        behind as usize + 1,
                    )
                    .await?;
                let mut series = (*base).clone();
                append_rows(&mut series, &rows)?;
                series
            }
            None => {
                let rows = binance
                    .klines(
                        &key.symbol,
                        key.interval,
                        None,
                        (count + 1).min(MAX_CANDLES),
                    )
                    .await?;
                let mut series = CandleSeries::default();
                append_rows(&mut series, &rows)?;
                series
            }
        };
        self.fetched.fetch_add(1, Ordering::Relaxed);
        series.retain_closed(step, now);
        if series.len() > MAX_CANDLES {
            series.drop_front(series.len() - MAX_CANDLES);
        }
        Ok(series)
    }
}

/// Appends klines newer than the series' last candle; they must be in order.
fn append_rows(
    series: &mut CandleSeries,
    rows: &[super::sources::Kline],
) -> Result<(), UpstreamError> {
    for row in rows {
        match series.last_open_time() {
            Some(last) if row.open_time == last => continue,
            Some(last) if row.open_time < last => {
                return Err(UpstreamError::malformed("klines out of order"));
            }
            _ => series.push(
                row.open_time,
                [row.open, row.high, row.low, row.close, row.volume],
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_prices_use_the_finest_interval_that_covers_the_window() {
        assert_eq!(price_ago_series(3_600), (Interval::M1, 62));
        assert_eq!(price_ago_series(86_400), (Interval::M5, 290));
        assert_eq!(price_ago_series(7 * 86_400), (Interval::M15, 674));
    }

    #[test]
    fn a_past_price_interpolates_within_its_candle() {
        let mut series = CandleSeries::default();
        series.push(0, [100.0, 120.0, 90.0, 110.0, 1.0]);
        series.push(60_000, [110.0, 130.0, 100.0, 130.0, 1.0]);
        assert_eq!(
            price_from_candles(&series, Interval::M1, 30_000),
            Some(105.0)
        );
        assert_eq!(
            price_from_candles(&series, Interval::M1, 60_000),
            Some(110.0)
        );
        assert_eq!(price_from_candles(&series, Interval::M1, 120_000), None);
        assert_eq!(price_from_candles(&series, Interval::M1, -1), None);
    }
}
