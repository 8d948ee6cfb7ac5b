//! The accept loop: what a stranger without a key can hold is bounded.
//!
//! - A client has `HTTP_HEADER_READ_TIMEOUT_SECONDS` to send a request's headers, and an
//!   idle keep-alive connection the same to start its next request (hyper starts the
//!   header timer as soon as a connection is idle), so a half-sent request (slowloris)
//!   or a parked connection is closed.
//! - At most `MONITORING_MAX_CONNECTIONS` are open, and never more than the process's
//!   descriptor limit leaves room for (Postgres, Redis and files keep a reserve).
//!   At the cap, a new connection takes the place of the oldest one that has not sent
//!   a request yet; a probe sends its request at once, so `/health` and `/ready` are
//!   answered while strangers hold every other place.
//! - When `accept` itself fails (descriptors exhausted), the loop frees the oldest such
//!   connection and backs off instead of spinning or stopping.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Descriptors kept for everything but client connections (the Postgres pool, Redis,
/// upstream clients, log and snapshot files).
const RESERVED_DESCRIPTORS: usize = 96;

/// The listener's bounds.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// `MONITORING_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS`: for a request's headers, and for an idle
    /// connection's next request.
    pub header_read_timeout: Duration,
}

/// The connections that have not sent a request yet, oldest first, and how many are
/// open in all.
#[derive(Default)]
struct Connections {
    waiting: Mutex<BTreeMap<u64, CancellationToken>>,
    open: AtomicUsize,
}

impl Connections {
    /// Closes the oldest connection that has not sent a request; whether there was one.
    fn evict_oldest_waiting(&self) -> bool {
        let oldest = self.waiting.lock().expect("not poisoned").pop_first();
        oldest.map(|(_, close)| close.cancel()).is_some()
    }
}

/// The connection cap in force: the configured one, within what the descriptor limit
/// leaves room for.
pub fn effective_max_connections(configured: usize) -> usize {
    let room = open_files_limit().map_or(usize::MAX, |limit| {
        limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)
    });
    configured.min(room).max(1)
}

/// The soft limit on open descriptors, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, asks every
/// connection to finish its request in flight, and returns once they have.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let cap = effective_max_connections(limits.max_connections);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let connections = Arc::new(Connections::default());
    let tasks = TaskTracker::new();
    let mut next_id = 0u64;
    let mut backoff =
        crate::outbound::Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                stream
            }
            Err(error) => {
                // Out of descriptors (or a connection reset before we took it): free
                // a place held by a silent client, and try again a little later.
                connections.evict_oldest_waiting();
                let wait = backoff.next_delay();
                tracing::warn!(%error, backoff_ms = wait.as_millis() as u64,
                    "accept failed; backing off");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        if connections.open.load(Ordering::Relaxed) >= cap && !connections.evict_oldest_waiting() {
            // Every place holds a client with a request in flight: refuse this one.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let close = CancellationToken::new();
        connections
            .waiting
            .lock()
            .expect("not poisoned")
            .insert(id, close.clone());
        connections.open.fetch_add(1, Ordering::Relaxed);
        let seen = connections.clone();
        // The first request moves the connection out of the evictable set.
        let service = tower::ServiceExt::map_request(app.clone(), move |request| {
            seen.waiting.lock().expect("not poisoned").remove(&id);
            request
        });
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let connections = connections.clone();
        tasks.spawn(async move {
            let io = TokioIo::new(stream);
            let connection =
                builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = close.cancelled() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            connections
                .waiting
                .lock()
                .expect("not poisoned")
                .remove(&id);
            connections.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
    Ok(())
}
