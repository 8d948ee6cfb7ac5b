//! Backtest: when would this strategy have fired? (DESIGN §15.) A stored strategy or a
//! draft is walked through the moments the live scheduler would have run it at over a
//! past span, by the batch's own evaluation ([`walk`]), on candles read once from the
//! candle store — what is missing fetched from Binance and kept ([`tape`]). Nothing is
//! written to the strategy's state or logs and nothing is sent.
//!
//! At most `BACKTEST_MAX_CONCURRENCY` run at once per replica; a source failing
//! mid-fetch answers an error naming the series, never a partial answer.

mod market_at;
pub mod report;
pub mod request;
pub mod tape;
pub mod walk;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

pub use report::{BacktestReport, Compare, Fire, FiredCondition};
pub use request::{BacktestRequest, Draft, DraftCondition, SpanError};
pub use tape::{SeriesGap, SeriesUsed, Tape, Unsupported};
pub use walk::{Walked, moments, walk};

use crate::conditions::SymbolInterner;
use crate::market::Clock;
use crate::market::candle_history::{CandleHistory, HistoryError};
use crate::strategy::{CompiledStrategy, store};
use crate::validation::ValidationError;

/// The `BACKTEST_*` and `CANDLE_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacktestSettings {
    /// `BACKTEST_MAX_CONCURRENCY`: backtests at once per replica.
    pub max_concurrency: usize,
    /// `CANDLE_RETENTION_DAYS`: stored candles kept this long.
    pub candle_retention_days: u32,
}

impl Default for BacktestSettings {
    fn default() -> Self {
        Self {
            max_concurrency: 2,
            candle_retention_days: 400,
        }
    }
}

/// Why a backtest was not answered.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The body or the strategy is invalid (the path names the field).
    #[error("{0}")]
    Invalid(ValidationError),
    /// A condition's source keeps no candle history.
    #[error("{}: {}", .0.path, .0.message)]
    Unsupported(Unsupported),
    #[error("the span is empty or too long")]
    Span(SpanError),
    #[error("no strategy {0}")]
    NotFound(Uuid),
    /// `BACKTEST_MAX_CONCURRENCY` are running.
    #[error("{0} backtests are running on this replica; try again when one ends")]
    Busy(usize),
    /// The candle source failed mid-fetch.
    #[error("market data for {series} is unavailable: {cause}")]
    Unavailable { series: String, cause: String },
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    /// The walk itself failed (a bug: it panicked).
    #[error("the walk failed: {0}")]
    Failed(String),
}

impl From<HistoryError> for BacktestError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Unavailable { series, cause } => Self::Unavailable {
                series,
                cause: cause.to_string(),
            },
            HistoryError::Storage(error) => Self::Storage(error),
        }
    }
}

/// Runs backtests: the candle history, the market clock, the concurrency bound.
#[derive(Clone)]
pub struct Backtester {
    db: PgPool,
    history: CandleHistory,
    clock: Clock,
    permits: Arc<Semaphore>,
    max_concurrency: usize,
}

impl Backtester {
    pub fn new(db: PgPool, history: CandleHistory, clock: Clock, max_concurrency: usize) -> Self {
        Self {
            db,
            history,
            clock,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
        }
    }

    /// Answers `request` (DESIGN §15).
    pub async fn run(&self, request: BacktestRequest) -> Result<BacktestReport, BacktestError> {
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| BacktestError::Busy(self.max_concurrency))?;
        let started = Instant::now();
        let now = DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_else(Utc::now);
        let (from, to) = request.span(now).map_err(BacktestError::Span)?;
        let stored = match request.strategy_id {
            Some(id) => Some(self.stored(id).await?),
            None => None,
        };
        let draft = match &request.strategy {
            Some(draft) => Some(
                draft
                    .compile(request.strategy_id.unwrap_or(Uuid::nil()))
                    .map_err(BacktestError::Invalid)?,
            ),
            None => None,
        };
        let strategies: Vec<&CompiledStrategy> = draft.iter().chain(stored.iter()).collect();
        let Some(&subject) = strategies.first() else {
            return Err(BacktestError::Invalid(ValidationError::new(
                "body",
                "give strategy_id, strategy, or both",
            )));
        };
        // A draft's conditions are named under `strategy.`; the stored one's as stored.
        if let Some(draft) = &draft {
            tape::check_sources(draft).map_err(|unsupported| {
                BacktestError::Unsupported(Unsupported {
                    path: format!("strategy.{}", unsupported.path),
                    ..unsupported
                })
            })?;
        }
        if let Some(stored) = &stored {
            tape::check_sources(stored).map_err(BacktestError::Unsupported)?;
        }
        let tape = Tape::load(&self.history, &strategies, from, to, now).await?;
        let subject = subject.clone();
        let compared = draft.as_ref().and(stored.clone());
        let (tape, walked, compare) = tokio::task::spawn_blocking(move || {
            let walked = walk(&subject, &tape, &moments(&subject, from, to));
            let compare = compared.map(|stored| {
                let before = walk(&stored, &tape, &moments(&stored, from, to));
                report::compare(&before, &walked)
            });
            (tape, walked, compare)
        })
        .await
        .map_err(|error| BacktestError::Failed(error.to_string()))?;
        Ok(BacktestReport {
            strategy_id: request.strategy_id,
            from,
            to,
            moments: walked.moments,
            unknown: walked.unknown,
            price_model: report::PRICE_MODEL,
            fires: walked.fires.iter().map(report::fire).collect(),
            fires_total: walked.fire_times.len(),
            suppressed: walked.suppressed,
            series: tape.used,
            gaps: tape.gaps,
            compare,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// The stored strategy `id`, compiled as the loader compiles it.
    async fn stored(&self, id: Uuid) -> Result<CompiledStrategy, BacktestError> {
        let Some(resolved) = store::fetch(&self.db, &[id]).await?.pop() else {
            return Err(BacktestError::NotFound(id));
        };
        CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).map_err(|error| {
            BacktestError::Invalid(ValidationError::new(
                "strategy_id",
                format!("the stored strategy is invalid: {error}"),
            ))
        })
    }
}
