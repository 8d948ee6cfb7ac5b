//! Missed periods: before any run for a period, the periods its strategies missed (a
//! replica killed before a boundary, a Postgres outage, a restart), oldest first, up to
//! `CATCH_UP_MAX_PERIODS` of them — none before a strategy's current version.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::BatchError;
use crate::frequency::Frequency;
use crate::storage::strategy_state;
use crate::strategy::CompiledStrategy;

/// The periods strategies missed, oldest first, each with the strategies that missed it.
pub(super) type Missed = BTreeMap<DateTime<Utc>, Vec<Arc<CompiledStrategy>>>;

/// Which periods each frequency completed here, and how far back a run looks.
#[derive(Debug)]
pub(super) struct MissedPeriods {
    /// The latest period each frequency's batch completed here: the next period's run
    /// looks for missed periods only when this is not the one just before it.
    completed: Mutex<HashMap<Frequency, DateTime<Utc>>>,
    /// `CATCH_UP_MAX_PERIODS`: the most missed periods evaluated afterwards.
    max_periods: usize,
}

impl MissedPeriods {
    pub(super) fn new(max_periods: usize) -> Self {
        Self {
            completed: Mutex::new(HashMap::new()),
            max_periods,
        }
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
    /// evaluated one and their current version, at most `CATCH_UP_MAX_PERIODS` back from
    /// `due`. Strategies never evaluated have missed nothing.
    pub(super) async fn missed(
        &self,
        db: &sqlx::PgPool,
        frequency: &Frequency,
        strategies: &[Arc<CompiledStrategy>],
        due: DateTime<Utc>,
    ) -> Result<Missed, BatchError> {
        let mut missed = Missed::new();
        let Some(previous) = previous_period(frequency, due) else {
            return Ok(missed);
        };
        let ids: Vec<uuid::Uuid> = strategies.iter().map(|s| s.id).collect();
        let behind = strategy_state::periods_behind(db, &ids, previous).await?;
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
            for period in periods_between(frequency, since, due, self.max_periods) {
                missed.entry(period).or_default().push((*strategy).clone());
            }
        }
        Ok(missed)
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
