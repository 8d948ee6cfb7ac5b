//! Catching up after a shard hand-over (`SHARD_COUNT=auto`): the current period of a
//! frequency and the last close of every followed series, each only for the strategies
//! not evaluated for it yet, and when the next boundary comes.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{BatchError, BatchReport, BatchRunner};
use crate::market::DataNeeds;
use crate::scheduler::evaluation::fires_on_close;
use crate::strategy::Frequency;

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
        self.run_marked(running, true, None).await
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
