//! Service configuration: what the operator wrote, loaded once and validated as a whole.
//!
//! Layers, lowest first: the defaults of the key table ([`keys::KEYS`]), an optional
//! TOML file (`monitoring.toml`, or the path given with `--config` /
//! `MONITORING_CONFIG`), then the environment with the variable names of DESIGN.md §8
//! (in the file, the same names lower-cased). One validator per section
//! ([`sections`]) turns them into the settings type of the component that uses them —
//! [`MarketConfig`] for market data, [`NotifierSettings`] for notifications,
//! [`DatabaseSettings`] for storage — or a [`ConfigError`] naming the key.
//!
//! Adding a setting: one line in [`keys::KEYS`] (name, default, how it is shown), one
//! field in its section's settings type, one rule in its section's validator.
//!
//! Secrets (database and Redis URLs with passwords, API keys, bot tokens, the SMTP
//! password, the Ethereum RPC URL, which carries the provider key) are
//! [`SecretString`]s: their `Debug` prints `[REDACTED]`, and [`Config::redacted`], which
//! shows each key as its table entry says, is the only way the effective configuration
//! is ever printed.

pub mod keys;
mod reader;
mod sections;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

pub use keys::env_keys;
pub use reader::{DEFAULT_CONFIG_FILE, redact_url};

use crate::market::MarketConfig;
use crate::notify::NotifierSettings;
use crate::storage::DatabaseSettings;
use crate::strategy::Shard;
use crate::telemetry::LogSettings;
use reader::Reader;

/// The HTTP server, the operator API and the process lifecycle.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Accepted `X-MONITORING-KEY` values (several, for rotation).
    pub api_keys: Vec<SecretString>,
    /// How long startup retries Postgres and Redis.
    pub startup_timeout: Duration,
    /// How long shutdown waits for requests and background work.
    pub shutdown_timeout: Duration,
    pub http_request_timeout: Duration,
    pub http_body_limit_bytes: usize,
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS`: for a request's headers, and for an idle
    /// connection's next request.
    pub header_read_timeout: Duration,
    /// `MONITORING_MAX_CONNECTIONS`: open client connections at most.
    pub max_connections: usize,
    pub cors_allowed_origins: Vec<String>,
    /// Run batches on their schedule (off: only `POST /internal/run/{frequency}`).
    pub enable_scheduler: bool,
    /// `CATCH_UP_MAX_PERIODS`: missed periods of a strategy evaluated afterwards.
    pub catch_up_max_periods: usize,
    /// Requests per minute and API key on `/internal/*`, after a burst of
    /// `internal_rate_limit_burst`; 0 = unlimited.
    pub internal_rate_limit_per_minute: u32,
    pub internal_rate_limit_burst: u32,
}

/// The validated configuration the service runs with, by section.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub market: MarketConfig,
    pub notify: NotifierSettings,
    pub shard: Shard,
    /// `SHARD_COUNT=auto`: shards follow the live replicas by lease.
    pub auto_shard: Option<crate::sharding::AutoSharding>,
    pub log: LogSettings,
    pub alerts: crate::ops_alerts::AlertSettings,
    pub engine: crate::ops_rules::EngineSettings,
    pub health: crate::platform_health::HealthSettings,
    pub analysis: crate::analysis::AnalysisSettings,
    pub backtest: crate::backtest::BacktestSettings,
    /// Every key as `check-config` shows it (secrets redacted).
    shown: Vec<(&'static str, String)>,
}

/// A configuration problem, naming the key (as its environment variable) and what is
/// wrong. Never carries the offending value: it may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Loads defaults < TOML file < process environment and validates the result.
    ///
    /// `file` is an explicit TOML path that must exist; without it `monitoring.toml`
    /// in the working directory is read if present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| keys::find(key).is_some())
            .collect();
        Self::load_from_vars(file, vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Loads defaults < TOML file < the given variables instead of the process
    /// environment (for tests and tools that must not depend on ambient state).
    pub fn load_from_vars<'a>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut r = Reader::layered(file, vars)?;
        let database = sections::database(&mut r)?;
        let server = sections::server(&mut r)?;
        let market = sections::market(&mut r)?;
        let notify = sections::notify(&mut r)?;
        let (shard, auto_shard) = sections::shard(&mut r)?;
        let log = sections::logging(&mut r)?;
        let alerts = sections::alerts(&mut r)?;
        let engine = sections::engine(&mut r)?;
        let health = sections::health(&mut r)?;
        let analysis = sections::analysis(&mut r)?;
        let backtest = sections::backtest(&mut r)?;
        Ok(Self {
            analysis,
            backtest,
            alerts,
            engine,
            health,
            database,
            server,
            market,
            notify,
            shard,
            auto_shard,
            log,
            shown: r.into_shown(),
        })
    }

    /// The effective configuration as `(KEY, value)` pairs in table order, secrets
    /// shown as `[REDACTED]` (or `[unset]`), for `check-config` and the startup log.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        self.shown.clone()
    }

    /// The socket address the HTTP server binds.
    pub fn bind_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.server.host, self.server.port)
    }
}
