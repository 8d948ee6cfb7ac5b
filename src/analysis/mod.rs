//! Candle-close analysis (DESIGN §14): each monitored signal is re-analysed by the
//! llm-proxy at every close of its candle interval until it is entered, abandoned or
//! out of re-analyses.
//!
//! On a close of a series with active schedules ([`claims`]), each schedule whose
//! trader passes `ANALYSIS_TRADERS` is claimed for that candle as a `pending` row of
//! `monitoring_decisions` — one statement for the series closing together; the unique
//! (schedule, candle) key makes the same close from the stream, a backfill or another
//! replica claimed once. Claimed closes queue for the [`worker`], which starts at most
//! `ANALYSIS_RATE_PER_MINUTE` calls a minute and `ANALYSIS_MAX_CONCURRENCY` at once; a
//! close still queued when its series closes again is skipped and counted. Each answer
//! is written with its transition ([`transition`]) in one transaction and published
//! on Redis as `signal.decision`. A claim left pending past the timeout (its replica
//! crashed) is taken over and resumed. After downtime only the latest closed candle
//! of each series is analysed.

mod book;
mod claims;
pub mod client;
mod monitor;
pub mod transition;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use book::{Book, series_of};
pub use client::{AnalysisClient, AnalysisRequest, Answer, CallError, parse_answer};
pub use monitor::AnalysisMonitor;
pub use transition::{Decision, progress};

use crate::market::{MarketData, SeriesKey};
use crate::metrics::AnalysisMetrics;
use crate::ops_alerts::OpsAlerts;

/// The Redis channel synapse-api announces schedule changes on (any message reloads).
pub const UPDATES_CHANNEL: &str = "workflow:updated";
/// The Redis channel decisions are published on.
pub const DECISIONS_CHANNEL: &str = "signal.decision";
/// The operational alert raised when schedules go to `error`.
pub const FAILING_RULE: &str = "analysis_failing";

/// The `ANALYSIS_*` settings.
#[derive(Debug, Clone)]
pub struct AnalysisSettings {
    /// `ANALYSIS_URL`: the llm-proxy's analysis endpoint; `None` turns analysis off.
    pub url: Option<SecretString>,
    /// `ANALYSIS_API_KEY`: sent as a bearer token.
    pub api_key: Option<SecretString>,
    /// `ANALYSIS_TIMEOUT_MS`: one call, retries included.
    pub timeout: Duration,
    /// `ANALYSIS_CANDLES`: closed candles sent.
    pub candles: usize,
    /// `ANALYSIS_TRADERS`: only these traders' schedules (empty: all).
    pub traders: Vec<Uuid>,
    /// `ANALYSIS_MAX_CONSECUTIVE_ERRORS`: a schedule goes to `error` after this many.
    pub max_consecutive_errors: i32,
    /// `ANALYSIS_MAX_CONCURRENCY`: calls in flight.
    pub max_concurrency: usize,
    /// `ANALYSIS_RATE_PER_MINUTE`: calls started a minute.
    pub rate_per_minute: u32,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            url: None,
            api_key: None,
            timeout: Duration::from_millis(30_000),
            candles: 100,
            traders: Vec::new(),
            max_consecutive_errors: 3,
            max_concurrency: 8,
            rate_per_minute: 600,
        }
    }
}

impl AnalysisSettings {
    /// Whether `trader` passes `ANALYSIS_TRADERS`.
    pub fn allows(&self, trader: Uuid) -> bool {
        self.traders.is_empty() || self.traders.contains(&trader)
    }
}

/// A claimed close waiting for its call.
#[derive(Debug, Clone)]
struct Job {
    decision_id: Uuid,
    schedule_id: Uuid,
    series: SeriesKey,
    candle_open_time: i64,
}

/// The analysis service of this replica; cheap to clone.
#[derive(Clone)]
pub struct Analysis {
    inner: Arc<AnalysisCore>,
}

