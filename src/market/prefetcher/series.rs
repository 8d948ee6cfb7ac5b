//! Candle series on the ladder: once per (symbol, interval), and after the first fetch
//! only the candles closed since; a series lives until its interval's next close. Right
//! after a close, a series the WebSocket feed follows waits briefly for the stream's
//! closed candle instead of fetching it. Binance's past prices are read from these
//! candles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::codec;
use super::super::kline_cache::{self, Lookup, MAX_CANDLES};
use super::super::sources::UpstreamError;
use super::super::{CandleSeries, Interval, SeriesKey, Source};
use super::ladder::cache_key;
use super::{PrefetchCore, Prefetcher, SeriesResult, abandoned};

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
    /// The series `needs` names (key → candles wanted), waiting for live streams'
    /// closes when `wait_for_stream`.
    pub(super) async fn series(
        &self,
        needs: &BTreeMap<SeriesKey, usize>,
        now: i64,
        wait_for_stream: bool,
    ) -> HashMap<SeriesKey, SeriesResult> {
        let inner = &self.inner;
        let mut ready = HashMap::with_capacity(needs.len());
        let mut waits = Vec::new();
        let grace_ms =
            inner.settings.ws_close_grace.as_millis() as f64 * inner.clock.speed().max(1.0);
        for (key, &count) in needs {
            match inner.klines.lookup(key, now, count) {
                Lookup::Fresh(series) => {
                    ready.insert(key.clone(), series);
                }
                _ if wait_for_stream
                    && inner.klines.is_live(key)
                    && ((now - key.interval.open_time(now)) as f64) < grace_ms =>
                {
                    waits.push((key.clone(), count));
                }
                _ => {}
            }
        }
        // A live stream delivers the close moments after the boundary: wait for it.
        let waited =
            futures_util::future::join_all(waits.into_iter().map(|(key, count)| async move {
                let series = inner
                    .klines
                    .wait_fresh(&key, now, count, inner.settings.ws_close_grace)
                    .await;
                (key, series)
            }))
            .await;
        ready.extend(
            waited
                .into_iter()
                .filter_map(|(key, series)| Some((key, series?))),
        );
        let counts: HashMap<SeriesKey, usize> =
            needs.iter().map(|(k, c)| (k.clone(), *c)).collect();
        let leader = inner.clone();
        inner
            .l1_or_flight(
                "klines",
                needs.keys().cloned(),
                |key| ready.get(key).cloned(),
                &inner.series_flights,
                move |keys| async move {
                    let loads = keys.into_iter().map(|key| {
                        let count = counts.get(&key).copied().unwrap_or(1);
                        let inner = leader.clone();
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
                },
            )
            .await
    }
}

impl PrefetchCore {
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
    rows: &[super::super::sources::Kline],
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
