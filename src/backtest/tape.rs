//! The tape: every candle series a backtest reads, loaded once for the whole span
//! (with each indicator's warm-up before it) from the candle store, what is missing
//! fetched from Binance; and where each series came from, and its gaps.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::conditions::Condition;
use crate::market::candle_history::{CandleHistory, HistoryError};
use crate::market::{CandleSeries, Interval, PriceKey, SeriesKey, Source};
use crate::strategy::CompiledStrategy;

/// One series as a backtest used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SeriesUsed {
    pub source: String,
    pub symbol: String,
    pub interval: String,
    /// Candles read (the span and its warm-up).
    pub candles: usize,
    /// Of those, how many were already stored.
    pub from_store: usize,
    /// Of those, how many were fetched from the source for this backtest.
    pub fetched: usize,
}

/// A stretch of a series the source has no candle for: open times in `[from, to)`.
/// Nothing is invented for it; conditions reading it are unknown there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SeriesGap {
    pub source: String,
    pub symbol: String,
    pub interval: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The candles of a backtest, by series, oldest first, closed only.
#[derive(Debug, Clone, Default)]
pub struct Tape {
    series: HashMap<SeriesKey, CandleSeries>,
    pub used: Vec<SeriesUsed>,
    pub gaps: Vec<SeriesGap>,
}

/// A condition a backtest cannot replay: its source keeps no candle history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// `conditions[1]`.
    pub path: String,
    pub message: String,
}

impl Tape {
    /// A tape of the given series (benchmarks and tests that bring their own candles).
    pub fn of(series: HashMap<SeriesKey, CandleSeries>) -> Self {
        Self {
            series,
            ..Self::default()
        }
    }

    pub fn series(&self, key: &SeriesKey) -> Option<&CandleSeries> {
        self.series.get(key)
    }

    /// Loads what `strategies` read over `[from, to)` as of `now`, each series once.
    pub async fn load(
        history: &CandleHistory,
        strategies: &[&CompiledStrategy],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, HistoryError> {
        let mut starts: HashMap<SeriesKey, DateTime<Utc>> = HashMap::new();
        for strategy in strategies {
            for (key, start) in series_needed(strategy, from) {
                let entry = starts.entry(key).or_insert(start);
                *entry = (*entry).min(start);
            }
        }
        let mut wanted: Vec<(SeriesKey, DateTime<Utc>)> = starts.into_iter().collect();
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tape = Tape::default();
        for (key, start) in wanted {
            let history = history
                .span(&key.symbol, key.interval, start, to, now)
                .await?;
            let (source, symbol, interval) = (
                key.source.to_string(),
                key.symbol.to_string(),
                key.interval.as_str().to_owned(),
            );
            tape.gaps.extend(history.gaps.iter().map(|gap| SeriesGap {
                source: source.clone(),
                symbol: symbol.clone(),
                interval: interval.clone(),
                from: gap.from,
                to: gap.to,
            }));
            tape.used.push(SeriesUsed {
                source,
                symbol,
                interval,
                candles: history.candles.len(),
                from_store: history.from_store,
                fetched: history.fetched,
            });
            let mut series = CandleSeries::default();
            for c in &history.candles {
                let ohlcv = [c.open, c.high, c.low, c.close, c.volume];
                series.push(c.open_time.timestamp_millis(), ohlcv);
            }
            tape.series.insert(key, series);
        }
        Ok(tape)
    }
}

/// The 1m series a price is read from.
pub fn minute_series(key: &PriceKey) -> SeriesKey {
    SeriesKey {
        source: key.source,
        symbol: key.symbol.clone(),
        interval: Interval::M1,
    }
}

/// Refuses a strategy with a condition whose source has no candle history.
pub fn check_sources(strategy: &CompiledStrategy) -> Result<(), Unsupported> {
    for (i, (condition, id)) in strategy
        .conditions
        .iter()
        .zip(strategy.condition_ids.iter())
        .enumerate()
    {
        let source = condition.source();
        if source != Source::Binance {
            return Err(Unsupported {
                path: format!("conditions[{i}]"),
                message: format!(
                    "condition {id} reads {source}, which keeps no candle history; a backtest replays Binance candles only"
                ),
            });
        }
    }
    Ok(())
}

/// Each series `strategy` reads over a span starting at `from`, and where its candles
/// must start for the first moment to see a full window (each indicator's
/// `candles_needed`, a price's minute and its percent-change window).
fn series_needed(
    strategy: &CompiledStrategy,
    from: DateTime<Utc>,
) -> Vec<(SeriesKey, DateTime<Utc>)> {
    let from_ms = from.timestamp_millis();
    let mut needed = Vec::new();
    let mut add = |key: SeriesKey, start_ms: i64| {
        needed.push((
            key,
            DateTime::from_timestamp_millis(start_ms).unwrap_or(from),
        ));
    };
    for key in strategy.indicator_keys() {
        let step = key.series.interval.millis();
        let warm_up = i64::try_from(key.spec.candles_needed()).unwrap_or(1000) + 1;
        add(
            key.series.clone(),
            key.series.interval.open_time(from_ms) - warm_up * step,
        );
    }
    for condition in strategy.conditions.iter() {
        if let Condition::PriceAlert(alert) = condition {
            let window_ms = i64::from(alert.window_seconds().unwrap_or(0)) * 1000;
            let start = Interval::M1.open_time(from_ms - window_ms) - 2 * Interval::M1.millis();
            add(minute_series(&alert.key), start);
        }
    }
    needed
}
