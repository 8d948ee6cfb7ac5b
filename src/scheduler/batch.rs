//! One batch: every strategy of one frequency, evaluated on one market snapshot.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::frequency_label;
use super::ledger::{self, LedgerEntry};
use super::state_store::{self, StateUpdate};
use crate::engine::{BatchContext, Tri};
use crate::market::{DataNeeds, MarketData};
use crate::metrics::Metrics;
use crate::strategy::{Frequency, StrategyIndex};

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
    /// Strategies whose tree was true (handed to the trigger handler).
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
    ) -> Self {
        Self {
            index,
            market,
            db,
            metrics,
            running: Mutex::new(HashSet::new()),
            unknown_streak: DEFAULT_UNKNOWN_STREAK,
        }
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
        let clock = Instant::now();
        let index = self.index.snapshot();
        let strategies = index
            .by_frequency
            .get(frequency)
            .map(Vec::as_slice)
            .unwrap_or_default();

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

        let ids: Vec<Uuid> = strategies.iter().map(|s| s.id).collect();
        let stored = state_store::load(&self.db, &ids).await?;
        let mut updates = Vec::with_capacity(strategies.len());
        let (mut fired, mut errors, mut lacking_data) = (Vec::new(), 0, 0);
        let evaluations = &self.metrics.scheduler.evaluations;
        for strategy in strategies {
            let state = stored.get(&strategy.id);
            let memory = |i: usize| {
                let id = strategy.condition_ids.get(i)?;
                state.and_then(|s| s.previous.get(id).copied())
            };
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
            if streak >= self.unknown_streak {
                lacking_data += 1;
                if streak == self.unknown_streak {
                    tracing::warn!(
                        strategy_id = %strategy.id,
                        frequency = %frequency,
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
            });
        }
        state_store::save(&self.db, started_at, &updates).await?;
        let report = BatchReport {
            frequency: frequency.to_string(),
            started_at,
            evaluated: strategies.len(),
            triggered: fired.len(),
            errors,
            duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
            data_failures: prefetched.report.failures.len(),
            lacking_data,
            fired,
        };
        let metrics = &self.metrics.scheduler;
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
        ledger::record(
            &self.db,
            &LedgerEntry {
                name: format!("batch:{frequency}"),
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
            frequency = %frequency,
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
