//! Catching up: after a shard hand-over (`SHARD_COUNT=auto`), the current period of a
//! frequency and the last close of every followed series, each only for the strategies
//! not evaluated for it yet, and when the next boundary comes; and before any run for
//! a period, the periods its strategies missed (a replica killed before a boundary, a
//! Postgres outage, a restart), oldest first, up to `CATCH_UP_MAX_PERIODS` of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{BatchError, BatchReport, BatchRunner};
use crate::market::DataNeeds;
use crate::scheduler::evaluation::fires_on_close;
use crate::storage::strategy_state;
use crate::strategy::{CompiledStrategy, Frequency};

/// The periods strategies missed, oldest first, each with the strategies that missed it.
pub(super) type Missed = BTreeMap<DateTime<Utc>, Vec<Arc<CompiledStrategy>>>;

impl BatchRunner {
    /// Evaluates the current period of `frequency` for the strategies not evaluated in
    /// it yet: what a replica that just took shards over runs, so a hand-over between
    /// two boundaries loses no period and repeats none. Waits for a batch of the
    /// frequency under way (it may not have had the new strategies) instead of skipping.
    pub async fn catch_up(&self, frequency: &Frequency) -> Result<BatchReport, BatchError> {
        if *frequency == Frequency::CandleClose {
            return Err(BatchError::CandleClose);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let running = loop {
            if let Some(running) = self.mark_running(frequency) {
                break running;
            }
            if Instant::now() > deadline {
                return Err(BatchError::AlreadyRunning(frequency.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.run_marked(running, true, true, None).await
    }

    /// Whether a run of `frequency` for `due` must look for missed periods: unless this
    /// replica completed the period just before it (then nothing was missed since).
    pub(super) fn may_have_missed(&self, frequency: &Frequency, due: DateTime<Utc>) -> bool {
        let previous = previous_period(frequency, due);
        let completed = self.completed.lock().expect("completed lock");
        previous.is_some() && completed.get(frequency).copied() != previous
    }

    /// Notes that the run of `frequency` for `due` completed here.
    pub(super) fn completed(&self, frequency: &Frequency, due: DateTime<Utc>) {
        let mut completed = self.completed.lock().expect("completed lock");
        let entry = completed.entry(frequency.clone()).or_insert(due);
        *entry = (*entry).max(due);
    }

    /// The periods of `frequency` before `due` that `strategies` missed since their last
    /// evaluated one and their current version, at most `catch_up_max_periods` back from
    /// `due`. Strategies never evaluated have missed nothing.
    pub(super) async fn missed_periods(
        &self,
        frequency: &Frequency,
        strategies: &[Arc<CompiledStrategy>],
        due: DateTime<Utc>,
    ) -> Result<Missed, BatchError> {
        let mut missed = Missed::new();
        let Some(previous) = previous_period(frequency, due) else {
            return Ok(missed);
        };
        let ids: Vec<uuid::Uuid> = strategies.iter().map(|s| s.id).collect();
        let behind = strategy_state::periods_behind(&self.db, &ids, previous).await?;
        if behind.is_empty() {
            return Ok(missed);
        }
        let by_id: HashMap<uuid::Uuid, &Arc<CompiledStrategy>> =
            strategies.iter().map(|s| (s.id, s)).collect();
        for (id, last) in behind {
            let Some(strategy) = by_id.get(&id) else {
                continue;
            };
            // Periods before the strategy's current version (a strategy paused and
            // resumed, or edited, since) were not missed: it was not this strategy then.
            let since = last.max(strategy.version);
            for period in periods_between(frequency, since, due, self.catch_up_max_periods) {
                missed.entry(period).or_default().push((*strategy).clone());
            }
        }
        Ok(missed)
    }

    /// Evaluates the last close of every series the close strategies follow, for those
    /// that have not evaluated it: their candles are fetched first, as a replica that
    /// just took a strategy over may never have followed its series (its feed then has
    /// no close to publish).
    pub async fn catch_up_closes(&self) -> Result<Vec<BatchReport>, BatchError> {
        let mut needs = DataNeeds::default();
        let index = self.index.snapshot();
        for strategy in index.strategies.values().filter(|s| fires_on_close(s)) {
            strategy.needs(&mut needs);
        }
        self.market.fetch(&needs).await;
        self.run_closes(&self.last_closes()).await
    }

    /// The next boundary, by the market clock, of the loaded strategies: a timer
    /// frequency's next period or a close strategy's next bar close.
    pub fn next_boundary(&self) -> Option<DateTime<Utc>> {
        let now = self.market.now();
        let now_ms = now.timestamp_millis();
        let index = self.index.snapshot();
        let periods = index
            .by_frequency
            .keys()
            .filter(|f| **f != Frequency::CandleClose)
            .filter_map(|f| f.next_after(now));
        let closes = index
            .strategies
            .values()
            .filter(|s| fires_on_close(s))
            .filter_map(|s| s.bar_interval)
            .filter_map(|interval| {
                DateTime::from_timestamp_millis(interval.open_time(now_ms) + interval.millis())
            });
        periods.chain(closes).min()
    }
}

/// The boundary of `frequency` just before `due`.
fn previous_period(frequency: &Frequency, due: DateTime<Utc>) -> Option<DateTime<Utc>> {
    frequency.latest_at_or_before(due - chrono::Duration::milliseconds(1))
}

/// The boundaries of `frequency` after `last` and before `due`, oldest first: at most
/// `max` of them, the latest ones.
fn periods_between(
    frequency: &Frequency,
    last: DateTime<Utc>,
    due: DateTime<Utc>,
    max: usize,
) -> Vec<DateTime<Utc>> {
    let mut periods = Vec::new();
    let mut at = due;
    while periods.len() < max {
        match previous_period(frequency, at) {
            Some(period) if period > last => {
                periods.push(period);
                at = period;
            }
            _ => break,
        }
    }
    periods.reverse();
    periods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_periods_missed_are_those_after_the_last_up_to_the_limit() {
        let ten = Frequency::Every(10);
        let due = at("2026-12-07T12:01:00Z");
        assert_eq!(
            periods_between(&ten, at("2026-12-07T12:00:30Z"), due, 10),
            [at("2026-12-07T12:00:40Z"), at("2026-12-07T12:00:50Z")]
        );
        assert!(periods_between(&ten, at("2026-12-07T12:00:50Z"), due, 10).is_empty());
        let capped = periods_between(&ten, at("2026-12-07T11:00:00Z"), due, 3);
        assert_eq!(
            capped,
            [
                at("2026-12-07T12:00:30Z"),
                at("2026-12-07T12:00:40Z"),
                at("2026-12-07T12:00:50Z")
            ],
            "the latest ones"
        );
        let cron = Frequency::parse("0 */15 * * * *").unwrap();
        assert_eq!(
            periods_between(&cron, at("2026-12-07T11:30:00Z"), due, 10),
            [at("2026-12-07T11:45:00Z"), at("2026-12-07T12:00:00Z")]
        );
        assert_eq!(previous_period(&ten, due), Some(at("2026-12-07T12:00:50Z")));
    }
}
