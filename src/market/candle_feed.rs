//! Candle-closed events: every close of every (symbol, interval) that loaded strategies
//! use, published once and in order, for the scheduler's `candle_close` evaluations.
//!
//! With WebSockets the closes stream in ([`super::websocket_feed`]); without, they are
//! polled over REST right after each boundary ([`run_rest_polling`]). Either way a
//! [`ClosePublisher`] remembers the last close published per series and, after any
//! gap, publishes the missed closes from the (backfilled) candle cache first, so no
//! close is skipped and none is published twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::prefetcher::Prefetcher;
use super::{CandleSeries, SeriesKey};
use crate::metrics::MarketMetrics;

/// How a close was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedVia {
    Websocket,
    /// Fetched over REST after a gap in the stream.
    Backfill,
    /// REST polling (WebSockets disabled).
    Poll,
}

impl ClosedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedVia::Websocket => "websocket",
            ClosedVia::Backfill => "backfill",
            ClosedVia::Poll => "poll",
        }
    }
}

/// A candle closed.
#[derive(Debug, Clone, PartialEq)]
pub struct CandleClosed {
    pub series: SeriesKey,
    pub open_time_ms: i64,
    pub close: f64,
    pub via: ClosedVia,
}

/// Publishes closes in order, each once, remembering the last per series.
#[derive(Debug)]
pub struct ClosePublisher {
    events: broadcast::Sender<CandleClosed>,
    last: HashMap<SeriesKey, i64>,
    metrics: Arc<MarketMetrics>,
}

impl ClosePublisher {
    pub fn new(events: broadcast::Sender<CandleClosed>, metrics: Arc<MarketMetrics>) -> Self {
        Self {
            events,
            last: HashMap::new(),
            metrics,
        }
    }

    /// Starts following `key` from the last close before `now_ms` (nothing missed yet).
    pub fn follow(&mut self, key: &SeriesKey, now_ms: i64) {
        self.last
            .entry(key.clone())
            .or_insert_with(|| key.interval.last_closed_open(now_ms));
    }

    pub fn forget(&mut self, key: &SeriesKey) {
        self.last.remove(key);
    }

    pub fn last(&self, key: &SeriesKey) -> Option<i64> {
        self.last.get(key).copied()
    }

    /// Whether `open_time` is the very next close of `key`.
    pub fn is_next(&self, key: &SeriesKey, open_time: i64) -> bool {
        self.last(key)
            .is_some_and(|last| last + key.interval.millis() == open_time)
    }

    /// Publishes one close if it is newer than the last published.
    pub fn publish(&mut self, key: &SeriesKey, open_time: i64, close: f64, via: ClosedVia) -> bool {
        if self.last(key).is_some_and(|last| open_time <= last) {
            return false;
        }
        self.last.insert(key.clone(), open_time);
        self.metrics
            .candle_closes
            .with_label_values(&[via.as_str()])
            .inc();
        tracing::debug!(
            symbol = %key.symbol,
            interval = %key.interval,
            open_time_ms = open_time,
            close,
            via = via.as_str(),
            "candle closed"
        );
        // No subscriber yet is not an error: the scheduler subscribes when it starts.
        let _ = self.events.send(CandleClosed {
            series: key.clone(),
            open_time_ms: open_time,
            close,
            via,
        });
        true
    }

    /// Publishes every close in `series` newer than the last published, oldest first.
    pub fn publish_from(
        &mut self,
        key: &SeriesKey,
        series: &CandleSeries,
        via: ClosedVia,
    ) -> usize {
        let after = self.last(key).unwrap_or(i64::MIN);
        let start = series.open_time.partition_point(|&t| t <= after);
        let mut published = 0;
        for i in start..series.len() {
            if self.publish(key, series.open_time[i], series.close[i], via) {
                published += 1;
            }
        }
        published
    }
}

/// Backfills `keys` over REST (through the prefetcher's caches, all at once) and
/// publishes, per series and in order, the closes newer than the last published.
pub async fn backfill(
    prefetcher: &Prefetcher,
    publisher: &mut ClosePublisher,
    keys: &[SeriesKey],
    via: ClosedVia,
) {
    if keys.is_empty() {
        return;
    }
    // Enough candles to reach back to the last close published.
    let now = prefetcher.clock().now_ms();
    let wanted = keys
        .iter()
        .map(|key| {
            let count = publisher.last(key).map_or(2, |last| {
                ((key.interval.last_closed_open(now) - last) / key.interval.millis()).max(0)
                    as usize
                    + 2
            });
            (key.clone(), count)
        })
        .collect();
    let mut results = prefetcher.refresh_many(&wanted).await;
    for key in keys {
        match results.remove(key) {
            Some(Ok(series)) => {
                publisher.publish_from(key, &series, via);
            }
            Some(Err(error)) => tracing::warn!(
                symbol = %key.symbol,
                interval = %key.interval,
                %error,
                "candle backfill failed; will retry at the next close"
            ),
            None => {}
        }
    }
}

/// Without WebSockets: right after each boundary of the intervals in use, fetch the
/// new candles (once per series, shared with the batches through the caches) and
/// publish their closes.
pub async fn run_rest_polling(
    prefetcher: Prefetcher,
    mut desired: watch::Receiver<BTreeSet<SeriesKey>>,
    mut publisher: ClosePublisher,
    poll_delay: Duration,
    shutdown: CancellationToken,
) {
    let clock = prefetcher.clock().clone();
    loop {
        let keys = desired.borrow_and_update().clone();
        let now = clock.now_ms();
        for key in &keys {
            publisher.follow(key, now);
        }
        // Sleep until the earliest next boundary, in market time.
        let next = keys
            .iter()
            .map(|k| k.interval.open_time(now) + k.interval.millis())
            .min();
        let wait = match next {
            Some(boundary) if clock.speed() > 0.0 => {
                Duration::from_millis(((boundary - now) as f64 / clock.speed()) as u64) + poll_delay
            }
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = desired.changed() => continue,
            () = tokio::time::sleep(wait) => {}
        }
        let now = clock.now_ms();
        let due: Vec<SeriesKey> = keys
            .iter()
            .filter(|k| {
                publisher
                    .last(k)
                    .is_some_and(|last| last < k.interval.last_closed_open(now))
            })
            .cloned()
            .collect();
        backfill(&prefetcher, &mut publisher, &due, ClosedVia::Poll).await;
    }
}
