//! Market data as the engine sees it: sources, candle intervals, closed-candle series,
//! the per-batch snapshot of everything fetched, and the data needs that conditions
//! declare so a batch fetches each datum once.

pub mod candle_feed;
pub mod candle_history;
mod candle_retention;
pub mod clock;
mod codec;
mod interval;
pub mod kline_cache;
mod memory_cache;
mod needs;
pub mod prefetcher;
mod series;
pub mod shared_cache;
mod single_flight;
mod snapshot;
pub mod sources;
pub mod websocket_feed;

pub use candle_feed::{CandleClosed, ClosedVia};
pub use candle_retention::CandleRetentionMonitor;
pub use clock::Clock;
pub use interval::Interval;
pub use kline_cache::KlineCache;
pub use needs::{DataNeed, DataNeeds};
pub use prefetcher::{PrefetchReport, PrefetchSettings, Prefetched, Prefetcher};
pub use series::CandleSeries;
pub use shared_cache::{SharedCache, SharedCacheSettings};
pub use snapshot::{MarketSnapshot, PriceKey, Quote, SeriesKey};
pub use sources::{Sources, SourcesConfig, UpstreamError};
pub use websocket_feed::WebsocketSettings;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::MarketMetrics;

/// Everything the market-data layer needs to start.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    pub sources: SourcesConfig,
    pub prefetch: PrefetchSettings,
    pub shared_cache: SharedCacheSettings,
    /// `None`: candles are polled over REST after each boundary.
    pub websocket: Option<WebsocketSettings>,
    /// After a boundary, how long REST polling waits for the exchange to close it.
    pub poll_delay: Duration,
}

/// The market-data layer: the prefetcher for batches, and the candle-closed events
/// (from the WebSocket feed or REST polling) for `candle_close` strategies.
#[derive(Debug, Clone)]
pub struct MarketData {
    prefetcher: Prefetcher,
    closes: broadcast::Sender<CandleClosed>,
    /// The (symbol, interval) series to follow: the union of what each follower
    /// (the strategies, the analysis schedules) asked for.
    streams: Arc<watch::Sender<BTreeSet<SeriesKey>>>,
    wanted: Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, BTreeSet<SeriesKey>>>>,
    config: Arc<MarketConfig>,
    metrics: Arc<MarketMetrics>,
}

impl MarketData {
    pub fn new(
        config: MarketConfig,
        redis: Option<ConnectionManager>,
        clock: Clock,
        metrics: Arc<MarketMetrics>,
    ) -> Self {
        let sources = Arc::new(Sources::new(&config.sources, metrics.clone()));
        let shared = redis.map(|r| SharedCache::new(r, config.shared_cache.clone()));
        let prefetcher = Prefetcher::new(
            sources,
            Arc::new(KlineCache::default()),
            shared,
            clock,
            config.prefetch.clone(),
            metrics.clone(),
        );
        Self {
            prefetcher,
            closes: broadcast::channel(65_536).0,
            streams: Arc::new(watch::channel(BTreeSet::new()).0),
            wanted: Arc::default(),
            config: Arc::new(config),
            metrics,
        }
    }

    pub fn metrics(&self) -> &MarketMetrics {
        &self.metrics
    }

    /// The market clock (the system clock in production; a simulator's in tests).
    pub fn clock(&self) -> &Clock {
        self.prefetcher.clock()
    }

