//! Service configuration: what the operator wrote, loaded once and validated as a whole.
//!
//! Layers, lowest first: the defaults embedded below, an optional TOML file
//! (`monitoring.toml`, or the path given with `--config` / `MONITORING_CONFIG`), then the
//! environment with the variable names of DESIGN.md §8. The raw layers deserialize into
//! [`RawConfig`], whose field names are the lower-cased variable names, so one key reads
//! the same in the file and in the environment. [`Config::load`] turns that into a
//! validated [`Config`] or a [`ConfigError`] that names the offending key.
//!
//! Secrets (database and Redis URLs with passwords, API keys, bot tokens, SMTP password,
//! the Ethereum RPC URL, which carries the provider key) are [`SecretString`]s: their
//! `Debug` prints `[REDACTED]`, and [`Config::redacted`] is the only way the effective
//! configuration is ever printed.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every environment variable the service reads, in the order `.env.example` lists them.
pub const ENV_KEYS: &[&str] = &[
    "POSTGRES_URL",
    "REDIS_URL",
    "MONITORING_HOST",
    "MONITORING_PORT",
    "MONITORING_API_KEY",
    "ENABLE_WEBSOCKETS",
    "BINANCE_BASE_URL",
    "BINANCE_WS_URL",
    "COINGECKO_BASE_URL",
    "ETH_RPC_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_TLS",
    "NOTIFY_ALLOW_PRIVATE_NETWORKS",
    "SHARD_INDEX",
    "SHARD_COUNT",
    "LOG_FORMAT",
    "RUST_LOG",
    "DB_MAX_CONNECTIONS",
    "STARTUP_TIMEOUT_SECONDS",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "HTTP_REQUEST_TIMEOUT_SECONDS",
    "HTTP_BODY_LIMIT_BYTES",
    "CORS_ALLOWED_ORIGINS",
    "PRICE_TTL_MS",
    "UPSTREAM_TIMEOUT_MS",
    "UPSTREAM_MAX_RETRIES",
    "BINANCE_WEIGHT_BUDGET",
    "PRICE_FALLBACK_COINGECKO_IDS",
    "ENABLE_SCHEDULER",
    "INTERNAL_RATE_LIMIT_PER_MINUTE",
    "INTERNAL_RATE_LIMIT_BURST",
];

/// The embedded defaults: the lowest configuration layer.
const DEFAULT_TOML: &str = r#"
monitoring_host = "0.0.0.0"
monitoring_port = 9000
monitoring_api_key = ""
enable_websockets = true
binance_base_url = "https://api.binance.com"
binance_ws_url = "wss://stream.binance.com:9443"
coingecko_base_url = "https://api.coingecko.com"
telegram_api_url = "https://api.telegram.org"
smtp_port = 587
smtp_tls = "starttls"
notify_allow_private_networks = false
shard_index = 0
shard_count = 1
log_format = "json"
rust_log = "info,sqlx=warn"
db_max_connections = 16
startup_timeout_seconds = 60
shutdown_timeout_seconds = 10
http_request_timeout_seconds = 30
http_body_limit_bytes = 1048576
cors_allowed_origins = ""
price_ttl_ms = 5000
upstream_timeout_ms = 5000
upstream_max_retries = 2
binance_weight_budget = 4800
enable_scheduler = true
internal_rate_limit_per_minute = 1200
internal_rate_limit_burst = 100
price_fallback_coingecko_ids = "BTCUSDT=bitcoin,ETHUSDT=ethereum,BNBUSDT=binancecoin,SOLUSDT=solana,XRPUSDT=ripple,ADAUSDT=cardano,DOGEUSDT=dogecoin"
"#;

