//! One batch: every strategy of one frequency, evaluated on one market snapshot.

mod missed_periods;
mod plan_evaluation;
mod recorder;
mod state_writer;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use self::missed_periods::MissedPeriods;
use self::recorder::Recorder;
use self::state_writer::StateWriter;
use super::evaluation::fires_on_close;
use super::frequency_label;
use super::last_run::LastRun;
use crate::frequency::Frequency;
use crate::logic_tree::BatchContext;
use crate::market::{
    CandleClosed, ClosedVia, DataNeeds, Interval, MarketData, Prefetched, SeriesKey,
};
use crate::metrics::Metrics;
use crate::sharding::Ownership;
use crate::storage::ledger::LedgerEntry;
use crate::storage::strategy_state::{self, StateUpdate, StoredState};
use crate::strategy::{CompiledStrategy, StrategyIndex};
use crate::trigger::{TriggerHandler, TriggerRequest};

/// After this many consecutive `unknown` evaluations a strategy is counted as lacking
/// data (it stays `active`: a data outage is not its owner's fault).
pub const DEFAULT_UNKNOWN_STREAK: i32 = 5;

/// Missed periods evaluated afterwards at most (`CATCH_UP_MAX_PERIODS`).
pub const DEFAULT_CATCH_UP_MAX_PERIODS: usize = 10;

/// What one batch did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    pub frequency: String,
    pub started_at: DateTime<Utc>,
    /// Strategies evaluated.
    pub evaluated: usize,
    /// Triggers claimed and delivered by this batch (true trees that the trigger
    /// mode, cooldown and the exactly-once claim let through).
    pub triggered: usize,
    /// Strategies whose tree was unknown for missing data (not a cross's first
    /// evaluation, which waits for a previous value).
    pub errors: usize,
    pub duration_ms: f64,
    /// Market data that could not be fetched.
    pub data_failures: usize,
    /// Strategies unknown for at least the configured streak.
    pub lacking_data: usize,
    #[serde(skip)]
    pub fired: Vec<Uuid>,
}

/// Why a batch did not run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the previous {0} batch is still running")]
    AlreadyRunning(String),
    #[error("no batch runs for candle_close on a timer: it follows candle closes")]
    CandleClose,
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Runs batches; one at a time per frequency.
#[derive(Debug)]
pub struct BatchRunner {
    index: Arc<StrategyIndex>,
    market: MarketData,
    db: PgPool,
    metrics: Arc<Metrics>,
    running: Mutex<HashSet<Frequency>>,
    unknown_streak: i32,
    triggers: TriggerHandler,
    recorder: Recorder,
    states: StateWriter,
    /// `SHARD_COUNT=auto`: the shards held; batches evaluate only their strategies and
    /// fence their writes on their leases.
    ownership: Option<Arc<Ownership>>,
    missed: MissedPeriods,
}

/// What evaluating a plan's strategies produced.
#[derive(Default)]
struct Evaluated {
    updates: Vec<StateUpdate>,
    claims: Vec<TriggerRequest>,
    fired: Vec<Uuid>,
    errors: usize,
    lacking_data: usize,
}

/// What one batch evaluates.
struct Plan {
    /// The frequency as written (`1m`, a cron expression, `candle_close`).
    name: String,
    /// Its bounded metric label.
    label: String,
    strategies: Vec<Arc<CompiledStrategy>>,
    started_at: DateTime<Utc>,
    /// The instant the run belongs to (period start, or the candle's close).
    due: DateTime<Utc>,
    /// For candle-close runs: the open time and interval of the bar that closed.
    closed_bar: Option<(i64, Interval)>,
    /// Leaves out strategies already evaluated for this period (scheduled runs and
    /// catch-ups; an operator's run evaluates everything again).
    once_per_period: bool,
}

/// Clears the running mark when the batch ends, however it ends.
struct Running<'a> {
    set: &'a Mutex<HashSet<Frequency>>,
    frequency: Frequency,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("running lock")
            .remove(&self.frequency);
    }
}

