//! The market as of one moment of a walk: the candles closed by then, each indicator on
//! the window a batch at that moment would have had, each price the last closed
//! minute's close — one batch context updated in place, moment after moment. Moments
//! come in order, so each series is followed by a cursor, never searched.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::tape::{Tape, minute_series};
use crate::batches::Moment;
use crate::conditions::Condition;
use crate::indicators::{IndicatorSpec, IndicatorValues};
use crate::logic_tree::{BatchContext, IndicatorKey};
use crate::market::prefetcher::price_from_candles;
use crate::market::{CandleSeries, Interval, PriceKey, Quote, SeriesKey, Source};
use crate::strategy::CompiledStrategy;

/// Below this many windows, one thread computes them all.
const PARALLEL_FROM: usize = 4_096;

/// A series of the tape followed through the moments.
struct Followed<'t> {
    key: SeriesKey,
    series: &'t CandleSeries,
    /// How many of its candles closed by the current moment.
    end: usize,
    /// `end` at the last moment the snapshot's tail was written.
    written: usize,
}

impl Followed<'_> {
    /// Moves `end` to the candles closed by `due_ms`.
    fn advance(&mut self, due_ms: i64) {
        let step = self.key.interval.millis();
        while self.end < self.series.len() && self.series.open_time[self.end] + step <= due_ms {
            self.end += 1;
        }
    }
}

/// One indicator's values at every moment, computed before the walk: each on the window
/// a batch at that moment would have had ([`IndicatorSpec::compute_window`]). No value
/// depends on another moment's, so the windows are shared out among the cores.
struct Precomputed {
    key: IndicatorKey,
    /// Its series in [`MarketAt::series`].
    series: usize,
    /// The distinct candle counts closed at the moments, in order, and the values on
    /// each.
    ends: Vec<usize>,
    values: Vec<IndicatorValues>,
    /// Where the current moment is in `ends` (`None` before the first).
    cursor: Option<usize>,
}

impl Precomputed {
    /// The values at a moment `end` candles had closed by, when they changed.
    fn at(&mut self, end: usize) -> Option<IndicatorValues> {
        let mut cursor = self.cursor.unwrap_or(0);
        while cursor + 1 < self.ends.len() && self.ends[cursor] < end {
            cursor += 1;
        }
        if Some(cursor) == self.cursor || self.ends.get(cursor) != Some(&end) {
            return None;
        }
        self.cursor = Some(cursor);
        Some(self.values[cursor])
    }
}

/// The market as of the current moment.
pub struct MarketAt<'t> {
    /// What the evaluation reads.
    pub ctx: BatchContext,
    series: Vec<Followed<'t>>,
    indicators: Vec<Precomputed>,
    /// Each price and its 1m series in `series`.
    prices: Vec<(PriceKey, usize)>,
    /// Each percent-change window and its price's 1m series.
    windows: Vec<(PriceKey, u32, usize)>,
}

impl<'t> MarketAt<'t> {
    /// The market for walking `strategy` through `moments` (in order) over `tape`;
    /// every indicator computed for every moment here.
    pub fn new(strategy: &CompiledStrategy, tape: &'t Tape, moments: &[Moment]) -> Self {
        let mut market = Self {
            ctx: BatchContext::default(),
            series: Vec::new(),
            indicators: Vec::new(),
            prices: Vec::new(),
            windows: Vec::new(),
        };
        for key in strategy.indicator_keys() {
            let Some(series) = market.follow(tape, &key.series) else {
                continue;
            };
            if !market.indicators.iter().any(|p| p.key == *key) {
                let ends = ends_at(&market.series[series], moments);
                let values = compute_all(key.spec, market.series[series].series, &ends);
                market.indicators.push(Precomputed {
                    key: key.clone(),
                    series,
                    ends,
                    values,
                    cursor: None,
                });
            }
        }
        for condition in strategy.conditions.iter() {
            let Condition::PriceAlert(alert) = condition else {
                continue;
            };
            let Some(series) = market.follow(tape, &minute_series(&alert.key)) else {
                continue;
            };
            if !market.prices.iter().any(|(k, _)| *k == alert.key) {
                market.prices.push((alert.key.clone(), series));
            }
            if let Some(window) = alert.window_seconds() {
                market.windows.push((alert.key.clone(), window, series));
            }
        }
        market
    }

