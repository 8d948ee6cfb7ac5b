//! The L1 cache of closed candles per (source, symbol, interval). A series stays valid
//! until its interval's next close; then only the new candles are fetched and
//! appended. The WebSocket feed appends closes as they happen and wakes prefetches
//! waiting for them, so a live stream needs no REST call at all.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{CandleSeries, SeriesKey};

/// Most candles kept per series (Binance's largest page).
pub const MAX_CANDLES: usize = 1000;

/// What the cache holds for a series at a given time.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Up to date (its last candle is the last closed one) and long enough.
    Fresh(Arc<CandleSeries>),
    /// Behind or too short: a base for an incremental fetch.
    Stale(Arc<CandleSeries>),
    Missing,
}

/// What appending a streamed close did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    Appended,
    /// Already had it.
    Duplicate,
    /// The cache is behind by more than one candle (or empty): a REST fetch fills it.
    Gap,
}

/// Whether `series` is current at `now_ms` and holds `count` candles.
pub fn is_fresh(key: &SeriesKey, series: &CandleSeries, now_ms: i64, count: usize) -> bool {
    series.len() >= count.min(MAX_CANDLES)
        && series.last_open_time() == Some(key.interval.last_closed_open(now_ms))
}

/// The shared closed-candle cache.
#[derive(Debug, Default)]
pub struct KlineCache {
    series: Mutex<HashMap<SeriesKey, Arc<CandleSeries>>>,
    /// Series a live WebSocket stream keeps current.
    live: Mutex<HashSet<SeriesKey>>,
    closed: Notify,
}

impl KlineCache {
    pub fn lookup(&self, key: &SeriesKey, now_ms: i64, count: usize) -> Lookup {
        let series = self.series.lock().expect("kline cache lock");
        match series.get(key) {
            Some(s) if is_fresh(key, s, now_ms, count) => Lookup::Fresh(s.clone()),
            Some(s) => Lookup::Stale(s.clone()),
            None => Lookup::Missing,
        }
    }

    pub fn get(&self, key: &SeriesKey) -> Option<Arc<CandleSeries>> {
        self.series
            .lock()
            .expect("kline cache lock")
            .get(key)
            .cloned()
    }

    /// Stores `series` unless the cache already holds a newer one.
    pub fn insert(&self, key: SeriesKey, series: Arc<CandleSeries>) {
        let mut map = self.series.lock().expect("kline cache lock");
        let newer = map.get(&key).is_some_and(|current| {
            current.last_open_time() > series.last_open_time()
                || (current.last_open_time() == series.last_open_time()
                    && current.len() > series.len())
        });
        if !newer {
            map.insert(key, series);
        }
        drop(map);
        self.closed.notify_waiters();
    }

    /// Appends a closed candle from the stream when it directly follows the cached
    /// series.
    pub fn append_closed(&self, key: &SeriesKey, open_time: i64, ohlcv: [f64; 5]) -> Append {
        let mut map = self.series.lock().expect("kline cache lock");
        let Some(current) = map.get_mut(key) else {
            return Append::Gap;
        };
        match current.last_open_time() {
            Some(last) if last >= open_time => return Append::Duplicate,
            Some(last) if last + key.interval.millis() == open_time => {}
            _ => return Append::Gap,
        }
        let series = Arc::make_mut(current);
        series.push(open_time, ohlcv);
        if series.len() > MAX_CANDLES {
            series.drop_front(series.len() - MAX_CANDLES);
        }
        drop(map);
        self.closed.notify_waiters();
        Append::Appended
    }

    /// Marks which series a connected stream keeps current.
    pub fn set_live(&self, keys: impl IntoIterator<Item = SeriesKey>, live: bool) {
        let mut set = self.live.lock().expect("live lock");
        for key in keys {
            if live {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
    }

    pub fn is_live(&self, key: &SeriesKey) -> bool {
        self.live.lock().expect("live lock").contains(key)
    }

    /// Waits up to `timeout` for the series to become fresh at `now_ms`.
    pub async fn wait_fresh(
        &self,
        key: &SeriesKey,
        now_ms: i64,
        count: usize,
        timeout: Duration,
    ) -> Option<Arc<CandleSeries>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.closed.notified();
            if let Lookup::Fresh(series) = self.lookup(key, now_ms, count) {
                return Some(series);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}