impl BatchRunner {
    pub fn new(
        index: Arc<StrategyIndex>,
        market: MarketData,
        db: PgPool,
        metrics: Arc<Metrics>,
        triggers: TriggerHandler,
    ) -> Self {
        Self {
            triggers,
            index,
            market,
            recorder: Recorder::new(metrics.clone(), db.clone()),
            states: StateWriter::new(db.clone(), metrics.clone()),
            metrics,
            running: Mutex::new(HashSet::new()),
            unknown_streak: DEFAULT_UNKNOWN_STREAK,
            db,
            ownership: None,
            missed: MissedPeriods::new(DEFAULT_CATCH_UP_MAX_PERIODS),
        }
    }

    /// Evaluates at most `periods` missed periods of a strategy afterwards.
    pub fn with_catch_up_max_periods(mut self, periods: usize) -> Self {
        self.missed = MissedPeriods::new(periods);
        self
    }

    /// Evaluates only the strategies of the shards `ownership` holds, fencing each
    /// claim and state write on its shard's lease (`SHARD_COUNT=auto`).
    pub fn with_ownership(mut self, ownership: Arc<Ownership>) -> Self {
        self.states = self.states.with_ownership(ownership.clone());
        self.ownership = Some(ownership);
        self
    }

    /// The last run of the batch `name` (`1m`, a cron expression, `candle_close`).
    pub fn last_run(&self, name: &str) -> Option<LastRun> {
        self.recorder.last_run(name)
    }

    /// Exports each bucket's period and drops the gauges of buckets that are gone.
    pub fn follow_buckets(&self, index: &crate::strategy::IndexSnapshot) {
        self.recorder.follow_buckets(index);
    }

    /// The market clock batches take their periods from.
    pub fn clock(&self) -> &crate::market::Clock {
        self.market.clock()
    }

    /// Runs the batch of `frequency` now, for the period the market clock is in
    /// (operators' `POST /internal/run/{frequency}`), unless it is already running (then
    /// the tick is skipped, counted and written to the ledger).
    pub async fn run(&self, frequency: &Frequency) -> Result<BatchReport, BatchError> {
        self.run_at(frequency, None).await
    }

    /// Runs the batch of `frequency` for the period that begins at `scheduled` (the
    /// boundary the scheduler woke up for; the market clock's now when `None`): a
    /// replica that wakes late still claims the period it was scheduled for, under the
    /// same dedup keys as the others.
    pub async fn run_at(
        &self,
        frequency: &Frequency,
        scheduled: Option<DateTime<Utc>>,
    ) -> Result<BatchReport, BatchError> {
        if *frequency == Frequency::CandleClose {
            return Err(BatchError::CandleClose);
        }
        let label = frequency_label(frequency);
        let Some(running) = self.mark_running(frequency) else {
            self.metrics
                .scheduler
                .batches_skipped
                .with_label_values(&[&label])
                .inc();
            let entry =
                LedgerEntry::skipped(format!("batch:{frequency}"), "previous batch still running");
            self.recorder.write_ledger(entry).await;
            return Err(BatchError::AlreadyRunning(frequency.to_string()));
        };
        self.run_marked(running, scheduled.is_some(), false, scheduled)
            .await
    }

