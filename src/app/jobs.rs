//! The periodic jobs: each feature's monitor, registered in one line (the job itself
//! lives with its feature).

use std::sync::Arc;

use crate::http::AppState;

/// Platform health: the cycle (on the lease holder) and the emergency-stop follower.
pub(super) async fn spawn_health_tasks(state: &AppState) {
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
        .register(Arc::new(crate::platform_health::PlatformHealthMonitor {
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
pub(super) async fn register_monitors(state: &AppState) {
    let monitors = &state.monitors;
    monitors
        .register(Arc::new(crate::batches::ExpiryMonitor {
            loader: state.loader.clone(),
        }))
        .await;
    monitors
        .register(Arc::new(crate::ops_rules::RetentionMonitor {
            alerts: state.ops_alerts.clone(),
            alert_settings: state.config.alerts.clone(),
            engine_settings: state.config.engine.clone(),
        }))
        .await;
    monitors
        .register(Arc::new(crate::market::CandleRetentionMonitor {
            db: state.db.clone(),
            retention_days: state.config.backtest.candle_retention_days,
        }))
        .await;
    monitors
        .register(Arc::new(crate::ops_rules::OpsRulesMonitor {
            applier: state.engine.applier.clone(),
            settings: state.config.engine.clone(),
        }))
        .await;
    if state.analysis.is_enabled() {
        let registry = state.monitors.clone();
        state
            .analysis
            .set_pause_check(move || registry.is_paused(crate::analysis::AnalysisMonitor::NAME));
        monitors
            .register(Arc::new(crate::analysis::AnalysisMonitor {
                analysis: state.analysis.clone(),
            }))
            .await;
        state.analysis.start(&state.tasks, state.shutdown.clone());
    }
    if state.config.server.enable_scheduler {
        monitors
            .register(Arc::new(crate::trigger::DeliveryResumeMonitor {
                triggers: state.triggers.clone(),
                index: state.index.clone(),
            }))
            .await;
    }
}
