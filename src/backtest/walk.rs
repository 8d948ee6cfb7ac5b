//! The walk: one strategy evaluated at every moment the live scheduler would have run it
//! over a span, by the batch's own [`evaluate`], each moment seeing only the candles
//! closed by then, the state carried from moment to moment as `strategy_state` would
//! have carried it ([`StoredState::apply`]). Pure: reads the tape, writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::tape::Tape;
use crate::batches::{Moment, evaluate, fires_on_close};
use crate::conditions::Condition;
use crate::logic_tree::{BatchContext, IndicatorKey, Tri};
use crate::market::prefetcher::price_from_candles;
use crate::market::{CandleSeries, Interval, PriceKey, Quote, SeriesKey, Source};
use crate::storage::strategy_state::StoredState;
use crate::strategy::{CompiledStrategy, TriggerMode};
use crate::trigger::{Decision, Suppression};

/// One moment at which the strategy would have triggered.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The trigger's time (the period's start, or the bar's close).
    pub at: DateTime<Utc>,
    /// The open time of the strategy's bar, when it has one.
    pub bar_open_time: Option<DateTime<Utc>>,
    /// Per condition, in the strategy's order: id, result, value, previous, compared-to.
    pub conditions: Vec<crate::conditions::ConditionReport>,
}

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walked {
    /// How many moments were evaluated.
    pub moments: u64,
    pub fires: Vec<Fired>,
    /// True evaluations that did not fire, by reason (`cooldown`, `same_bar`, …).
    pub suppressed: BTreeMap<&'static str, u64>,
    /// Evaluations whose tree was unknown (data missing, a gap, or warm-up).
    pub unknown: u64,
}

/// The moments the live scheduler would have evaluated `strategy` at in `[from, to)`:
/// its bar's closes for the bar-close modes (unless its bar closes on its timer),
/// else its frequency's runs.
pub fn moments(strategy: &CompiledStrategy, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Moment> {
    match strategy.bar_interval {
        Some(interval)
            if fires_on_close(strategy) && strategy.indicator_keys().next().is_some() =>
        {
            let step = interval.millis();
            // The first close at or after `from`.
            let mut close = interval.open_time(from.timestamp_millis() + step - 1);
            let mut moments = Vec::new();
            while close < to.timestamp_millis() {
                moments.push(Moment::close(close - step, interval));
                close += step;
            }
            moments
        }
        _ => strategy
            .frequency
            .due_times(from, to)
            .into_iter()
            .map(|due| Moment::period(strategy, due))
            .collect(),
    }
}

/// The market as of one moment, updated in place from the tape.
struct MarketAtMoment<'t> {
    tape: &'t Tape,
    ctx: BatchContext,
    /// Each series an indicator reads, and how many of its candles had closed at the
    /// last moment.
    series: Vec<(SeriesKey, usize)>,
    /// Each indicator and how many candles its value was computed on.
    indicators: Vec<(IndicatorKey, usize)>,
    prices: Vec<PriceKey>,
    windows: Vec<(PriceKey, u32)>,
}

impl<'t> MarketAtMoment<'t> {
    fn new(strategy: &CompiledStrategy, tape: &'t Tape) -> Self {
        let mut market = Self {
            tape,
            ctx: BatchContext::default(),
            series: Vec::new(),
            indicators: Vec::new(),
            prices: Vec::new(),
            windows: Vec::new(),
        };
        for key in strategy.indicator_keys() {
            if !market.indicators.iter().any(|(k, _)| k == key) {
                market.indicators.push((key.clone(), usize::MAX));
            }
            if !market.series.iter().any(|(s, _)| *s == key.series) {
                market.series.push((key.series.clone(), usize::MAX));
            }
        }
        for condition in strategy.conditions.iter() {
            if let Condition::PriceAlert(alert) = condition {
                if !market.prices.contains(&alert.key) {
                    market.prices.push(alert.key.clone());
                }
                if let Some(window) = alert.window_seconds() {
                    market.windows.push((alert.key.clone(), window));
                }
            }
        }
        market
    }

