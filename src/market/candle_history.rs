//! Candle history: the closed candles of a Binance series over a span, read from the
//! `candles` table, what is missing fetched from `GET /api/v3/klines` (paged by
//! `startTime`, 1,000 a request, inside the weight budget) and stored — so the same
//! span is asked for once. A stretch the source does not have is reported as a gap,
//! never invented or interpolated. Two callers filling one series take turns: the
//! second finds what the first stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Interval;
use super::sources::binance_rest::MAX_KLINES;
use super::sources::{Sources, UpstreamError};
use crate::storage::candles::{self, SeriesName, StoredCandle};

/// A stretch of a series the source had no candle for: open times in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The closed candles of a span, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Oldest first, closed only.
    pub candles: Vec<StoredCandle>,
    /// How many were already stored.
    pub from_store: usize,
    /// How many were fetched from the source (and stored) for this call.
    pub fetched: usize,
    pub gaps: Vec<Gap>,
}

/// Why a span could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The source failed mid-fetch: nothing partial is answered.
    #[error("{series}: {cause}")]
    Unavailable {
        series: String,
        cause: UpstreamError,
    },
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Open times `[from, to)` in Unix milliseconds.
type Stretch = (i64, i64);

/// Reads and fills Binance candle history.
#[derive(Debug, Clone)]
pub struct CandleHistory {
    db: PgPool,
    sources: Arc<Sources>,
    /// One fill per series at a time.
    turns: Arc<Mutex<HashMap<SeriesName, Arc<tokio::sync::Mutex<()>>>>>,
    /// Stretches the source was asked for and lacks, by series, in Unix ms.
    known_gaps: Arc<Mutex<HashMap<SeriesName, Vec<Stretch>>>>,
}

impl CandleHistory {
    pub fn new(db: PgPool, sources: Arc<Sources>) -> Self {
        Self {
            db,
            sources,
            turns: Arc::default(),
            known_gaps: Arc::default(),
        }
    }