    /// Now, by the market clock: the time batches take their period from, like the
    /// data they are evaluated on.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let now_ms = self.prefetcher.clock().now_ms();
        chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_else(chrono::Utc::now)
    }

    /// The upstream clients (what candle history fetches through: the same weight
    /// budget and pauses as every other call).
    pub fn sources(&self) -> &Arc<Sources> {
        self.prefetcher.sources()
    }

    /// Fetches everything `needs` names, each datum once, through the caches.
    pub async fn fetch(&self, needs: &DataNeeds) -> Prefetched {
        self.prefetcher.fetch(needs).await
    }

    /// The closed candles held in process (what the candle feed keeps current).
    pub fn klines(&self) -> &Arc<KlineCache> {
        self.prefetcher.klines()
    }

    /// Each upstream's health: last success, last failure, pause.
    pub fn source_health(
        &self,
    ) -> std::collections::BTreeMap<&'static str, sources::SourceHealthRecord> {
        self.prefetcher.sources().health()
    }

    /// `GET /api/v3/ping` on Binance through its upstream client (weight budget, 429
    /// pauses, retries): whether Binance answers.
    pub async fn ping_binance(&self) -> Result<(), sources::UpstreamError> {
        self.prefetcher.sources().binance.ping().await
    }

    /// Candle-closed events from now on.
    pub fn subscribe_closes(&self) -> broadcast::Receiver<CandleClosed> {
        self.closes.subscribe()
    }

    /// Replaces the series the strategies need followed (the feed resubscribes).
    pub fn set_streams(&self, streams: BTreeSet<SeriesKey>) {
        self.set_streams_of("strategies", streams);
    }

    /// Replaces the series `follower` needs followed; the feed follows the union of
    /// every follower's.
    pub fn set_streams_of(&self, follower: &'static str, streams: BTreeSet<SeriesKey>) {
        let streams = {
            let mut wanted = self.wanted.lock().expect("wanted streams lock");
            wanted.insert(follower, streams);
            wanted.values().flatten().cloned().collect::<BTreeSet<_>>()
        };
        self.streams.send_if_modified(|current| {
            let changed = *current != streams;
            *current = streams;
            changed
        });
    }

    pub fn streams(&self) -> BTreeSet<SeriesKey> {
        self.streams.borrow().clone()
    }

    /// Starts the candle feed: WebSockets when configured, else REST polling.
    pub fn spawn_feed(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let prefetcher = self.prefetcher.clone();
        let desired = self.streams.subscribe();
        match &self.config.websocket {
            Some(settings) => {
                tasks.spawn(websocket_feed::run_websocket_feed(
                    prefetcher,
                    desired,
                    self.closes.clone(),
                    settings.clone(),
                    self.metrics.clone(),
                    shutdown,
                ));
            }
            None => {
                let publisher =
                    candle_feed::ClosePublisher::new(self.closes.clone(), self.metrics.clone());
                tasks.spawn(candle_feed::run_rest_polling(
                    prefetcher,
                    desired,
                    publisher,
                    self.config.poll_delay,
                    shutdown,
                ));
            }
        }
    }
}

/// Where a datum comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Binance spot: symbols such as `BTCUSDT`; prices and candles.
    Binance,
    /// CoinGecko: coin ids such as `bitcoin`, priced in USD.
    Coingecko,
    /// A Uniswap v3 pool address: the price of token0 in token1.
    Uniswap,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Binance, Source::Coingecko, Source::Uniswap];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Binance => "binance",
            Source::Coingecko => "coingecko",
            Source::Uniswap => "uniswap",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether `symbol` is well-formed for this source, with a hint when it is not.
    pub fn check_symbol(self, symbol: &str) -> Result<(), &'static str> {
        let ok = match self {
            Source::Binance => {
                (2..=20).contains(&symbol.len())
                    && symbol
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            Source::Coingecko => {
                (1..=100).contains(&symbol.len())
                    && symbol
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }
            Source::Uniswap => {
                symbol.len() == 42
                    && symbol.starts_with("0x")
                    && symbol[2..].bytes().all(|b| b.is_ascii_hexdigit())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Source::Binance => "must be a Binance spot symbol such as BTCUSDT (A-Z, 0-9)",
                Source::Coingecko => "must be a CoinGecko coin id such as bitcoin (a-z, 0-9, -)",
                Source::Uniswap => "must be a Uniswap v3 pool address (0x and 40 hex digits)",
            })
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
