//! The composition root: the one place that builds and starts things. It connects the
//! dependencies, wires every component into the shared state ([`build`]), spawns the
//! background tasks, registers each feature's monitor, serves on a listener the caller
//! bound, and shuts down gracefully when the state's cancellation token fires. Adding a
//! feature is its own folder plus one line here.

mod jobs;
mod tasks;
mod wiring;

pub use wiring::build;

use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::AppState;
use crate::storage::{self, StartupError};

/// Connects Postgres (and Redis when configured), applies migrations, and builds the
/// state. Each dependency is retried with backoff up to the startup timeout.
pub async fn connect(config: Config) -> Result<AppState, StartupError> {
    let db = storage::postgres::connect(&config.database, config.server.startup_timeout).await?;
    storage::postgres::migrate(&db).await?;
    tracing::info!("postgres connected, migrations applied");
    let skew = chrono::Duration::from_std(config.engine.tick_max_skew)
        .unwrap_or(chrono::Duration::days(1));
    if let Err(error) = storage::engine_state::repair(&db, chrono::Utc::now(), skew).await {
        tracing::warn!(%error, "engine states not checked for repair");
    }
    let redis = match &config.database.redis_url {
        Some(url) => {
            let manager = storage::redis::connect(url, config.server.startup_timeout).await?;
            tracing::info!("redis connected");
            Some(manager)
        }
        None => {
            tracing::info!("REDIS_URL unset: caches and pub/sub are in-process (single replica)");
            None
        }
    };
    Ok(wiring::build(
        config,
        db,
        redis,
        crate::market::Clock::system(),
    ))
}

/// Serves the application on `listener` until `state.shutdown` is cancelled, then stops
/// accepting, lets in-flight requests finish, waits for background tasks, and closes
/// the pool — all within the configured shutdown timeout.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let deadline = state.config.server.shutdown_timeout;
    let shutdown = state.shutdown.clone();
    let app = crate::http::router(state.clone());
    tracing::info!(
        address = %listener.local_addr()?,
        "serving"
    );
    tasks::spawn_sharding(&state).await;
    tasks::spawn_initial_load(&state);
    // synapse-api's announcements: Redis pub/sub, or Postgres LISTEN without Redis.
    match state.config.database.redis_url.clone() {
        Some(url) => state
            .tasks
            .spawn(crate::strategy::live_reload::follow_redis(
                url,
                state.loader.clone(),
                state.live_reload.clone(),
                shutdown.clone(),
            )),
        None => state
            .tasks
            .spawn(crate::strategy::live_reload::follow_postgres(
                state.db.clone(),
                state.loader.clone(),
                state.live_reload.clone(),
                shutdown.clone(),
            )),
    };
    crate::batches::follow_index(
        &state.market,
        state.index.clone(),
        &state.tasks,
        shutdown.clone(),
    );
    state.market.spawn_feed(&state.tasks, shutdown.clone());
    tasks::spawn_alert_tasks(&state);
    jobs::spawn_health_tasks(&state).await;
    jobs::register_monitors(&state).await;
    state.tasks.spawn(crate::ops_rules::run_snapshots(
        state.db.clone(),
        state.config.engine.clone(),
        shutdown.clone(),
    ));
    state
        .tasks
        .spawn(state.triggers.lease().clone().keep(shutdown.clone()));
    if state.config.server.enable_scheduler {
        state.tasks.spawn(crate::batches::run_candle_closes(
            state.batches.clone(),
            state.market.subscribe_closes(),
            shutdown.clone(),
        ));
    }
    state.tasks.spawn(crate::batches::follow_buckets(
        state.monitors.clone(),
        state.batches.clone(),
        state.index.clone(),
        shutdown.clone(),
    ));
    state.tasks.spawn(crate::monitors::Schedule::run(
        state.monitors.clone(),
        state.config.server.enable_scheduler,
        shutdown.clone(),
    ));
    let limits = crate::http::listener::ListenerLimits {
        max_connections: state.config.server.max_connections,
        header_read_timeout: state.config.server.header_read_timeout,
    };
    let server = tokio::spawn(crate::http::listener::serve(
        listener,
        app,
        limits,
        shutdown.clone(),
    ));

    shutdown.cancelled().await;
    let started = tokio::time::Instant::now();
    tracing::info!("shutting down");
    let remaining = |started: tokio::time::Instant| deadline.saturating_sub(started.elapsed());

    match tokio::time::timeout(remaining(started), server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join_error)) => {
            tracing::error!(error = %join_error, "server task failed")
        }
        Err(_) => tracing::warn!("in-flight requests did not finish before the shutdown deadline"),
    }
    state.tasks.close();
    if tokio::time::timeout(remaining(started), state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop before the shutdown deadline");
    }
    // What is still pending is resumed by another replica at once, not after a lapse.
    let _ = tokio::time::timeout(
        remaining(started).max(Duration::from_millis(100)),
        state.triggers.lease().release(),
    )
    .await;
    // Closing waits for checked-out connections; never past the deadline.
    let _ = tokio::time::timeout(
        remaining(started).max(Duration::from_millis(100)),
        state.db.close(),
    )
    .await;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "stopped");
    Ok(())
}

/// Cancels `token` on SIGTERM or SIGINT.
pub fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler succeeds on unix");
            tokio::select! {
                _ = interrupt => tracing::info!(signal = "SIGINT", "signal received"),
                _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
        }
        token.cancel();
    });
}