    /// The closed candles of `symbol` at `interval` opened in `[from, to)` and closed
    /// by `now`, stored ones read, missing ones fetched and stored.
    pub async fn span(
        &self,
        symbol: &str,
        interval: Interval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<History, HistoryError> {
        let series = SeriesName {
            source: "binance".into(),
            symbol: symbol.to_owned(),
            interval: interval.as_str().to_owned(),
        };
        let expected = expected_opens(interval, from, to, now);
        let (Some(&first), Some(&last)) = (expected.first(), expected.last()) else {
            return Ok(History {
                candles: Vec::new(),
                from_store: 0,
                fetched: 0,
                gaps: Vec::new(),
            });
        };
        let end = at(last + interval.millis());
        let turn = self.turn(&series);
        let _turn = turn.lock().await;
        let stored = candles::span(&self.db, &series, at(first), end).await?;
        let mut from_store = stored.len();
        let mut fetched = 0;
        let mut candles = stored;
        if self
            .missing(&series, &expected, &candles, interval)
            .next()
            .is_some()
        {
            // Another replica may be filling the same series: take turns with it, then
            // look again at what is missing.
            let mut turn_across_replicas = self.db.begin().await?;
            candles::lock_series(&mut turn_across_replicas, &series).await?;
            candles = candles::span(&self.db, &series, at(first), end).await?;
            from_store = candles.len();
            let missing: Vec<(i64, i64)> = self
                .missing(&series, &expected, &candles, interval)
                .collect();
            for (missing_from, missing_to) in missing {
                fetched += self
                    .fetch(&series, interval, missing_from, missing_to, now)
                    .await?;
            }
            if fetched > 0 {
                candles = candles::span(&self.db, &series, at(first), end).await?;
            }
            turn_across_replicas.commit().await?;
        }
        let gaps: Vec<Gap> = missing_runs(&expected, &candles, interval)
            .map(|(from, to)| Gap {
                from: at(from),
                to: at(to),
            })
            .collect();
        self.remember_gaps(&series, &gaps, &candles);
        Ok(History {
            from_store,
            fetched,
            candles,
            gaps,
        })
    }

    /// The runs of `expected` that `have` lacks and the source is not known to lack.
    fn missing<'a>(
        &self,
        series: &SeriesName,
        expected: &'a [i64],
        have: &'a [StoredCandle],
        interval: Interval,
    ) -> impl Iterator<Item = (i64, i64)> + 'a {
        let known = self
            .known_gaps
            .lock()
            .expect("gaps lock")
            .get(series)
            .cloned()
            .unwrap_or_default();
        missing_runs(expected, have, interval)
            .filter(move |(from, to)| !known.iter().any(|(f, t)| f <= from && to <= t))
    }

    /// Remembers the gaps the source has later candles after: a stretch it skipped (an
    /// outage), not one it has yet to close. Asked once, not at every backtest.
    fn remember_gaps(&self, series: &SeriesName, gaps: &[Gap], candles: &[StoredCandle]) {
        let Some(newest) = candles.last().map(|c| c.open_time) else {
            return;
        };
        let settled: Vec<(i64, i64)> = gaps
            .iter()
            .filter(|gap| gap.to <= newest)
            .map(|gap| (gap.from.timestamp_millis(), gap.to.timestamp_millis()))
            .collect();
        if settled.is_empty() {
            return;
        }
        let mut known = self.known_gaps.lock().expect("gaps lock");
        let entry = known.entry(series.clone()).or_default();
        for gap in settled {
            if !entry.contains(&gap) {
                entry.push(gap);
            }
        }
    }

    fn turn(&self, series: &SeriesName) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().expect("turns lock");
        turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        turns.entry(series.clone()).or_default().clone()
    }

    /// Fetches the closed candles opened in `[from_ms, to_ms)` page by page and stores
    /// them; answers how many were stored.
    async fn fetch(
        &self,
        series: &SeriesName,
        interval: Interval,
        from_ms: i64,
        to_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<usize, HistoryError> {
        let step = interval.millis();
        let mut start = from_ms;
        let mut stored = 0;
        while start < to_ms {
            let page = self.page(series, interval, start).await?;
            let Some(newest) = page.last().map(|k| k.open_time) else {
                break;
            };
            let closed: Vec<StoredCandle> = page
                .iter()
                .filter(|k| k.open_time >= start && k.open_time < to_ms)
                .filter(|k| k.open_time + step <= now.timestamp_millis())
                .map(|k| StoredCandle {
                    open_time: at(k.open_time),
                    open: k.open,
                    high: k.high,
                    low: k.low,
                    close: k.close,
                    volume: k.volume,
                })
                .collect();
            stored += candles::insert(&self.db, series, &closed).await? as usize;
            if newest < start || page.len() < MAX_KLINES {
                break;
            }
            start = newest + step;
        }
        Ok(stored)
    }

    /// One page of klines from `start`. Over the weight budget, it waits for the next
    /// minute's budget (twice at most) rather than fail a long fill halfway.
    async fn page(
        &self,
        series: &SeriesName,
        interval: Interval,
        start: i64,
    ) -> Result<Vec<super::sources::Kline>, HistoryError> {
        let mut waits = 0;
        loop {
            let answer = self
                .sources
                .binance
                .klines(&series.symbol, interval, Some(start), MAX_KLINES)
                .await;
            match answer {
                Err(UpstreamError::WeightBudget) if waits < BUDGET_WAITS => {
                    waits += 1;
                    let into_minute = crate::market::clock::system_now_ms().rem_euclid(60_000);
                    let wait = u64::try_from(60_000 - into_minute).unwrap_or(60_000);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                other => {
                    return other.map_err(|cause| HistoryError::Unavailable {
                        series: format!("binance {} {}", series.symbol, series.interval),
                        cause,
                    });
                }
            }
        }
    }
}

/// How many minutes a fill waits for the weight budget before giving up.
const BUDGET_WAITS: u32 = 2;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The open times of the candles opened in `[from, to)` that closed by `now`.
fn expected_opens(
    interval: Interval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<i64> {
    let step = interval.millis();
    let (from, to, now) = (
        from.timestamp_millis(),
        to.timestamp_millis(),
        now.timestamp_millis(),
    );
    let mut open = interval.open_time(from);
    if open < from {
        open += step;
    }
    let mut opens = Vec::new();
    while open < to && open + step <= now {
        opens.push(open);
        open += step;
    }
    opens
}

/// The runs of `expected` open times `have` lacks, as `[from, to)` in milliseconds.
fn missing_runs<'a>(
    expected: &'a [i64],
    have: &'a [StoredCandle],
    interval: Interval,
) -> impl Iterator<Item = (i64, i64)> + 'a {
    let step = interval.millis();
    let have: std::collections::HashSet<i64> = have
        .iter()
        .map(|c| c.open_time.timestamp_millis())
        .collect();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &open in expected.iter().filter(|open| !have.contains(open)) {
        match runs.last_mut() {
            Some((_, to)) if *to == open => *to = open + step,
            _ => runs.push((open, open + step)),
        }
    }
    runs.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn candle(open: &str) -> StoredCandle {
        StoredCandle {
            open_time: t(open),
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
        }
    }

    #[test]
    fn a_span_holds_the_candles_closed_by_now_from_the_first_boundary_on() {
        let opens = expected_opens(
            Interval::H1,
            t("2026-12-07T10:30:00Z"),
            t("2026-12-07T15:00:00Z"),
            t("2026-12-07T14:10:00Z"),
        );
        let hours: Vec<DateTime<Utc>> = opens.into_iter().map(at).collect();
        assert_eq!(
            hours,
            [
                t("2026-12-07T11:00:00Z"),
                t("2026-12-07T12:00:00Z"),
                t("2026-12-07T13:00:00Z")
            ],
            "the 14:00 candle has not closed; 10:00 opened before the span"
        );
    }

    #[test]
    fn missing_stretches_are_runs_of_absent_open_times() {
        let expected = expected_opens(
            Interval::H1,
            t("2026-12-07T00:00:00Z"),
            t("2026-12-07T06:00:00Z"),
            t("2026-12-08T00:00:00Z"),
        );
        let have = [
            candle("2026-12-07T01:00:00Z"),
            candle("2026-12-07T04:00:00Z"),
        ];
        let runs: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            missing_runs(&expected, &have, Interval::H1)
                .map(|(from, to)| (at(from), at(to)))
                .collect();
        assert_eq!(
            runs,
            [
                (t("2026-12-07T00:00:00Z"), t("2026-12-07T01:00:00Z")),
                (t("2026-12-07T02:00:00Z"), t("2026-12-07T04:00:00Z")),
                (t("2026-12-07T05:00:00Z"), t("2026-12-07T06:00:00Z")),
            ]
        );
        assert_eq!(missing_runs(&expected, &[], Interval::H1).count(), 1);
    }
}
