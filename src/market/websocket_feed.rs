//! The Binance WebSocket feed: combined-stream connections (up to 1024 kline streams
//! each) covering every (symbol, interval) that loaded strategies use, resubscribing
//! as they change. Closed candles go into the kline cache (no REST call needed) and
//! out as candle-closed events.
//!
//! A connection reconnects with backoff after a drop, a `serverShutdown` notice, a
//! silent minute, and before Binance's 24-hour cut-off; after every (re)connect it
//! backfills the closes it missed over REST before reading the stream, so no close is
//! ever missed. Pings are answered by the WebSocket library as frames are read.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::candle_feed::{CandleClosed, ClosePublisher, ClosedVia, backfill};
use super::kline_cache::Append;
use super::prefetcher::Prefetcher;
use super::sources::binance_ws::{self, MAX_STREAMS_PER_CONNECTION, StreamMessage};
use super::{SeriesKey, Source};
use crate::metrics::MarketMetrics;

/// The largest WebSocket message (and frame) read from the market stream.
const MAX_WS_MESSAGE_BYTES: usize = 1 << 20;

/// Connection behaviour.
#[derive(Debug, Clone)]
pub struct WebsocketSettings {
    /// `BINANCE_WS_URL`, e.g. `wss://stream.binance.com:9443`.
    pub base_url: String,
    /// Reconnect before Binance's 24-hour cut-off.
    pub max_connection_age: Duration,
    /// Reconnect when nothing (not even a ping) arrived for this long.
    pub silence_timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        Self {
            base_url: "wss://stream.binance.com:9443".into(),
            max_connection_age: Duration::from_secs(23 * 3600 + 30 * 60),
            silence_timeout: Duration::from_secs(60),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Runs the feed until `shutdown`: one connection task per 1024 streams of `desired`.
pub async fn run_websocket_feed(
    prefetcher: Prefetcher,
    mut desired: watch::Receiver<BTreeSet<SeriesKey>>,
    events: broadcast::Sender<CandleClosed>,
    settings: WebsocketSettings,
    metrics: Arc<MarketMetrics>,
    shutdown: CancellationToken,
) {
    let mut connections: Vec<(watch::Sender<BTreeSet<SeriesKey>>, JoinHandle<()>)> = Vec::new();
    loop {
        let keys: Vec<SeriesKey> = desired
            .borrow_and_update()
            .iter()
            .filter(|k| k.source == Source::Binance)
            .cloned()
            .collect();
        metrics.ws_streams.set(keys.len() as i64);
        let chunks: Vec<BTreeSet<SeriesKey>> = keys
            .chunks(MAX_STREAMS_PER_CONNECTION)
            .map(|c| c.iter().cloned().collect())
            .collect();
        while connections.len() > chunks.len() {
            let (sender, task) = connections.pop().expect("non-empty");
            drop(sender);
            let _ = task.await;
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            match connections.get(i) {
                Some((sender, _)) => {
                    sender.send_replace(chunk);
                }
                None => {
                    let (sender, receiver) = watch::channel(chunk);
                    let connection = Connection {
                        backoff: None,
                        prefetcher: prefetcher.clone(),
                        publisher: ClosePublisher::new(events.clone(), metrics.clone()),
                        settings: settings.clone(),
                        metrics: metrics.clone(),
                        shutdown: shutdown.clone(),
                    };
                    connections.push((sender, tokio::spawn(connection.run(receiver))));
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = desired.changed() => if changed.is_err() { break },
        }
    }
    for (sender, task) in connections {
        drop(sender);
        let _ = task.await;
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Dropped,
    ServerShutdown,
    Silent,
    MaxAge,
    /// The stream set went away or the service is stopping.
    Stopped,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Ended::Dropped => "dropped",
            Ended::ServerShutdown => "server_shutdown",
            Ended::Silent => "silent",
            Ended::MaxAge => "max_age",
            Ended::Stopped => "stopped",
        }
    }
}

struct Connection {
    /// The reconnect delays since the last good connection (exponential, jittered).
    backoff: Option<crate::outbound::Backoff>,
    prefetcher: Prefetcher,
    publisher: ClosePublisher,
    settings: WebsocketSettings,
    metrics: Arc<MarketMetrics>,
    shutdown: CancellationToken,
}

fn names(keys: &BTreeSet<SeriesKey>) -> Vec<String> {
    keys.iter()
        .map(|k| binance_ws::stream_name(&k.symbol, k.interval))
        .collect()
}

impl Connection {
    async fn run(mut self, mut streams: watch::Receiver<BTreeSet<SeriesKey>>) {
        loop {
            if self.shutdown.is_cancelled() || streams.has_changed().is_err() {
                return;
            }
            let keys = streams.borrow_and_update().clone();
            if keys.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    changed = streams.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let url = binance_ws::combined_url(&self.settings.base_url, &names(&keys));
            let connected = tokio::time::timeout(
                Duration::from_secs(10),
                // A kline event is under a kilobyte: a message is bounded well above
                // that, not at the library's 64 MiB.
                tokio_tungstenite::connect_async_with_config(
                    url,
                    Some(
                        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                            .max_message_size(Some(MAX_WS_MESSAGE_BYTES))
                            .max_frame_size(Some(MAX_WS_MESSAGE_BYTES)),
                    ),
                    true,
                ),
            )
            .await;
            let socket = match connected {
                Ok(Ok((socket, _))) => socket,
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "market stream connect failed");
                    self.metrics
                        .ws_reconnects
                        .with_label_values(&["connect_failed"])
                        .inc();
                    self.backoff().await;
                    continue;
                }
                Err(_) => {
                    self.metrics
                        .ws_reconnects
                        .with_label_values(&["connect_timeout"])
                        .inc();
                    self.backoff().await;
                    continue;
                }
            };
            self.backoff = None;
            self.metrics.ws_connected.inc();
            let ended = self.serve(socket, keys, &mut streams).await;
            self.metrics.ws_connected.dec();
            if ended == Ended::Stopped {
                return;
            }
            tracing::info!(reason = ended.as_str(), "market stream ended; reconnecting");
            self.metrics
                .ws_reconnects
                .with_label_values(&[ended.as_str()])
                .inc();
            if ended == Ended::Dropped {
                self.backoff().await;
            }
        }
    }

    async fn backoff(&mut self) {
        let settings = &self.settings;
        // Jitter keeps many replicas from reconnecting in step.
        self.backoff
            .get_or_insert_with(|| {
                crate::outbound::Backoff::new(settings.min_backoff, settings.max_backoff).jittered()
            })
            .pause(&self.shutdown)
            .await;
    }

    /// Backfills what was missed, then reads the stream until it ends.
    async fn serve<S>(
        &mut self,
        socket: tokio_tungstenite::WebSocketStream<S>,
        mut keys: BTreeSet<SeriesKey>,
        streams: &mut watch::Receiver<BTreeSet<SeriesKey>>,
    ) -> Ended
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut sink, mut source) = socket.split();
        let clock = self.prefetcher.clock().clone();
        self.catch_up(&keys).await;
        let klines = self.prefetcher.klines().clone();
        klines.set_live(keys.iter().cloned(), true);
        let max_age = tokio::time::sleep(self.settings.max_connection_age);
        tokio::pin!(max_age);
        let mut request_id = 0u64;
        let ended = loop {
            tokio::select! {
                () = self.shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    break Ended::Stopped;
                }
                () = &mut max_age => break Ended::MaxAge,
                changed = streams.changed() => {
                    if changed.is_err() {
                        let _ = sink.send(Message::Close(None)).await;
                        break Ended::Stopped;
                    }
                    let wanted = streams.borrow_and_update().clone();
                    let added: BTreeSet<SeriesKey> = wanted.difference(&keys).cloned().collect();
                    let removed: BTreeSet<SeriesKey> = keys.difference(&wanted).cloned().collect();
                    for (method, set) in [("UNSUBSCRIBE", &removed), ("SUBSCRIBE", &added)] {
                        if set.is_empty() {
                            continue;
                        }
                        request_id += 1;
                        let text = binance_ws::request(method, &names(set), request_id);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    let now = clock.now_ms();
                    for key in &removed {
                        self.publisher.forget(key);
                    }
                    klines.set_live(removed.iter().cloned(), false);
                    for key in &added {
                        self.publisher.follow(key, now);
                    }
                    klines.set_live(added.iter().cloned(), true);
                    keys = wanted;
                }
                message = tokio::time::timeout(self.settings.silence_timeout, source.next()) => {
                    let text = match message {
                        Err(_) => break Ended::Silent,
                        Ok(None | Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break Ended::Dropped,
                        Ok(Some(Ok(Message::Text(text)))) => text,
                        Ok(Some(Ok(_))) => continue,
                    };
                    match binance_ws::parse_message(&text) {
                        Ok(StreamMessage::Kline(event)) if event.closed => self.on_close(event, &keys).await,
                        Ok(StreamMessage::Kline(event)) => {
                            let lag = (clock.now_ms() - event.event_time) as f64 / 1000.0;
                            self.metrics.ws_lag.set(lag.max(0.0));
                        }
                        Ok(StreamMessage::ServerShutdown) => break Ended::ServerShutdown,
                        Ok(StreamMessage::Reply { error: Some(error), .. }) => {
                            tracing::warn!(%error, "market stream refused a subscription change");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            self.metrics.upstream_errors.with_label_values(&["binance", "websocket", error.kind()]).inc();
                            tracing::warn!(%error, "unreadable market stream message");
                        }
                    }
                }
            }
        };
        klines.set_live(keys.iter().cloned(), false);
        ended
    }

