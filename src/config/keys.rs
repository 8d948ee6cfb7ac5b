//! The table of every setting the service reads: its environment name, its default and
//! how `check-config` shows it. The environment layer, the embedded defaults, the list of
//! keys in `.env.example` and the redaction all come from this one table, so adding a
//! setting is one line here, one field in its section's settings and one rule in that
//! section's validator.

/// How a value is shown by `check-config` and the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The value as validated.
    Plain,
    /// `[REDACTED]`: tokens and passwords.
    Secret,
    /// The URL with its password and query string masked.
    Url,
    /// `[REDACTED: n key(s)]`: a comma-separated key list.
    KeyCount,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The environment variable; lower-cased, the key in `monitoring.toml`.
    pub name: &'static str,
    /// The embedded default, the lowest layer; `None`: unset unless given.
    pub default: Option<&'static str>,
    pub shown: Shown,
}

const fn key(name: &'static str, default: Option<&'static str>, shown: Shown) -> Key {
    Key {
        name,
        default,
        shown,
    }
}

use Shown::{KeyCount, Plain, Secret, Url};

/// Every setting, in the order `.env.example` and `check-config` list them.
pub const KEYS: &[Key] = &[
    key("POSTGRES_URL", None, Url),
    key("REDIS_URL", None, Url),
    key("MONITORING_HOST", Some("0.0.0.0"), Plain),
    key("MONITORING_PORT", Some("9000"), Plain),
    key("MONITORING_API_KEY", Some(""), KeyCount),
    key("ENABLE_WEBSOCKETS", Some("true"), Plain),
    key("BINANCE_BASE_URL", Some("https://api.binance.com"), Url),
    key("BINANCE_WS_URL", Some("wss://stream.binance.com:9443"), Url),
    key("COINGECKO_BASE_URL", Some("https://api.coingecko.com"), Url),
    key("ETH_RPC_URL", None, Secret),
    key("TELEGRAM_BOT_TOKEN", None, Secret),
    key("TELEGRAM_API_URL", Some("https://api.telegram.org"), Url),
    key("SMTP_HOST", None, Plain),
    key("SMTP_PORT", Some("587"), Plain),
    key("SMTP_USERNAME", None, Plain),
    key("SMTP_PASSWORD", None, Secret),
    key("SMTP_FROM", None, Plain),
    key("SMTP_TLS", Some("starttls"), Plain),
    key("NOTIFY_ALLOW_PRIVATE_NETWORKS", Some("false"), Plain),
    key("NOTIFY_FIRST_BYTE_TIMEOUT_MS", Some("5000"), Plain),
    key("SHARD_INDEX", Some("0"), Plain),
    key("SHARD_COUNT", Some("1"), Plain),
    key("SHARD_LEASE_SECONDS", Some("15"), Plain),
    key("LOG_FORMAT", Some("json"), Plain),
    key("RUST_LOG", Some("info,sqlx=warn"), Plain),
    key("DB_MAX_CONNECTIONS", Some("16"), Plain),
    key("STARTUP_TIMEOUT_SECONDS", Some("60"), Plain),
    key("SHUTDOWN_TIMEOUT_SECONDS", Some("10"), Plain),
    key("HTTP_REQUEST_TIMEOUT_SECONDS", Some("30"), Plain),
    key("HTTP_BODY_LIMIT_BYTES", Some("1048576"), Plain),
    key("HTTP_HEADER_READ_TIMEOUT_SECONDS", Some("10"), Plain),
    key("MONITORING_MAX_CONNECTIONS", Some("1024"), Plain),
    key("CORS_ALLOWED_ORIGINS", Some(""), Plain),
    key("PRICE_TTL_MS", Some("5000"), Plain),
    key("UPSTREAM_TIMEOUT_MS", Some("5000"), Plain),
    key("UPSTREAM_MAX_RETRIES", Some("2"), Plain),
    key("BINANCE_WEIGHT_BUDGET", Some("4800"), Plain),
    key(
        "PRICE_FALLBACK_COINGECKO_IDS",
        Some(
            "BTCUSDT=bitcoin,ETHUSDT=ethereum,BNBUSDT=binancecoin,SOLUSDT=solana,\
             XRPUSDT=ripple,ADAUSDT=cardano,DOGEUSDT=dogecoin",
        ),
        Plain,
    ),
    key("ENABLE_SCHEDULER", Some("true"), Plain),
    key("CATCH_UP_MAX_PERIODS", Some("10"), Plain),
    key("INTERNAL_RATE_LIMIT_PER_MINUTE", Some("1200"), Plain),
    key("INTERNAL_RATE_LIMIT_BURST", Some("100"), Plain),
    key("ALERT_LOG_DIR", Some("logs/alerts"), Plain),
    key("ALERT_RETENTION_DAYS", Some("90"), Plain),
    key("OPS_ALERT_ROUTES", Some("{}"), Secret),
    key("OPS_ALERT_GROUP_WAIT_SECONDS", Some("30"), Plain),
    key("OPS_ALERT_REPEAT_SECONDS", Some("14400"), Plain),
    key("OPS_ALERT_CLAIM_SECONDS", Some("300"), Plain),
    key("ALERT_STREAM_KEEPALIVE_SECONDS", Some("15"), Plain),
    key("ALERT_STREAM_MAX_SECONDS", Some("3600"), Plain),
    key("ALERT_STREAMS_PER_KEY", Some("16"), Plain),
    key("SILENCE_MAX_DAYS", Some("30"), Plain),
    key("ENGINE_TICKS_RATE_LIMIT_PER_MINUTE", Some("60000"), Plain),
    key("METRICS_RETENTION_DAYS", Some("30"), Plain),
    key("METRICS_SNAPSHOT_INTERVAL", Some("60"), Plain),
    key("METRICS_SNAPSHOT_DIR", Some("data/monitoring"), Plain),
    key("OPS_DAILY_LOSS_PCT", Some("5.0"), Plain),
    key("OPS_MAX_POSITIONS", Some("10"), Plain),
    key("OPS_MAX_TOTAL_EXPOSURE", Some(""), Plain),
    key("OPS_SENTIMENT_MAX_FAILURES", Some("5"), Plain),
    key("OPS_ARTIFACT_MAX_AGE_HOURS", Some("24"), Plain),
    key("OPS_CONNECTIVITY_MAX_SILENCE_SECONDS", Some("300"), Plain),
    key("OPS_HEARTBEAT_LAPSE_SECONDS", Some("180"), Plain),
    key("OPS_EXPECTED_ENGINES", Some(""), Plain),
    key("OPS_TICK_MAX_SKEW_SECONDS", Some("300"), Plain),
    key("HEALTH_TARGETS", Some("[]"), Secret),
    key("HEALTH_CHECK_INTERVAL", Some("60"), Plain),
    key("HEALTH_CHECK_TIMEOUT_MS", Some("5500"), Plain),
    key("HEALTH_LATENCY_DEGRADED_MS", Some("1000"), Plain),
    key("HEALTH_LATENCY_CRITICAL_MS", Some("5000"), Plain),
    key("HEALTH_ALERT_AFTER", Some("2"), Plain),
    key("ANALYSIS_URL", None, Url),
    key("ANALYSIS_API_KEY", None, Secret),
    key("ANALYSIS_TIMEOUT_MS", Some("30000"), Plain),
    key("ANALYSIS_CANDLES", Some("100"), Plain),
    key("ANALYSIS_TRADERS", Some(""), Plain),
    key("ANALYSIS_MAX_CONSECUTIVE_ERRORS", Some("3"), Plain),
    key("ANALYSIS_MAX_CONCURRENCY", Some("8"), Plain),
    key("ANALYSIS_RATE_PER_MINUTE", Some("600"), Plain),
];

/// The setting named `name` (an environment variable name), if there is one.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every environment variable the service reads, in table order.
pub fn env_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}
