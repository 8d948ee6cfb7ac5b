//! The background tasks the service runs besides its monitors: the strategy loads and
//! their followers, shard ownership, and operational alerts' dispatcher and stream.

use std::time::Duration;

use crate::http::AppState;

/// `SHARD_COUNT=auto`: takes this replica's share of the shards once before the first
/// load (the loader then reads only them), keeps it current, and follows its changes.
pub(super) async fn spawn_sharding(state: &AppState) {
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
    state.tasks.spawn(crate::batches::follow_shards(
        ownership.subscribe(),
        state.loader.clone(),
        state.batches.clone(),
        state.shutdown.clone(),
    ));
    if let Err(error) = coordinator.step().await {
        tracing::warn!(%error, "first shard step failed; retrying");
    }
    state.tasks.spawn(coordinator.run(state.shutdown.clone()));
}

/// Loads the strategies once, retrying with backoff until it succeeds or the service
/// shuts down; `/ready` answers 503 until then.
pub(super) fn spawn_initial_load(state: &AppState) {
    let loader = state.loader.clone();
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let mut delays =
            crate::outbound::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match loader.reload_all().await {
                Ok(_) => return,
                Err(err) => tracing::warn!(error = %err, "initial strategy load failed; retrying"),
            }
            if !delays.pause(&shutdown).await {
                return;
            }
        }
    });
}

/// Operational alerts: the notification dispatcher, and the follower that hands every
/// replica's alert events (through Redis) to this replica's stream clients.
pub(super) fn spawn_alert_tasks(state: &AppState) {
    let settings = &state.config.alerts;
    let dispatcher = crate::ops_alerts::Dispatcher::new(
        state.ops_alerts.clone(),
        state.notifier.clone(),
        settings.routes.clone(),
        settings.timing,
        state.metrics.alerts.clone(),
    );
    state.tasks.spawn(dispatcher.run(state.shutdown.clone()));
    // Posted alerts (DESIGN §18): buffered re-sends written, those past their end resolved.
    state.tasks.spawn(
        state
            .ops_alerts
            .clone()
            .run_posted_upkeep(Duration::from_secs(1), state.shutdown.clone()),
    );
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
