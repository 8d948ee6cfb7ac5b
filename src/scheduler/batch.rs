//! One batch: every strategy of one frequency, evaluated on one market snapshot.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::frequency_label;
use super::last_run::{LastRun, LastRuns};
use super::ledger::{self, LedgerEntry};
use super::simulation::describe_conditions;
use super::state_store::{self, StateUpdate};
use crate::engine::{BatchContext, Tri};
use crate::market::{CandleClosed, ClosedVia, DataNeeds, Interval, MarketData, SeriesKey};
use crate::metrics::Metrics;
use crate::strategy::{CompiledStrategy, Frequency, IndexSnapshot, StrategyIndex, TriggerMode};
use crate::trigger::{
    AlertFacts, ConditionFacts, Decision, TriggerHandler, TriggerRequest, decide,
};

/// After this many consecutive `unknown` evaluations a strategy is counted as lacking
/// data (it stays `active`: a data outage is not its owner's fault).
pub const DEFAULT_UNKNOWN_STREAK: i32 = 5;

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
    /// Strategies whose tree was unknown (missing data).
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
    last_runs: LastRuns,
    /// The frequency labels whose batch gauges are exported now.
    exported: Mutex<BTreeSet<String>>,
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
    /// For candle-close runs: the open time of the bar that closed.
    closed_bar: Option<i64>,
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
            db,
            metrics,
            running: Mutex::new(HashSet::new()),
            unknown_streak: DEFAULT_UNKNOWN_STREAK,
            last_runs: LastRuns::default(),
            exported: Mutex::new(BTreeSet::new()),
        }
    }

    /// Exports each bucket's period and drops the gauges of buckets that are gone
    /// (so "no batch for 3 intervals" never fires for a frequency nobody uses).
    pub fn follow_buckets(&self, index: &IndexSnapshot) {
        let metrics = &self.metrics.scheduler;
        let mut present = BTreeSet::new();
        for frequency in index.by_frequency.keys() {
            if *frequency == Frequency::CandleClose {
                continue;
            }
            let label = frequency_label(frequency);
            if let Some(period) = frequency.period_seconds() {
                metrics
                    .batch_interval
                    .with_label_values(&[&label])
                    .set(i64::from(period));
            }
            present.insert(label);
        }
        let mut exported = self.exported.lock().expect("exported lock");
        // A new bucket counts from now: one that never runs is then noticed too.
        for new in present.difference(&exported) {
            metrics
                .last_batch
                .with_label_values(&[new])
                .set(Utc::now().timestamp() as f64);
        }
        for gone in exported.difference(&present) {
            let _ = metrics.batch_interval.remove_label_values(&[gone]);
            let _ = metrics.last_batch.remove_label_values(&[gone]);
        }
        *exported = present;
    }

    /// The last run of the batch `name` (`1m`, a cron expression, `candle_close`).
    pub fn last_run(&self, name: &str) -> Option<LastRun> {
        self.last_runs.get(name)
    }

    /// The trigger handler (for resuming pending deliveries).
    pub fn triggers(&self) -> &TriggerHandler {
        &self.triggers
    }

    /// Runs the batch of `frequency` now, unless it is already running (then the tick
    /// is skipped, counted and written to the ledger).
    pub async fn run(&self, frequency: &Frequency) -> Result<BatchReport, BatchError> {
        if *frequency == Frequency::CandleClose {
            return Err(BatchError::CandleClose);
        }
        let label = frequency_label(frequency);
        let Some(_running) = self.mark_running(frequency) else {
            self.metrics
                .scheduler
                .batches_skipped
                .with_label_values(&[&label])
                .inc();
            let entry = LedgerEntry {
                name: format!("batch:{frequency}"),
                started_at: Utc::now(),
                duration_ms: 0.0,
                evaluated: 0,
                triggered: 0,
                errors: 0,
                skipped: 1,
                status: "skipped",
                details: json!({"reason": "previous batch still running"}),
            };
            ledger::record(&self.db, &entry).await?;
            return Err(BatchError::AlreadyRunning(frequency.to_string()));
        };
        let started_at = Utc::now();
        // The period comes from the market clock (the system clock in production; a
        // simulated one in tests and benchmarks), like the data it is evaluated on.
        let market_now = DateTime::from_timestamp_millis(self.market.prefetcher.clock().now_ms())
            .unwrap_or(started_at);
        let index = self.index.snapshot();
        let strategies = index
            .by_frequency
            .get(frequency)
            .cloned()
            .unwrap_or_default();
        self.execute(Plan {
            name: frequency.to_string(),
            label,
            strategies,
            started_at,
            // The period this run belongs to: the same on every replica, so their
            // claims collide on the same dedup keys.
            due: frequency.due_at_or_before(market_now),
            closed_bar: None,
        })
        .await
    }

    /// The last close of every series the loaded strategies follow, as the kline cache
    /// holds it: what a consumer that fell behind the close events evaluates, so a
    /// dropped event delays a close's evaluation rather than losing it (closes already
    /// evaluated are skipped by [`BatchRunner::run_closes`]).
    pub fn last_closes(&self) -> Vec<CandleClosed> {
        let klines = self.market.prefetcher.klines();
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
                .filter(|s| {
                    s.frequency == Frequency::CandleClose
                        || s.trigger_mode == TriggerMode::OncePerBarClose
                })
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
                    closed_bar: Some(open_time),
                })
                .await?,
            );
        }
        Ok(reports)
    }

    /// Prefetches, evaluates, triggers, writes state and the ledger for one plan.
    async fn execute(&self, plan: Plan) -> Result<BatchReport, BatchError> {
        let Plan {
            name,
            label,
            strategies: planned,
            started_at,
            due,
            closed_bar,
        } = plan;
        let clock = Instant::now();
        // A close is evaluated once per strategy, whoever published it and however often.
        let ids: Vec<Uuid> = planned.iter().map(|s| s.id).collect();
        let stored = state_store::load(&self.db, &ids).await?;
        let strategies: Vec<Arc<CompiledStrategy>> = match closed_bar {
            None => planned,
            Some(bar) => planned
                .into_iter()
                .filter(|s| {
                    stored
                        .get(&s.id)
                        .and_then(|st| st.last_candle_open_time)
                        .is_none_or(|done| done.timestamp_millis() < bar)
                })
                .collect(),
        };
        let strategies = strategies.as_slice();

        let mut needs = DataNeeds::default();
        for strategy in strategies {
            strategy.needs(&mut needs);
        }
        let prefetched = self.market.prefetcher.fetch(&needs).await;
        let keys: Vec<_> = strategies
            .iter()
            .flat_map(|s| s.indicator_keys().cloned())
            .collect();
        let ctx = BatchContext::prepare(Arc::new(prefetched.snapshot), &keys);

        let mut updates = Vec::with_capacity(strategies.len());
        let (mut fired, mut errors, mut lacking_data) = (Vec::new(), 0, 0);
        let mut claims = Vec::new();
        let evaluations = &self.metrics.scheduler.evaluations;
        for strategy in strategies {
            let state = stored.get(&strategy.id);
            let memory = |i: usize| state_store::remembered(state, strategy, i);
            let result = strategy.evaluate(&ctx, &memory);
            let mut previous = serde_json::Map::new();
            for (id, condition) in strategy
                .condition_ids
                .iter()
                .zip(strategy.conditions.iter())
            {
                if let Some(value) = condition.memory(&ctx) {
                    previous.insert(id.to_string(), json!(value));
                }
            }
            let before = state.map_or(0, |s| s.consecutive_errors);
            let (outcome, streak) = match result {
                Tri::True => (Some(true), 0),
                Tri::False => (Some(false), 0),
                Tri::Unknown => (None, before.saturating_add(1)),
            };
            match result {
                Tri::True => fired.push(strategy.id),
                Tri::Unknown => errors += 1,
                Tri::False => {}
            }
            // Bar-close strategies fire on their candle's close, not on a timer.
            if result == Tri::True
                && (closed_bar.is_some() || strategy.trigger_mode != TriggerMode::OncePerBarClose)
            {
                let bar_open_ms = closed_bar.or_else(|| {
                    strategy
                        .bar_interval
                        .map(|interval| interval.open_time(due.timestamp_millis()))
                });
                let context = state_store::trigger_context(state, result, due, bar_open_ms);
                if let Decision::Fire { dedup_key } = decide(strategy, &context) {
                    claims.push((
                        strategy.clone(),
                        dedup_key,
                        facts(strategy, &ctx, &memory, due),
                    ));
                }
            }
            if streak == 1 {
                // The first unknown of a run of them; the rest are counted, not logged.
                tracing::warn!(
                    component = "evaluation",
                    strategy_id = %strategy.id,
                    frequency = %name,
                    "strategy evaluated unknown: market data it needs is unavailable"
                );
            }
            if streak >= self.unknown_streak {
                lacking_data += 1;
                if streak == self.unknown_streak {
                    tracing::warn!(
                        component = "evaluation",
                        strategy_id = %strategy.id,
                        frequency = %name,
                        streak,
                        "strategy evaluated unknown repeatedly: its market data is unavailable"
                    );
                }
            }
            let result_label = match result {
                Tri::True => "true",
                Tri::False => "false",
                Tri::Unknown => "unknown",
            };
            evaluations
                .with_label_values(&[label.as_str(), result_label])
                .inc();
            updates.push(StateUpdate {
                strategy_id: strategy.id,
                result: outcome,
                previous,
                consecutive_errors: streak,
                candle_open_time: closed_bar.and_then(DateTime::from_timestamp_millis),
            });
        }
        let metrics = &self.metrics.scheduler;
        let late = (Utc::now() - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        metrics
            .evaluation_latency
            .with_label_values(&[&label])
            .observe(late.max(0.0));
        // Claims first: a crash after them re-evaluates (the claims stop duplicates); a
        // crash after saving the state first would lose a close's alert. The alerts go
        // out in the background as they are claimed.
        let requests = claims
            .into_iter()
            .map(|(strategy, dedup_key, facts)| TriggerRequest {
                strategy,
                dedup_key,
                facts,
            })
            .collect();
        let triggered = self.triggers.claim_and_deliver(requests).await?;
        self.metrics
            .scheduler
            .triggers
            .with_label_values(&[label.as_str()])
            .inc_by(triggered as u64);
        state_store::save(&self.db, started_at, &updates).await?;
        let report = BatchReport {
            frequency: name.clone(),
            started_at,
            evaluated: strategies.len(),
            triggered,
            errors,
            duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
            data_failures: prefetched.report.failures.len(),
            lacking_data,
            fired,
        };
        metrics
            .batch_duration
            .with_label_values(&[&label])
            .observe(report.duration_ms / 1000.0);
        metrics
            .lacking_data
            .with_label_values(&[&label])
            .set(lacking_data as i64);
        let status = if report.data_failures == 0 {
            "ok"
        } else {
            "partial"
        };
        metrics.batches.with_label_values(&[&label, status]).inc();
        metrics
            .last_batch
            .with_label_values(&[&label])
            .set(Utc::now().timestamp() as f64);
        self.last_runs.record(
            &name,
            LastRun {
                started_at,
                due,
                duration_ms: report.duration_ms,
                evaluated: report.evaluated,
                triggered,
                errors,
                data_failures: report.data_failures,
                cache_hit_rate: prefetched.report.hit_rate(),
                status,
            },
        );
        ledger::record(
            &self.db,
            &LedgerEntry {
                name: format!("batch:{name}"),
                started_at,
                duration_ms: report.duration_ms,
                evaluated: report.evaluated,
                triggered: report.triggered,
                errors: report.errors,
                skipped: 0,
                status,
                details: json!({
                    "data_failures": report.data_failures,
                    "lacking_data": lacking_data,
                    "demand": prefetched.report.demand,
                    "fetched": prefetched.report.fetched,
                }),
            },
        )
        .await?;
        tracing::info!(
            component = "scheduler",
            frequency = %name,
            evaluated = report.evaluated,
            triggered = report.triggered,
            errors = report.errors,
            duration_ms = report.duration_ms,
            "batch evaluated"
        );
        Ok(report)
    }

    fn mark_running(&self, frequency: &Frequency) -> Option<Running<'_>> {
        let mut running = self.running.lock().expect("running lock");
        running.insert(frequency.clone()).then(|| Running {
            set: &self.running,
            frequency: frequency.clone(),
        })
    }
}

/// What a message may say about a strategy that fired: each condition's values.
fn facts(
    strategy: &CompiledStrategy,
    ctx: &BatchContext,
    memory: &dyn Fn(usize) -> Option<f64>,
    at: DateTime<Utc>,
) -> AlertFacts {
    let (_, evaluations) = strategy.evaluate_detailed(ctx, memory);
    let conditions = describe_conditions(strategy, evaluations)
        .into_iter()
        .map(|c| ConditionFacts {
            id: c.id.to_string(),
            kind: c.kind,
            source: c.source,
            symbol: c.symbol,
            interval: c.interval,
            result: c.result,
            value: c.observed.value,
            previous: c.observed.previous,
            compare_to: c.observed.compare_to,
        })
        .collect();
    AlertFacts {
        strategy_id: strategy.id.to_string(),
        strategy_name: strategy.name.to_string(),
        triggered_at: at,
        conditions,
    }
}