struct AnalysisCore {
    db: PgPool,
    redis: Option<ConnectionManager>,
    redis_url: Option<SecretString>,
    market: MarketData,
    settings: AnalysisSettings,
    client: Option<AnalysisClient>,
    book: book::ScheduleBook,
    metrics: AnalysisMetrics,
    alerts: OpsAlerts,
    replica: String,
    queue: mpsc::UnboundedSender<Job>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// The latest close seen per series.
    latest: Mutex<HashMap<SeriesKey, i64>>,
    /// Asks the reload task for a reload.
    reload: Notify,
    /// Whether the `analysis` monitor is disabled or snoozed.
    paused: OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis").finish_non_exhaustive()
    }
}

/// What the analysis service needs.
pub struct AnalysisParts {
    pub db: PgPool,
    pub redis: Option<ConnectionManager>,
    pub redis_url: Option<SecretString>,
    pub market: MarketData,
    pub settings: AnalysisSettings,
    pub metrics: AnalysisMetrics,
    pub alerts: OpsAlerts,
    pub replica: String,
}

impl Analysis {
    pub fn new(parts: AnalysisParts) -> Self {
        let client = parts.settings.url.clone().map(|url| {
            AnalysisClient::new(url, parts.settings.api_key.clone(), parts.settings.timeout)
        });
        let (queue, receiver) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(AnalysisCore {
                db: parts.db,
                redis: parts.redis,
                redis_url: parts.redis_url,
                market: parts.market,
                settings: parts.settings,
                client,
                book: book::ScheduleBook::default(),
                metrics: parts.metrics,
                alerts: parts.alerts,
                replica: parts.replica,
                queue,
                receiver: Mutex::new(Some(receiver)),
                latest: Mutex::new(HashMap::new()),
                reload: Notify::new(),
                paused: OnceLock::new(),
            }),
        }
    }

    /// Whether `ANALYSIS_URL` is set.
    pub fn is_enabled(&self) -> bool {
        self.inner.client.is_some()
    }

    /// Sets how to tell that the `analysis` monitor is disabled or snoozed.
    pub fn set_pause_check(&self, paused: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.inner.paused.set(Box::new(paused));
    }

    /// The schedules held now.
    pub fn book(&self) -> Arc<Book> {
        self.inner.book.get()
    }

    /// Reads the monitored schedules again and follows their series.
    pub async fn reload(&self) -> Result<usize, sqlx::Error> {
        self.inner.reload_book().await
    }

    /// Asks for a reload soon (after a `workflow:updated` message or a reload request).
    pub fn request_reload(&self) {
        self.inner.reload.notify_one();
    }

    /// Closes of series (each the candle opened at its time): claims them for their
    /// schedules, one statement per candle time, and queues the calls; answers how many
    /// this replica claimed. The candle feed's closes come here; benchmarks call it
    /// directly.
    pub async fn on_closes(&self, closes: &[(SeriesKey, i64)]) -> Result<usize, sqlx::Error> {
        self.inner.on_closes(closes).await
    }

    /// Takes over claims left pending past the timeout and queues them; answers how
    /// many (the `analysis` monitor's run does this too).
    pub async fn resume_stale(&self) -> Result<usize, sqlx::Error> {
        self.inner.resume_stale().await
    }

    /// Starts the work: closes in, the queue, reloads, the Redis follower. Nothing
    /// when analysis is off.
    pub fn start(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        if !self.is_enabled() {
            return;
        }
        let Some(receiver) = self.inner.receiver.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        tasks.spawn(worker::dispatch(
            self.inner.clone(),
            receiver,
            tasks.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(claims::follow_closes(
            self.inner.clone(),
            self.inner.market.subscribe_closes(),
            shutdown.clone(),
        ));
        tasks.spawn(claims::keep_current(self.inner.clone(), shutdown.clone()));
        if let Some(url) = self.inner.redis_url.clone() {
            let inner = self.inner.clone();
            tasks.spawn(async move {
                crate::storage::redis::follow(
                    url,
                    &[UPDATES_CHANNEL],
                    "analysis",
                    shutdown,
                    |_| {
                        inner.reload.notify_one();
                        std::future::ready(())
                    },
                )
                .await;
            });
        }
    }
}

impl AnalysisCore {
    fn is_paused(&self) -> bool {
        self.paused.get().is_some_and(|paused| paused())
    }
}