    /// Moves the market to `due`: the candles closed by then (the last two in the
    /// snapshot, what conditions read besides their indicators), each indicator on its
    /// window (recomputed only when a candle closed since the last moment), the last
    /// closed minute's close as each price.
    fn advance(&mut self, due: DateTime<Utc>) {
        let due_ms = due.timestamp_millis();
        for (key, computed_on) in &mut self.indicators {
            let Some(series) = self.tape.series(&key.series) else {
                continue;
            };
            let end = closed_by(series, key.series.interval, due_ms);
            if end != *computed_on {
                self.ctx
                    .set_indicator(key, key.spec.compute_window(series, end));
                *computed_on = end;
            }
        }
        let snapshot = self.ctx.snapshot_mut();
        snapshot.taken_at_ms = due_ms;
        for (key, seen) in &mut self.series {
            let Some(series) = self.tape.series(key) else {
                continue;
            };
            let end = closed_by(series, key.interval, due_ms);
            if end == *seen {
                continue;
            }
            *seen = end;
            let tail = Arc::make_mut(snapshot.candles.entry(key.clone()).or_default());
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
        for key in &self.prices {
            match minute_close(self.tape, key, due_ms) {
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
        for (key, window) in &self.windows {
            // Past prices are read at minute resolution, as live reads them.
            let minute = (due_ms - i64::from(*window) * 1000).div_euclid(60_000) * 60_000;
            let before = self
                .tape
                .series(&minute_series(key))
                .and_then(|series| price_from_candles(series, Interval::M1, minute));
            match before {
                Some(price) => snapshot.prices_ago.insert((key.clone(), *window), price),
                None => snapshot.prices_ago.remove(&(key.clone(), *window)),
            };
        }
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

/// How many of `series`' candles closed by `due_ms`.
fn closed_by(series: &CandleSeries, interval: Interval, due_ms: i64) -> usize {
    series
        .open_time
        .partition_point(|&open| open + interval.millis() <= due_ms)
}

/// The close of the minute that ended last at or before `due_ms` (the price model
/// `last_1m_close`); none when the source lacks that minute.
fn minute_close(tape: &Tape, key: &PriceKey, due_ms: i64) -> Option<f64> {
    let series = tape.series(&minute_series(key))?;
    let end = closed_by(series, Interval::M1, due_ms);
    let last = end.checked_sub(1)?;
    let expected = Interval::M1.open_time(due_ms) - Interval::M1.millis();
    (series.open_time[last] == expected).then(|| series.close[last])
}

/// Walks `strategy` through `moments` (in order) over `tape`, from a fresh state.
pub fn walk(strategy: &CompiledStrategy, tape: &Tape, moments: &[Moment]) -> Walked {
    let mut market = MarketAtMoment::new(strategy, tape);
    let mut state = StoredState::default();
    let mut walked = Walked::default();
    for key in [
        "cooldown",
        "same_bar",
        "not_rising_edge",
        "already_triggered",
    ] {
        walked.suppressed.insert(key, 0);
    }
    let mut fired_once = false;
    for moment in moments {
        market.advance(moment.due);
        let mut outcome = evaluate(strategy, &market.ctx, Some(&state), moment);
        if !moment.on_close {
            outcome.update.period = Some(moment.due);
        }
        walked.moments += 1;
        if outcome.result == Tri::Unknown {
            walked.unknown += 1;
        }
        let decision = match outcome.decision.clone() {
            // Live, a strategy that fired `once` is completed: its key is claimed.
            Decision::Fire { .. } if fired_once => {
                Decision::Suppressed(Suppression::AlreadyTriggered)
            }
            other => other,
        };
        match decision {
            Decision::Fire { .. } => {
                fired_once = strategy.trigger_mode == TriggerMode::Once;
                walked.fires.push(Fired {
                    at: moment.due,
                    bar_open_time: moment.bar_open_ms.and_then(DateTime::from_timestamp_millis),
                    conditions: outcome.report(strategy),
                });
                state.apply(&outcome.update, Some(moment.due));
            }
            Decision::Suppressed(Suppression::NotTrue) => state.apply(&outcome.update, None),
            Decision::Suppressed(why) => {
                *walked.suppressed.entry(why.as_str()).or_default() += 1;
                state.apply(&outcome.update, None);
            }
        }
    }
    walked
}
