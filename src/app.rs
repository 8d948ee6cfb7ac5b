//! The service's lifecycle: connect the dependencies, serve on a listener the caller
//! bound, and shut down gracefully when the state's cancellation token fires.

use std::sync::Arc;
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
    tracing::info!(
        component = "storage",
        "postgres connected, migrations applied"
    );
    let skew = chrono::Duration::from_std(config.engine.tick_max_skew)
        .unwrap_or(chrono::Duration::days(1));
    if let Err(error) = storage::engine_state::repair(&db, chrono::Utc::now(), skew).await {
        tracing::warn!(component = "storage", %error, "engine states not checked for repair");
    }
    let redis = match &config.database.redis_url {
        Some(url) => {
            let manager = storage::redis::connect(url, config.server.startup_timeout).await?;
            tracing::info!(component = "storage", "redis connected");
            Some(manager)
        }
        None => {
            tracing::info!(
                component = "storage",
                "REDIS_URL unset: caches and pub/sub are in-process (single replica)"
            );
            None
        }
    };
    Ok(AppState::new(config, db, redis))
}

/// Serves the application on `listener` until `state.shutdown` is cancelled, then stops
/// accepting, lets in-flight requests finish, waits for background tasks, and closes
/// the pool — all within the configured shutdown timeout.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let deadline = state.config.server.shutdown_timeout;
    let shutdown = state.shutdown.clone();
    let app = crate::http::router(state.clone());
    tracing::info!(
        component = "http",
        address = %listener.local_addr()?,
        "serving"
    );
    spawn_sharding(&state).await;
    spawn_initial_load(&state);
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
    crate::scheduler::follow_index(
        &state.market,
        state.index.clone(),
        &state.tasks,
        shutdown.clone(),
    );
    state.market.spawn_feed(&state.tasks, shutdown.clone());
    spawn_alert_tasks(&state);
    spawn_health_tasks(&state).await;
    register_monitors(&state).await;
    state.tasks.spawn(crate::ops_rules::run_snapshots(
        state.db.clone(),
        state.config.engine.clone(),
        shutdown.clone(),
    ));
    state.tasks.spawn(
        state
            .batches
            .triggers()
            .lease()
            .clone()
            .keep(shutdown.clone()),
    );
    if state.config.server.enable_scheduler {
        state.tasks.spawn(crate::scheduler::run_candle_closes(
            state.batches.clone(),
            state.market.subscribe_closes(),
            shutdown.clone(),
        ));
    }
    state.tasks.spawn(crate::monitors::follow_buckets(
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
    tracing::info!(component = "service", "shutting down");
    let remaining = |started: tokio::time::Instant| deadline.saturating_sub(started.elapsed());

    match tokio::time::timeout(remaining(started), server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join_error)) => {
            tracing::error!(component = "http", error = %join_error, "server task failed")
        }
        Err(_) => tracing::warn!(
            component = "http",
            "in-flight requests did not finish before the shutdown deadline"
        ),
    }
    state.tasks.close();
    if tokio::time::timeout(remaining(started), state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            component = "service",
            "background tasks did not stop before the shutdown deadline"
        );
    }
    // What is still pending is resumed by another replica at once, not after a lapse.
    let _ = tokio::time::timeout(
        remaining(started).max(Duration::from_millis(100)),
        state.batches.triggers().lease().release(),
    )
    .await;
    // Closing waits for checked-out connections; never past the deadline.
    let _ = tokio::time::timeout(
        remaining(started).max(Duration::from_millis(100)),
        state.db.close(),
    )
    .await;
    tracing::info!(
        component = "service",
        elapsed_ms = started.elapsed().as_millis() as u64,
        "stopped"
    );
    Ok(())
}

/// Loads the strategies once, retrying with backoff until it succeeds or the service
/// shuts down; `/ready` answers 503 until then.
/// `SHARD_COUNT=auto`: takes this replica's share of the shards once before the first
/// load (the loader then reads only them), keeps it current, and follows its changes.
async fn spawn_sharding(state: &AppState) {
    let (Some(ownership), Some(settings)) = (&state.ownership, state.config.auto_shard) else {
        return;
    };
    let coordinator = crate::sharding::Coordinator::new(
        state.db.clone(),
        ownership.clone(),
        settings,
        state.metrics.shards.clone(),
    );
    // Subscribed before the first step: the first shards are caught up like any later.
    state.tasks.spawn(crate::scheduler::follow_shards(
        ownership.subscribe(),
        state.loader.clone(),
        state.batches.clone(),
        state.shutdown.clone(),
    ));
    if let Err(error) = coordinator.step().await {
        tracing::warn!(component = "sharding", %error, "first shard step failed; retrying");
    }
    state.tasks.spawn(coordinator.run(state.shutdown.clone()));
}