/// The configuration layers as written, before validation. Field names are the
/// lower-cased environment variable names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    postgres_url: Option<SecretString>,
    redis_url: Option<SecretString>,
    monitoring_host: String,
    #[serde(deserialize_with = "lenient::number")]
    monitoring_port: u16,
    monitoring_api_key: SecretString,
    #[serde(deserialize_with = "lenient::flag")]
    enable_websockets: bool,
    binance_base_url: String,
    binance_ws_url: String,
    coingecko_base_url: String,
    eth_rpc_url: Option<SecretString>,
    telegram_bot_token: Option<SecretString>,
    telegram_api_url: String,
    smtp_host: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    smtp_port: u16,
    smtp_username: Option<String>,
    smtp_password: Option<SecretString>,
    smtp_from: Option<String>,
    smtp_tls: String,
    #[serde(deserialize_with = "lenient::flag")]
    notify_allow_private_networks: bool,
    #[serde(deserialize_with = "lenient::number")]
    shard_index: u32,
    #[serde(deserialize_with = "lenient::number")]
    shard_count: u32,
    log_format: String,
    rust_log: String,
    #[serde(deserialize_with = "lenient::number")]
    db_max_connections: u32,
    #[serde(deserialize_with = "lenient::number")]
    startup_timeout_seconds: u64,
    #[serde(deserialize_with = "lenient::number")]
    shutdown_timeout_seconds: u64,
    #[serde(deserialize_with = "lenient::number")]
    http_request_timeout_seconds: u64,
    #[serde(deserialize_with = "lenient::number")]
    http_body_limit_bytes: usize,
    cors_allowed_origins: String,
    #[serde(deserialize_with = "lenient::number")]
    price_ttl_ms: u64,
    #[serde(deserialize_with = "lenient::number")]
    upstream_timeout_ms: u64,
    #[serde(deserialize_with = "lenient::number")]
    upstream_max_retries: u32,
    #[serde(deserialize_with = "lenient::number")]
    binance_weight_budget: u32,
    price_fallback_coingecko_ids: String,
    #[serde(deserialize_with = "lenient::flag")]
    enable_scheduler: bool,
    #[serde(deserialize_with = "lenient::number")]
    internal_rate_limit_per_minute: u32,
    #[serde(deserialize_with = "lenient::number")]
    internal_rate_limit_burst: u32,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log shippers (the container default).
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, which is required (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    /// The `SMTP_TLS` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }
}

/// SMTP settings, present only when `SMTP_HOST` is set.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    pub tls: SmtpTls,
}

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub postgres_url: SecretString,
    pub redis_url: Option<SecretString>,
    pub host: IpAddr,
    pub port: u16,
    pub api_keys: Vec<SecretString>,
    pub enable_websockets: bool,
    pub binance_base_url: String,
    pub binance_ws_url: String,
    pub coingecko_base_url: String,
    pub eth_rpc_url: Option<SecretString>,
    pub telegram_bot_token: Option<SecretString>,
    pub telegram_api_url: String,
    pub smtp: Option<SmtpConfig>,
    pub notify_allow_private_networks: bool,
    pub shard_index: u32,
    pub shard_count: u32,
    pub log_format: LogFormat,
    pub rust_log: String,
    pub db_max_connections: u32,
    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub http_request_timeout: Duration,
    pub http_body_limit_bytes: usize,
    pub cors_allowed_origins: Vec<String>,
    /// How long a fetched spot price is reused; below the smallest frequency (10 s).
    pub price_ttl: Duration,
    pub upstream_timeout: Duration,
    pub upstream_max_retries: u32,
    /// Our share of Binance's 6,000 request weight per minute.
    pub binance_weight_budget: u32,
    /// Binance symbol → CoinGecko id: who answers when Binance fails.
    pub price_fallback_coingecko_ids: Vec<(String, String)>,
    /// Run batches on their schedule (off: only `POST /internal/run/{frequency}`).
    pub enable_scheduler: bool,
    /// Requests per minute and API key on `/internal/*`, after a burst of
    /// `internal_rate_limit_burst`; 0 = unlimited.
    pub internal_rate_limit_per_minute: u32,
    pub internal_rate_limit_burst: u32,
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

/// Where the optional TOML layer is read from when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "monitoring.toml";

impl Config {
    /// Loads defaults < TOML file < process environment and validates the result.
    ///
    /// `file` is an explicit TOML path that must exist; without it `monitoring.toml`
    /// in the working directory is read if present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| ENV_KEYS.contains(&key.as_str()))
            .collect();
        Self::load_from_vars(file, vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Loads defaults < TOML file < the given variables instead of the process
    /// environment (for tests and tools that must not depend on ambient state).
    pub fn load_from_vars<'a>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Self::figment(file)?;
        for (key, value) in vars {
            if !ENV_KEYS.contains(&key) {
                continue;
            }
            // Values stay exact strings (figment's `Env` would turn a password `007`
            // into the number 7); numeric and boolean keys parse them in `lenient`.
            figment = figment.merge(Serialized::default(&key.to_ascii_lowercase(), value));
        }
        Self::from_figment(figment)
    }

    fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::new(
                    "MONITORING_CONFIG",
                    format!("config file {} does not exist", path.display()),
                ));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        Ok(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(figment_error)?;
        raw.validate()
    }

    /// The effective configuration as `KEY=value` lines, secrets shown as `[REDACTED]`
    /// (or `[unset]`), for `check-config` and the startup log.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        fn secret(value: &Option<SecretString>) -> String {
            match value {
                Some(_) => "[REDACTED]".to_owned(),
                None => "[unset]".to_owned(),
            }
        }
        fn plain(value: &Option<String>) -> String {
            value.clone().unwrap_or_else(|| "[unset]".to_owned())
        }
        let smtp = self.smtp.as_ref();
        vec![
            (
                "POSTGRES_URL",
                redact_url(self.postgres_url.expose_secret()),
            ),
            (
                "REDIS_URL",
                self.redis_url
                    .as_ref()
                    .map_or_else(|| "[unset]".to_owned(), |u| redact_url(u.expose_secret())),
            ),
            ("MONITORING_HOST", self.host.to_string()),
            ("MONITORING_PORT", self.port.to_string()),
            (
                "MONITORING_API_KEY",
                format!("[REDACTED: {} key(s)]", self.api_keys.len()),
            ),
            ("ENABLE_WEBSOCKETS", self.enable_websockets.to_string()),
            ("BINANCE_BASE_URL", self.binance_base_url.clone()),
            ("BINANCE_WS_URL", self.binance_ws_url.clone()),
            ("COINGECKO_BASE_URL", self.coingecko_base_url.clone()),
            ("ETH_RPC_URL", secret(&self.eth_rpc_url)),
            ("TELEGRAM_BOT_TOKEN", secret(&self.telegram_bot_token)),
            ("TELEGRAM_API_URL", self.telegram_api_url.clone()),
            ("SMTP_HOST", plain(&smtp.map(|s| s.host.clone()))),
            (
                "SMTP_PORT",
                smtp.map_or_else(|| "[unset]".to_owned(), |s| s.port.to_string()),
            ),
            (
                "SMTP_USERNAME",
                plain(&smtp.and_then(|s| s.username.clone())),
            ),
            (
                "SMTP_PASSWORD",
                secret(&smtp.and_then(|s| s.password.clone())),
            ),
            ("SMTP_FROM", plain(&smtp.map(|s| s.from.clone()))),
            (
                "SMTP_TLS",
                smtp.map_or_else(|| "[unset]".to_owned(), |s| s.tls.as_str().to_owned()),
            ),
            (
                "NOTIFY_ALLOW_PRIVATE_NETWORKS",
                self.notify_allow_private_networks.to_string(),
            ),
            ("SHARD_INDEX", self.shard_index.to_string()),
            ("SHARD_COUNT", self.shard_count.to_string()),
            (
                "LOG_FORMAT",
                match self.log_format {
                    LogFormat::Json => "json",
                    LogFormat::Pretty => "pretty",
                }
                .to_owned(),
            ),
            ("RUST_LOG", self.rust_log.clone()),
            ("DB_MAX_CONNECTIONS", self.db_max_connections.to_string()),
            (
                "STARTUP_TIMEOUT_SECONDS",
                self.startup_timeout.as_secs().to_string(),
            ),
            (
                "SHUTDOWN_TIMEOUT_SECONDS",
                self.shutdown_timeout.as_secs().to_string(),
            ),
            (
                "HTTP_REQUEST_TIMEOUT_SECONDS",
                self.http_request_timeout.as_secs().to_string(),
            ),
            (
                "HTTP_BODY_LIMIT_BYTES",
                self.http_body_limit_bytes.to_string(),
            ),
            ("CORS_ALLOWED_ORIGINS", self.cors_allowed_origins.join(",")),
            ("PRICE_TTL_MS", self.price_ttl.as_millis().to_string()),
            (
                "UPSTREAM_TIMEOUT_MS",
                self.upstream_timeout.as_millis().to_string(),
            ),
            (
                "UPSTREAM_MAX_RETRIES",
                self.upstream_max_retries.to_string(),
            ),
            (
                "BINANCE_WEIGHT_BUDGET",
                self.binance_weight_budget.to_string(),
            ),
            (
                "PRICE_FALLBACK_COINGECKO_IDS",
                self.price_fallback_coingecko_ids
                    .iter()
                    .map(|(s, id)| format!("{s}={id}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("ENABLE_SCHEDULER", self.enable_scheduler.to_string()),
            (
                "INTERNAL_RATE_LIMIT_PER_MINUTE",
                self.internal_rate_limit_per_minute.to_string(),
            ),
            (
                "INTERNAL_RATE_LIMIT_BURST",
                self.internal_rate_limit_burst.to_string(),
            ),
        ]
    }

    /// The socket address the HTTP server binds.
    pub fn bind_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.host, self.port)
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let postgres_url = self
            .postgres_url
            .filter(|url| !url.expose_secret().trim().is_empty())
            .ok_or_else(|| ConfigError::new("POSTGRES_URL", "is required"))?;
        require_scheme(
            "POSTGRES_URL",
            postgres_url.expose_secret(),
            &["postgres", "postgresql"],
        )?;
        let redis_url = self
            .redis_url
            .filter(|url| !url.expose_secret().trim().is_empty());
        if let Some(url) = &redis_url {
            require_scheme(
                "REDIS_URL",
                url.expose_secret(),
                &["redis", "rediss", "redis+unix", "unix"],
            )?;
        }
        let host: IpAddr = self.monitoring_host.trim().parse().map_err(|_| {
            ConfigError::new("MONITORING_HOST", "must be an IP address such as 0.0.0.0")
        })?;
        let api_keys: Vec<SecretString> = self
            .monitoring_api_key
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| SecretString::from(key.to_owned()))
            .collect();
        if let Some(short) = api_keys.iter().find(|k| k.expose_secret().len() < 16) {
            // Name the length, never the key.
            return Err(ConfigError::new(
                "MONITORING_API_KEY",
                format!(
                    "each key must be at least 16 characters (one has {})",
                    short.expose_secret().len()
                ),
            ));
        }
        require_scheme(
            "BINANCE_BASE_URL",
            &self.binance_base_url,
            &["http", "https"],
        )?;
        require_scheme("BINANCE_WS_URL", &self.binance_ws_url, &["ws", "wss"])?;
        require_scheme(
            "COINGECKO_BASE_URL",
            &self.coingecko_base_url,
            &["http", "https"],
        )?;
        require_scheme(
            "TELEGRAM_API_URL",
            &self.telegram_api_url,
            &["http", "https"],
        )?;
        let eth_rpc_url = self
            .eth_rpc_url
            .filter(|url| !url.expose_secret().trim().is_empty());
        if let Some(url) = &eth_rpc_url {
            require_scheme("ETH_RPC_URL", url.expose_secret(), &["http", "https"])?;
        }
        let telegram_bot_token = self
            .telegram_bot_token
            .filter(|token| !token.expose_secret().trim().is_empty());
        let smtp = match self.smtp_host.filter(|h| !h.trim().is_empty()) {
            None => None,
            Some(host) => {
                let from = self.smtp_from.filter(|f| f.contains('@')).ok_or_else(|| {
                    ConfigError::new(
                        "SMTP_FROM",
                        "must be an email address when SMTP_HOST is set",
                    )
                })?;
                if self.smtp_port == 0 {
                    return Err(ConfigError::new("SMTP_PORT", "must be between 1 and 65535"));
                }
                let tls = match self.smtp_tls.trim().to_ascii_lowercase().as_str() {
                    "starttls" => SmtpTls::StartTls,
                    "tls" => SmtpTls::Tls,
                    "none" => SmtpTls::None,
                    _ => {
                        return Err(ConfigError::new(
                            "SMTP_TLS",
                            "must be one of starttls, tls, none",
                        ));
                    }
                };
                Some(SmtpConfig {
                    host,
                    port: self.smtp_port,
                    username: self.smtp_username.filter(|u| !u.is_empty()),
                    password: self.smtp_password.filter(|p| !p.expose_secret().is_empty()),
                    from,
                    tls,
                })
            }
        };
        if self.shard_count == 0 {
            return Err(ConfigError::new("SHARD_COUNT", "must be at least 1"));
        }
        if self.shard_index >= self.shard_count {
            return Err(ConfigError::new(
                "SHARD_INDEX",
                format!("must be less than SHARD_COUNT ({})", self.shard_count),
            ));
        }
        let log_format = match self.log_format.trim().to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            _ => return Err(ConfigError::new("LOG_FORMAT", "must be `json` or `pretty`")),
        };
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.rust_log) {
            return Err(ConfigError::new(
                "RUST_LOG",
                format!("not a valid filter: {err}"),
            ));
        }
        if !(1..=1000).contains(&self.db_max_connections) {
            return Err(ConfigError::new(
                "DB_MAX_CONNECTIONS",
                "must be between 1 and 1000",
            ));
        }
        let seconds = |key: &str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {max}"),
                ))
            }
        };
        let startup_timeout = seconds(
            "STARTUP_TIMEOUT_SECONDS",
            self.startup_timeout_seconds,
            3600,
        )?;
        let shutdown_timeout = seconds(
            "SHUTDOWN_TIMEOUT_SECONDS",
            self.shutdown_timeout_seconds,
            300,
        )?;
        let http_request_timeout = seconds(
            "HTTP_REQUEST_TIMEOUT_SECONDS",
            self.http_request_timeout_seconds,
            600,
        )?;
        if !(1024..=64 * 1024 * 1024).contains(&self.http_body_limit_bytes) {
            return Err(ConfigError::new(
                "HTTP_BODY_LIMIT_BYTES",
                "must be between 1024 and 67108864",
            ));
        }
        let cors_allowed_origins: Vec<String> = self
            .cors_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        for origin in &cors_allowed_origins {
            require_scheme("CORS_ALLOWED_ORIGINS", origin, &["http", "https"])?;
        }
        if !(100..=9_000).contains(&self.price_ttl_ms) {
            return Err(ConfigError::new(
                "PRICE_TTL_MS",
                "must be between 100 and 9000 (below the smallest frequency, 10s)",
            ));
        }
        if !(100..=60_000).contains(&self.upstream_timeout_ms) {
            return Err(ConfigError::new(
                "UPSTREAM_TIMEOUT_MS",
                "must be between 100 and 60000",
            ));
        }
        if self.upstream_max_retries > 10 {
            return Err(ConfigError::new(
                "UPSTREAM_MAX_RETRIES",
                "must be between 0 and 10",
            ));
        }
        if !(10..=6_000).contains(&self.binance_weight_budget) {
            return Err(ConfigError::new(
                "BINANCE_WEIGHT_BUDGET",
                "must be between 10 and 6000 (Binance allows 6000 per minute and IP)",
            ));
        }
        if self.internal_rate_limit_per_minute > 0 && self.internal_rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "INTERNAL_RATE_LIMIT_BURST",
                "must be at least 1 when INTERNAL_RATE_LIMIT_PER_MINUTE is set",
            ));
        }
        let mut price_fallback_coingecko_ids = Vec::new();
        for pair in self
            .price_fallback_coingecko_ids
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let parsed = pair.split_once('=').filter(|(symbol, id)| {
                crate::market::Source::Binance.check_symbol(symbol).is_ok()
                    && crate::market::Source::Coingecko.check_symbol(id).is_ok()
            });
            let Some((symbol, id)) = parsed else {
                return Err(ConfigError::new(
                    "PRICE_FALLBACK_COINGECKO_IDS",
                    "must be comma-separated SYMBOL=coin-id pairs such as BTCUSDT=bitcoin",
                ));
            };
            price_fallback_coingecko_ids.push((symbol.to_owned(), id.to_owned()));
        }

        Ok(Config {
            postgres_url,
            redis_url,
            host,
            port: self.monitoring_port,
            api_keys,
            enable_websockets: self.enable_websockets,
            binance_base_url: trim_slash(self.binance_base_url),
            binance_ws_url: trim_slash(self.binance_ws_url),
            coingecko_base_url: trim_slash(self.coingecko_base_url),
            eth_rpc_url,
            telegram_bot_token,
            telegram_api_url: trim_slash(self.telegram_api_url),
            smtp,
            notify_allow_private_networks: self.notify_allow_private_networks,
            shard_index: self.shard_index,
            shard_count: self.shard_count,
            log_format,
            rust_log: self.rust_log,
            db_max_connections: self.db_max_connections,
            startup_timeout,
            shutdown_timeout,
            http_request_timeout,
            http_body_limit_bytes: self.http_body_limit_bytes,
            cors_allowed_origins,
            price_ttl: Duration::from_millis(self.price_ttl_ms),
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms),
            upstream_max_retries: self.upstream_max_retries,
            binance_weight_budget: self.binance_weight_budget,
            price_fallback_coingecko_ids,
            enable_scheduler: self.enable_scheduler,
            internal_rate_limit_per_minute: self.internal_rate_limit_per_minute,
            internal_rate_limit_burst: self.internal_rate_limit_burst,
        })
    }
}