    /// Runs the marked frequency's batch for the period of `scheduled` (or now). A run
    /// once per period first evaluates, in order, the periods its strategies missed —
    /// looked for when `look_back` says so or this replica did not complete the period
    /// before — each under its own claims.
    async fn run_marked(
        &self,
        running: Running<'_>,
        once_per_period: bool,
        look_back: bool,
        scheduled: Option<DateTime<Utc>>,
    ) -> Result<BatchReport, BatchError> {
        let _running = running;
        let frequency = &_running.frequency;
        let label = frequency_label(frequency);
        let started_at = Utc::now();
        // The period comes from the market clock (the system clock in production; a
        // simulated one in tests and benchmarks), like the data it is evaluated on.
        let period_of = scheduled.unwrap_or_else(|| self.market.now());
        let index = self.index.snapshot();
        let strategies = index
            .by_frequency
            .get(frequency)
            .cloned()
            .unwrap_or_default();
        // The period this run belongs to: the same on every replica, so their claims
        // collide on the same dedup keys.
        let due = frequency.due_at_or_before(period_of);
        if once_per_period && (look_back || self.missed.may_have_missed(frequency, due)) {
            let missed = self
                .missed
                .missed(&self.db, frequency, &strategies, due)
                .await;
            let missed = match missed {
                Ok(missed) => missed,
                Err(error) => {
                    self.recorder
                        .record_failure(&frequency.to_string(), &label, started_at, &error)
                        .await;
                    return Err(error);
                }
            };
            for (period, strategies) in missed {
                tracing::info!(frequency = %frequency, period = %period,
                    strategies = strategies.len(), "evaluating a missed period");
                self.execute(Plan {
                    name: frequency.to_string(),
                    label: label.clone(),
                    strategies,
                    started_at: Utc::now(),
                    due: period,
                    closed_bar: None,
                    once_per_period: true,
                })
                .await?;
            }
        }
        let report = self
            .execute(Plan {
                name: frequency.to_string(),
                label,
                strategies,
                started_at,
                due,
                closed_bar: None,
                once_per_period,
            })
            .await?;
        self.missed.completed(frequency, due);
        Ok(report)
    }

    /// The last close of every series the loaded strategies follow, as the kline cache
    /// holds it: what a consumer that fell behind the close events evaluates, so a
    /// dropped event delays a close's evaluation rather than losing it (closes already
    /// evaluated are skipped by [`BatchRunner::run_closes`]).
    pub fn last_closes(&self) -> Vec<CandleClosed> {
        let klines = self.market.klines();
        self.index
            .snapshot()
            .series
            .iter()
            .filter_map(|key| {
                let series = klines.get(key)?;
                Some(CandleClosed {
                    series: key.clone(),
                    open_time_ms: series.last_open_time()?,
                    close: *series.close.last()?,
                    via: ClosedVia::Backfill,
                })
            })
            .collect()
    }

    /// Evaluates the strategies that follow candles closed by `closes` (`candle_close`
    /// frequency or `once_per_bar_close` mode, on that bar interval and series), each
    /// close once per strategy: the last evaluated candle is kept in its state, so a
    /// reconnect, a backfill or a restart never evaluates a close twice.
    pub async fn run_closes(
        &self,
        closes: &[CandleClosed],
    ) -> Result<Vec<BatchReport>, BatchError> {
        let mut groups: BTreeMap<(Interval, i64), BTreeSet<&SeriesKey>> = BTreeMap::new();
        for close in closes {
            groups
                .entry((close.series.interval, close.open_time_ms))
                .or_default()
                .insert(&close.series);
        }
        let index = self.index.snapshot();
        let mut reports = Vec::new();
        for ((interval, open_time), series) in groups {
            let strategies: Vec<Arc<CompiledStrategy>> = index
                .strategies
                .values()
                .filter(|s| fires_on_close(s))
                .filter(|s| s.bar_interval == Some(interval))
                .filter(|s| s.indicator_keys().any(|k| series.contains(&k.series)))
                .cloned()
                .collect();
            if strategies.is_empty() {
                continue;
            }
            let close_time = open_time + interval.millis();
            reports.push(
                self.execute(Plan {
                    name: "candle_close".into(),
                    label: "candle_close".into(),
                    strategies,
                    started_at: Utc::now(),
                    due: DateTime::from_timestamp_millis(close_time).unwrap_or_else(Utc::now),
                    closed_bar: Some((open_time, interval)),
                    once_per_period: false,
                })
                .await?,
            );
        }
        Ok(reports)
    }

    /// One plan, as a sequence of steps: states, data, evaluation, claims, state, record.
    /// Runs `plan`'s steps; a batch that fails (Postgres unreachable, say) is logged by
    /// its caller, counted as `failed` and written to the ledger (once Postgres takes
    /// it).
    async fn execute(&self, plan: Plan) -> Result<BatchReport, BatchError> {
        let (name, label, started_at) = (plan.name.clone(), plan.label.clone(), plan.started_at);
        let result = self.execute_steps(plan).await;
        if let Err(error) = &result {
            self.recorder
                .record_failure(&name, &label, started_at, error)
                .await;
        }
        result
    }