fn spawn_initial_load(state: &AppState) {
    let loader = state.loader.clone();
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match loader.reload_all().await {
                Ok(_) => return,
                Err(err) => tracing::warn!(
                    component = "strategy",
                    error = %err,
                    retry_in_ms = delay.as_millis() as u64,
                    "initial strategy load failed"
                ),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    });
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
                _ = interrupt => tracing::info!(component = "service", signal = "SIGINT", "signal received"),
                _ = terminate.recv() => tracing::info!(component = "service", signal = "SIGTERM", "signal received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
        }
        token.cancel();
    });
}

/// Operational alerts: the notification dispatcher, and the follower that hands every
/// replica's alert events (through Redis) to this replica's stream clients.
fn spawn_alert_tasks(state: &AppState) {
    let settings = &state.config.alerts;
    let dispatcher = crate::alerts::Dispatcher::new(
        state.ops_alerts.clone(),
        state.notifier.clone(),
        settings.routes.clone(),
        settings.timing,
        state.metrics.alerts.clone(),
    );
    state.tasks.spawn(dispatcher.run(state.shutdown.clone()));
    if let Some(url) = state.config.database.redis_url.clone() {
        state.tasks.spawn(
            state
                .ops_alerts
                .stream()
                .clone()
                .follow_redis(url, state.shutdown.clone()),
        );
    }
}

/// Platform health: the cycle (on the lease holder) and the emergency-stop follower.
async fn spawn_health_tasks(state: &AppState) {
    let settings = &state.config.health;
    if settings.interval.is_zero() {
        return;
    }
    let cycle = crate::platform_health::Cycle {
        collectors: crate::platform_health::Collectors::new(
            state.db.clone(),
            state.redis.clone(),
            state.market.clone(),
            settings.limits,
            settings.timeout,
        ),
        targets: crate::platform_health::all_targets(&settings.services, state.redis.is_some()),
        alerts: state.ops_alerts.clone(),
        redis: state.redis.clone(),
        limits: settings.limits,
        alert_after: settings.alert_after,
        interval: settings.interval,
        metrics: state.metrics.health.clone(),
        latest: state.health.clone(),
    };
    state
        .monitors
        .register(Arc::new(crate::monitors::PlatformHealthMonitor {
            cycle,
            replica: state.replica.clone(),
        }))
        .await;
    if let Some(url) = state.config.database.redis_url.clone() {
        state.tasks.spawn(crate::platform_health::ess::follow(
            state.ops_alerts.clone(),
            url,
            state.shutdown.clone(),
        ));
    }
}

/// The periodic jobs besides strategy buckets (which follow the index) and the health
/// cycle (registered with its other tasks).
async fn register_monitors(state: &AppState) {
    let monitors = &state.monitors;
    monitors
        .register(Arc::new(crate::monitors::ExpiryMonitor {
            loader: state.loader.clone(),
        }))
        .await;
    monitors
        .register(Arc::new(crate::monitors::RetentionMonitor {
            alerts: state.ops_alerts.clone(),
            alert_settings: state.config.alerts.clone(),
            engine_settings: state.config.engine.clone(),
        }))
        .await;
    monitors
        .register(Arc::new(crate::monitors::OpsRulesMonitor {
            applier: state.engine.applier.clone(),
            settings: state.config.engine.clone(),
        }))
        .await;
    if state.analysis.is_enabled() {
        let registry = state.monitors.clone();
        state
            .analysis
            .set_pause_check(move || registry.is_paused(crate::monitors::AnalysisMonitor::NAME));
        monitors
            .register(Arc::new(crate::monitors::AnalysisMonitor {
                analysis: state.analysis.clone(),
            }))
            .await;
        state.analysis.start(&state.tasks, state.shutdown.clone());
    }
    if state.config.server.enable_scheduler {
        monitors
            .register(Arc::new(crate::monitors::DeliveryResumeMonitor {
                runner: state.batches.clone(),
                index: state.index.clone(),
            }))
            .await;
    }
}