fn trim_slash(mut url: String) -> String {
    while url.ends_with('/') {
        url.pop();
    }
    url
}

/// Checks that `value` looks like `scheme://rest` with one of the allowed schemes.
/// The message never repeats the value: URLs carry passwords and provider keys.
fn require_scheme(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let expected = || {
        ConfigError::new(
            key,
            format!("must be a URL starting with {}://", schemes.join("://, ")),
        )
    };
    let (scheme, rest) = value.trim().split_once("://").ok_or_else(expected)?;
    if !schemes.contains(&scheme.to_ascii_lowercase().as_str()) || rest.is_empty() {
        return Err(expected());
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(key, "must not contain spaces"));
    }
    Ok(())
}

/// A URL with its password (and any query string, where providers put keys) masked.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[REDACTED]".to_owned();
    };
    let (authority_and_path, had_query) = match rest.split_once('?') {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let (authority, path) = match authority_and_path.find('/') {
        Some(i) => authority_and_path.split_at(i),
        None => (authority_and_path, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{user}:[REDACTED]@{host}")
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    let query = if had_query { "?[REDACTED]" } else { "" };
    format!("{scheme}://{authority}{path}{query}")
}

/// Maps a figment extraction error to the environment variable it concerns. The value
/// is never echoed back.
fn figment_error(err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let key = err
        .path
        .last()
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_else(|| "MONITORING_CONFIG".to_owned());
    let message = match &err.kind {
        Kind::InvalidType(_, expected) => format!("invalid value: expected {expected}"),
        Kind::InvalidValue(_, expected) => format!("invalid value: expected {expected}"),
        Kind::MissingField(field) => {
            return ConfigError::new(&field.to_ascii_uppercase(), "is required");
        }
        Kind::UnknownField(field, _) => {
            return ConfigError::new(&field.to_ascii_uppercase(), "is not a known setting");
        }
        // A TOML syntax error (names the line), or one of `lenient`'s messages: neither
        // repeats the value.
        Kind::Message(msg) => msg.clone(),
        _ => "invalid value".to_owned(),
    };
    ConfigError { key, message }
}

/// Deserializers for numeric and boolean keys that accept the typed value (TOML) or its
/// text (environment). Their messages never repeat the value.
mod lenient {
    use std::str::FromStr;

    use serde::de::{Deserialize, Deserializer, Error};

    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum TypedOrText<T> {
        Typed(T),
        Text(String),
    }

    pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr + Deserialize<'de>,
    {
        match TypedOrText::<T>::deserialize(deserializer)
            .map_err(|_| D::Error::custom("expected a whole number"))?
        {
            TypedOrText::Typed(value) => Ok(value),
            TypedOrText::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| D::Error::custom("expected a whole number in range")),
        }
    }

    pub fn flag<'de, D>(deserializer: D) -> Result<bool, D::Error>
    where
        D: Deserializer<'de>,
    {
        let expected = || D::Error::custom("expected true or false");
        match TypedOrText::<bool>::deserialize(deserializer).map_err(|_| expected())? {
            TypedOrText::Typed(value) => Ok(value),
            TypedOrText::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(expected()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = "postgres://svc:hunter2@localhost:5432/monitoring";

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_from_vars(None, vars.iter().copied())
    }

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let config = load(&[("POSTGRES_URL", PG)]).unwrap();
        assert_eq!(config.bind_address().to_string(), "0.0.0.0:9000");
        assert!(config.redis_url.is_none());
        assert!(config.api_keys.is_empty());
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!((config.shard_index, config.shard_count), (0, 1));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_missing_database_url_names_the_key() {
        let err = load(&[]).unwrap_err();
        assert_eq!(err.key, "POSTGRES_URL");
        assert_eq!(err.to_string(), "POSTGRES_URL: is required");
    }

    #[test]
    fn a_wrongly_typed_port_names_the_key_without_the_value() {
        let err = load(&[("POSTGRES_URL", PG), ("MONITORING_PORT", "ninety")]).unwrap_err();
        assert_eq!(err.key, "MONITORING_PORT");
        assert!(!err.to_string().contains("ninety"), "{err}");
    }

    #[test]
    fn a_bad_database_url_is_rejected_without_echoing_the_password() {
        let err = load(&[("POSTGRES_URL", "mysql://u:hunter2@h/db")]).unwrap_err();
        assert_eq!(err.key, "POSTGRES_URL");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn api_keys_are_split_trimmed_and_must_be_long_enough() {
        let config = load(&[
            ("POSTGRES_URL", PG),
            (
                "MONITORING_API_KEY",
                " key-one-0123456789, key-two-0123456789 ,",
            ),
        ])
        .unwrap();
        let keys: Vec<_> = config.api_keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(keys, ["key-one-0123456789", "key-two-0123456789"]);

        let err = load(&[("POSTGRES_URL", PG), ("MONITORING_API_KEY", "short")]).unwrap_err();
        assert_eq!(err.key, "MONITORING_API_KEY");
        assert!(!err.message.contains("short"));
    }

    #[test]
    fn environment_strings_stay_exact_and_flags_parse() {
        let config = load(&[
            ("POSTGRES_URL", PG),
            ("TELEGRAM_BOT_TOKEN", "007"),
            ("ENABLE_WEBSOCKETS", "false"),
            ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "1"),
        ])
        .unwrap();
        assert_eq!(config.telegram_bot_token.unwrap().expose_secret(), "007");
        assert!(!config.enable_websockets);
        assert!(config.notify_allow_private_networks);
        let err = load(&[("POSTGRES_URL", PG), ("ENABLE_WEBSOCKETS", "maybe")]).unwrap_err();
        assert_eq!(err.to_string(), "ENABLE_WEBSOCKETS: expected true or false");
        let err = load(&[("POSTGRES_URL", PG), ("MONITORING_PORT", "70000")]).unwrap_err();
        assert_eq!(err.key, "MONITORING_PORT");
    }

    #[test]
    fn shard_index_must_be_below_shard_count() {
        let err = load(&[
            ("POSTGRES_URL", PG),
            ("SHARD_INDEX", "3"),
            ("SHARD_COUNT", "3"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "SHARD_INDEX");
        let err = load(&[("POSTGRES_URL", PG), ("SHARD_COUNT", "0")]).unwrap_err();
        assert_eq!(err.key, "SHARD_COUNT");
    }

    #[test]
    fn log_format_and_filter_are_checked() {
        assert_eq!(
            load(&[("POSTGRES_URL", PG), ("LOG_FORMAT", "xml")])
                .unwrap_err()
                .key,
            "LOG_FORMAT"
        );
        assert_eq!(
            load(&[("POSTGRES_URL", PG), ("RUST_LOG", "info,[[[")])
                .unwrap_err()
                .key,
            "RUST_LOG"
        );
    }

    #[test]
    fn the_internal_rate_limit_needs_a_burst() {
        let err = load(&[
            ("POSTGRES_URL", PG),
            ("INTERNAL_RATE_LIMIT_PER_MINUTE", "60"),
            ("INTERNAL_RATE_LIMIT_BURST", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "INTERNAL_RATE_LIMIT_BURST");
        let unlimited = load(&[
            ("POSTGRES_URL", PG),
            ("INTERNAL_RATE_LIMIT_PER_MINUTE", "0"),
            ("INTERNAL_RATE_LIMIT_BURST", "0"),
        ])
        .unwrap();
        assert_eq!(unlimited.internal_rate_limit_per_minute, 0);
    }

    #[test]
    fn smtp_needs_a_sender_when_a_host_is_set() {
        let err = load(&[("POSTGRES_URL", PG), ("SMTP_HOST", "mail.local")]).unwrap_err();
        assert_eq!(err.key, "SMTP_FROM");
        let config = load(&[
            ("POSTGRES_URL", PG),
            ("SMTP_HOST", "mail.local"),
            ("SMTP_FROM", "alerts@example.com"),
            ("SMTP_PASSWORD", "12345"),
        ])
        .unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!(smtp.port, 587);
        assert_eq!(
            smtp.tls,
            SmtpTls::StartTls,
            "encrypted unless told otherwise"
        );
        assert_eq!(smtp.password.unwrap().expose_secret(), "12345");
        let err = load(&[
            ("POSTGRES_URL", PG),
            ("SMTP_HOST", "mail.local"),
            ("SMTP_FROM", "alerts@example.com"),
            ("SMTP_TLS", "ssl3"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "SMTP_TLS");
    }

    #[test]
    fn the_toml_file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("monitoring-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("monitoring.toml");
        std::fs::write(
            &file,
            "monitoring_port = 9100\nshard_count = 4\npostgres_url = \"postgres://h/db\"\n",
        )
        .unwrap();
        let config = Config::load_from_vars(Some(&file), [("MONITORING_PORT", "9200")]).unwrap();
        assert_eq!(config.port, 9200, "environment wins over the file");
        assert_eq!(config.shard_count, 4, "file wins over defaults");

        std::fs::write(&file, "monitoring_prot = 1\n").unwrap();
        let err = Config::load_from_vars(Some(&file), [("POSTGRES_URL", PG)]).unwrap_err();
        assert_eq!(err.key, "MONITORING_PROT");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redacted_output_never_contains_secrets() {
        let config = load(&[
            ("POSTGRES_URL", PG),
            ("REDIS_URL", "redis://:redispass@localhost:6379/0"),
            ("MONITORING_API_KEY", "super-secret-key-123456"),
            ("TELEGRAM_BOT_TOKEN", "123:telegram-token"),
            ("ETH_RPC_URL", "https://eth.example/v2/alchemy-key"),
        ])
        .unwrap();
        let printed = format!("{:?} {:?}", config, config.redacted());
        for secret in [
            "hunter2",
            "redispass",
            "super-secret-key",
            "telegram-token",
            "alchemy-key",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        let redacted: std::collections::HashMap<_, _> = config.redacted().into_iter().collect();
        assert_eq!(
            redacted["POSTGRES_URL"],
            "postgres://svc:[REDACTED]@localhost:5432/monitoring"
        );
    }

    #[test]
    fn every_env_key_is_printed_by_redacted() {
        let config = load(&[("POSTGRES_URL", PG)]).unwrap();
        let printed: Vec<_> = config.redacted().into_iter().map(|(k, _)| k).collect();
        assert_eq!(printed, ENV_KEYS);
    }

    #[test]
    fn env_example_lists_exactly_the_keys_read() {
        let listed: Vec<&str> = include_str!("../.env.example")
            .lines()
            .filter(|line| !line.starts_with('#') && line.contains('='))
            .map(|line| line.split('=').next().unwrap())
            .collect();
        let mut expected = ENV_KEYS.to_vec();
        let mut listed_sorted = listed.clone();
        expected.sort_unstable();
        listed_sorted.sort_unstable();
        assert_eq!(listed_sorted, expected);
    }

    #[test]
    fn redact_url_masks_passwords_and_queries() {
        assert_eq!(
            redact_url("redis://localhost:6379"),
            "redis://localhost:6379"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?sslmode=require&password=x"),
            "postgres://u:[REDACTED]@h/db?[REDACTED]"
        );
        assert_eq!(redact_url("not a url"), "[REDACTED]");
    }
}