    /// The index of `key` among the followed series (followed from now on), if the
    /// tape has it.
    fn follow(&mut self, tape: &'t Tape, key: &SeriesKey) -> Option<usize> {
        if let Some(i) = self.series.iter().position(|f| f.key == *key) {
            return Some(i);
        }
        let series = tape.series(key)?;
        self.series.push(Followed {
            key: key.clone(),
            series,
            end: 0,
            written: usize::MAX,
        });
        Some(self.series.len() - 1)
    }

    /// Moves the market to `due`: each series' closed candles (the last two in the
    /// snapshot, what conditions read besides their indicators), each indicator's
    /// values, each price.
    pub fn advance(&mut self, due: DateTime<Utc>) {
        let due_ms = due.timestamp_millis();
        for followed in &mut self.series {
            followed.advance(due_ms);
        }
        for indicator in &mut self.indicators {
            if let Some(values) = indicator.at(self.series[indicator.series].end) {
                self.ctx.set_indicator(&indicator.key, values);
            }
        }
        let snapshot = self.ctx.snapshot_mut();
        snapshot.taken_at_ms = due_ms;
        for followed in &mut self.series {
            if followed.end == followed.written {
                continue;
            }
            followed.written = followed.end;
            let (series, end) = (followed.series, followed.end);
            let tail = Arc::make_mut(snapshot.candles.entry(followed.key.clone()).or_default());
            tail.clear();
            for i in end.saturating_sub(2)..end {
                let ohlcv = [
                    series.open[i],
                    series.high[i],
                    series.low[i],
                    series.close[i],
                    series.volume[i],
                ];
                tail.push(series.open_time[i], ohlcv);
            }
        }
        for (key, series) in &self.prices {
            match minute_close(&self.series[*series], due_ms) {
                Some(price) => {
                    let quote = Quote {
                        price,
                        answered_by: Source::Binance,
                        at_ms: due_ms,
                    };
                    snapshot.prices.insert(key.clone(), quote);
                }
                None => {
                    snapshot.prices.remove(key);
                }
            }
        }
        for (key, window, series) in &self.windows {
            // Past prices are read at minute resolution, as live reads them.
            let minute = (due_ms - i64::from(*window) * 1000).div_euclid(60_000) * 60_000;
            match price_from_candles(self.series[*series].series, Interval::M1, minute) {
                Some(price) => snapshot.prices_ago.insert((key.clone(), *window), price),
                None => snapshot.prices_ago.remove(&(key.clone(), *window)),
            };
        }
    }
}

/// The candle counts of `followed`'s series closed at each of `moments`, deduplicated.
fn ends_at(followed: &Followed<'_>, moments: &[Moment]) -> Vec<usize> {
    let mut cursor = Followed {
        key: followed.key.clone(),
        series: followed.series,
        end: 0,
        written: 0,
    };
    let mut ends: Vec<usize> = moments
        .iter()
        .map(|moment| {
            cursor.advance(moment.due.timestamp_millis());
            cursor.end
        })
        .collect();
    ends.dedup();
    ends
}

/// The close of the minute that ended at the last minute boundary at or before
/// `due_ms` (the price model `last_1m_close`); none when the source lacks that minute.
fn minute_close(minutes: &Followed<'_>, due_ms: i64) -> Option<f64> {
    let last = minutes.end.checked_sub(1)?;
    let expected = Interval::M1.open_time(due_ms) - Interval::M1.millis();
    (minutes.series.open_time[last] == expected).then(|| minutes.series.close[last])
}

/// `spec` on the window ending at each of `ends`, on every core when there are many.
fn compute_all(spec: IndicatorSpec, series: &CandleSeries, ends: &[usize]) -> Vec<IndicatorValues> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads == 1 || ends.len() < PARALLEL_FROM {
        return ends
            .iter()
            .map(|&end| spec.compute_window(series, end))
            .collect();
    }
    let chunk = ends.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = ends
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&end| spec.compute_window(series, end))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