    /// After a (re)connect: publish the closes missed since the last ones published
    /// (new series start from now).
    async fn catch_up(&mut self, keys: &BTreeSet<SeriesKey>) {
        let now = self.prefetcher.clock().now_ms();
        let mut behind = Vec::new();
        for key in keys {
            match self.publisher.last(key) {
                None => self.publisher.follow(key, now),
                Some(last) if last < key.interval.last_closed_open(now) => behind.push(key.clone()),
                Some(_) => {}
            }
        }
        backfill(
            &self.prefetcher,
            &mut self.publisher,
            &behind,
            ClosedVia::Backfill,
        )
        .await;
    }

    async fn on_close(&mut self, event: binance_ws::KlineEvent, keys: &BTreeSet<SeriesKey>) {
        // A set lookup, not a scan: a boundary closes up to 1024 streams at once.
        let key = SeriesKey {
            source: Source::Binance,
            symbol: Arc::from(event.symbol.as_str()),
            interval: event.interval,
        };
        if !keys.contains(&key) {
            return;
        }
        let lag = (self.prefetcher.clock().now_ms() - event.event_time) as f64 / 1000.0;
        self.metrics.ws_lag.set(lag.max(0.0));
        let klines = self.prefetcher.klines();
        if klines.append_closed(&key, event.open_time, event.ohlcv) == Append::Gap {
            tracing::debug!(symbol = %event.symbol, "kline cache behind the stream; next prefetch fills it");
        }
        if self
            .publisher
            .last(&key)
            .is_some_and(|last| event.open_time <= last)
        {
            return;
        }
        if !self.publisher.is_next(&key, event.open_time) {
            // A gap: publish the missed closes first, in order.
            let missed = std::slice::from_ref(&key);
            backfill(
                &self.prefetcher,
                &mut self.publisher,
                missed,
                ClosedVia::Backfill,
            )
            .await;
        }
        self.publisher
            .publish(&key, event.open_time, event.ohlcv[3], ClosedVia::Websocket);
    }
}