    async fn execute_steps(&self, mut plan: Plan) -> Result<BatchReport, BatchError> {
        let clock = Instant::now();
        // The shards held stay held until this batch has written its claims and state.
        let _working = match &self.ownership {
            Some(ownership) => Some(ownership.working().await),
            None => None,
        };
        let fences = self.states.fences(&mut plan);
        let (strategies, stored) = self.load_states(&plan).await?;
        let prefetched = self.prefetch(&strategies).await;
        let ctx = {
            let keys: Vec<_> = strategies
                .iter()
                .flat_map(|s| s.indicator_keys().cloned())
                .collect();
            BatchContext::prepare(Arc::new(prefetched.snapshot), &keys)
        };
        let mut evaluated = plan_evaluation::evaluate_plan(
            &plan,
            &strategies,
            &stored,
            &ctx,
            &self.market,
            &self.metrics,
            self.unknown_streak,
        );
        for claim in &mut evaluated.claims {
            claim.fence = fences.get(&claim.strategy.id).cloned();
        }
        self.recorder.observe_latency(&plan);
        // Claims first, each with its strategy's whole state in its transaction: a crash
        // after them re-evaluates the others (the claims stop duplicates, and what fired
        // already remembers its edge); a crash after saving the state first would lose a
        // close's alert. The alerts go out in the background as they are claimed.
        let triggered = self.triggers.claim_and_deliver(evaluated.claims).await?;
        self.metrics
            .scheduler
            .triggers
            .with_label_values(&[plan.label.as_str()])
            .inc_by(triggered as u64);
        self.states.save(&plan, &evaluated.updates, &fences).await?;
        let report = BatchReport {
            frequency: plan.name.clone(),
            started_at: plan.started_at,
            evaluated: strategies.len(),
            triggered,
            errors: evaluated.errors,
            duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
            data_failures: prefetched.report.failures.len(),
            lacking_data: evaluated.lacking_data,
            fired: evaluated.fired,
        };
        self.recorder
            .record(&plan, &report, &prefetched.report)
            .await?;
        Ok(report)
    }

    /// The plan's strategies with their stored state; on a close, those that already
    /// evaluated it are left out (a close is evaluated once per strategy, whoever
    /// published it and however often).
    async fn load_states(
        &self,
        plan: &Plan,
    ) -> Result<(Vec<Arc<CompiledStrategy>>, HashMap<Uuid, StoredState>), BatchError> {
        let ids: Vec<Uuid> = plan.strategies.iter().map(|s| s.id).collect();
        let stored = strategy_state::load(&self.db, &ids).await?;
        let strategies = plan
            .strategies
            .iter()
            .filter(|s| match plan.closed_bar {
                None if plan.once_per_period => stored
                    .get(&s.id)
                    .and_then(|st| st.last_period_at)
                    .is_none_or(|done| done < plan.due),
                None => true,
                Some((bar, _)) => stored
                    .get(&s.id)
                    .and_then(|st| st.last_candle_open_time)
                    .is_none_or(|done| done.timestamp_millis() < bar),
            })
            .cloned()
            .collect();
        Ok((strategies, stored))
    }

    /// Fetches the union of the strategies' data needs, each datum once.
    async fn prefetch(&self, strategies: &[Arc<CompiledStrategy>]) -> Prefetched {
        let mut needs = DataNeeds::default();
        for strategy in strategies {
            strategy.needs(&mut needs);
        }
        self.market.fetch(&needs).await
    }

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

    fn mark_running(&self, frequency: &Frequency) -> Option<Running<'_>> {
        let mut running = self.running.lock().expect("running lock");
        running.insert(frequency.clone()).then(|| Running {
            set: &self.running,
            frequency: frequency.clone(),
        })
    }
}
