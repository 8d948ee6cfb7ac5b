//! Storage: the Postgres pool with its embedded migrations, the optional Redis
//! connection, and one module per table holding all of that table's SQL
//! ([`strategy_state`], [`trigger_logs`], [`ledger`], [`leases`], [`ops_alerts`],
//! [`ops_alert_notifications`], [`ops_alert_events`], [`ops_silences`], [`engine_metrics`],
//! [`engine_state`], [`alert_thresholds`], [`health_snapshots`], [`replicas`]; the `strategies` and
//! `strategy_conditions` tables live with their rows' types in `strategy::store`).
//! Postgres and Redis are connected with a bounded retry at startup so that the
//! service can start before its dependencies in an orchestrator, and give up with a
//! clear message instead of hanging.

pub mod alert_thresholds;
pub mod candles;
pub mod engine_metrics;
pub mod engine_state;
pub mod health_snapshots;
pub mod leases;
pub mod ledger;
pub mod monitor_heartbeat;
pub mod monitoring_decisions;
pub mod ops_alert_events;
pub mod ops_alert_notifications;
pub mod ops_alerts;
pub mod ops_silences;
pub mod postgres;
pub mod redis;
pub mod replicas;
mod startup_retry;
pub mod strategy_state;
pub mod trigger_logs;
pub mod workflow_schedules;

pub use startup_retry::StartupError;

use secrecy::SecretString;

/// Where the service keeps its data.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `POSTGRES_URL` (a secret: it may carry a password).
    pub postgres_url: SecretString,
    /// `REDIS_URL`; `None`: caches and pub/sub are in-process (one replica only).
    pub redis_url: Option<SecretString>,
    /// `DB_MAX_CONNECTIONS`: the pool's size.
    pub max_connections: u32,
}
