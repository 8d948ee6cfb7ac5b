//! The table of every setting the service reads: its environment name, its default, how
//! `check-config` shows it and what it means. The environment layer, the embedded
//! defaults, the list of keys in `.env.example`, the configuration reference in
//! `docs/configuration.md` and the redaction all come from this one table, so adding a
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
    /// What it means, for the configuration reference (`docs/configuration.md`).
    pub help: &'static str,
}

const fn key(
    name: &'static str,
    default: Option<&'static str>,
    shown: Shown,
    help: &'static str,
) -> Key {
    Key {
        name,
        default,
        shown,
        help,
    }
}

use Shown::{KeyCount, Plain, Secret, Url};

/// Every setting, in the order `.env.example` and `check-config` list them.
pub const KEYS: &[Key] = &[
    key(
        "POSTGRES_URL",
        None,
        Url,
        "Postgres connection URL (required)",
    ),
    key(
        "REDIS_URL",
        None,
        Url,
        "Redis URL; unset = in-process caches and pub/sub (single replica)",
    ),
    key(
        "MONITORING_HOST",
        Some("0.0.0.0"),
        Plain,
        "the address to listen on",
    ),
    key(
        "MONITORING_PORT",
        Some("9000"),
        Plain,
        "the port to listen on",
    ),
    key(
        "MONITORING_API_KEY",
        Some(""),
        KeyCount,
        "comma-separated keys for `/internal/*` and `/api/v2/*` (≥ 16 chars each; sent as `X-MONITORING-KEY` or `Authorization: Bearer`); empty refuses all",
    ),
    key(
        "ENABLE_WEBSOCKETS",
        Some("true"),
        Plain,
        "Binance WebSocket candle feed",
    ),
    key(
        "BINANCE_BASE_URL",
        Some("https://api.binance.com"),
        Url,
        "Binance's REST API",
    ),
    key(
        "BINANCE_WS_URL",
        Some("wss://stream.binance.com:9443"),
        Url,
        "Binance's WebSocket streams (the candle feed)",
    ),
    key(
        "COINGECKO_BASE_URL",
        Some("https://api.coingecko.com"),
        Url,
        "CoinGecko's API (the price fallback)",
    ),
    key(
        "ETH_RPC_URL",
        None,
        Secret,
        "an Ethereum JSON-RPC endpoint for Uniswap prices (it often holds a key)",
    ),
    key(
        "TELEGRAM_BOT_TOKEN",
        None,
        Secret,
        "the Telegram bot's token (unset: Telegram channels fail)",
    ),
    key(
        "TELEGRAM_API_URL",
        Some("https://api.telegram.org"),
        Url,
        "the Telegram Bot API",
    ),
    key(
        "SMTP_HOST",
        None,
        Plain,
        "the SMTP server for email (unset: email channels fail)",
    ),
    key("SMTP_PORT", Some("587"), Plain, "the SMTP server's port"),
    key("SMTP_USERNAME", None, Plain, "the SMTP login"),
    key("SMTP_PASSWORD", None, Secret, "the SMTP password"),
    key(
        "SMTP_FROM",
        None,
        Plain,
        "the sender address; required when `SMTP_HOST` is set",
    ),
    key(
        "SMTP_TLS",
        Some("starttls"),
        Plain,
        "`starttls` (required upgrade), `tls` (SMTPS) or `none` (a local relay only)",
    ),
    key(
        "NOTIFY_ALLOW_PRIVATE_NETWORKS",
        Some("false"),
        Plain,
        "allow webhook URLs resolving to private addresses",
    ),
    key(
        "NOTIFY_FIRST_BYTE_TIMEOUT_MS",
        Some("5000"),
        Plain,
        "how long a user's URL (Slack, Discord, webhook) has to start answering (its connect time: 3 s)",
    ),
    key(
        "SHARD_INDEX",
        Some("0"),
        Plain,
        "this replica's shard: it keeps the strategies with `hash(user_id) mod SHARD_COUNT == SHARD_INDEX`",
    ),
    key(
        "SHARD_COUNT",
        Some("1"),
        Plain,
        "the number of static shards; `auto`: the live replicas divide 256 virtual shards by lease (see [scaling](architecture.md#scaling))",
    ),
    key(
        "SHARD_LEASE_SECONDS",
        Some("15"),
        Plain,
        "`SHARD_COUNT=auto`: each shard's lease and the heartbeat's lifetime (2–600); renewed every fifth of it",
    ),
    key("LOG_FORMAT", Some("json"), Plain, "`json` or `pretty`"),
    key("RUST_LOG", Some("info,sqlx=warn"), Plain, "log filter"),
    key(
        "DB_MAX_CONNECTIONS",
        Some("16"),
        Plain,
        "Postgres pool size",
    ),
    key(
        "STARTUP_TIMEOUT_SECONDS",
        Some("60"),
        Plain,
        "how long startup retries Postgres/Redis (exponential backoff with jitter)",
    ),
    key(
        "SHUTDOWN_TIMEOUT_SECONDS",
        Some("10"),
        Plain,
        "how long shutdown waits for requests and background work",
    ),
    key(
        "HTTP_REQUEST_TIMEOUT_SECONDS",
        Some("30"),
        Plain,
        "per-request timeout (408)",
    ),
    key(
        "HTTP_BODY_LIMIT_BYTES",
        Some("1048576"),
        Plain,
        "request body limit (413)",
    ),
    key(
        "HTTP_HEADER_READ_TIMEOUT_SECONDS",
        Some("10"),
        Plain,
        "a client's time to send a request's headers, and an idle keep-alive connection's to start its next request",
    ),
    key(
        "MONITORING_MAX_CONNECTIONS",
        Some("1024"),
        Plain,
        "open client connections at most, also kept 96 under the process's descriptor limit; at the cap a new connection replaces the oldest one that has sent no request yet",
    ),
    key(
        "CORS_ALLOWED_ORIGINS",
        Some(""),
        Plain,
        "comma-separated browser origins allowed; empty allows none",
    ),
    key(
        "PRICE_TTL_MS",
        Some("5000"),
        Plain,
        "how long a fetched spot price is reused (100–9000: below the smallest frequency)",
    ),
    key(
        "UPSTREAM_TIMEOUT_MS",
        Some("5000"),
        Plain,
        "one market-data request's time limit",
    ),
    key(
        "UPSTREAM_MAX_RETRIES",
        Some("2"),
        Plain,
        "retries of a market-data request (transient failures only)",
    ),
    key(
        "BINANCE_WEIGHT_BUDGET",
        Some("4800"),
        Plain,
        "our share of Binance's 6000 request weight per minute and IP",
    ),
    key(
        "PRICE_FALLBACK_COINGECKO_IDS",
        Some(
            "BTCUSDT=bitcoin,ETHUSDT=ethereum,BNBUSDT=binancecoin,SOLUSDT=solana,\
             XRPUSDT=ripple,ADAUSDT=cardano,DOGEUSDT=dogecoin",
        ),
        Plain,
        "when Binance fails, these symbols are priced by CoinGecko (`SYMBOL=coin-id`, comma-separated)",
    ),
    key(
        "ENABLE_SCHEDULER",
        Some("true"),
        Plain,
        "run batches on their wall-clock schedule; `false` leaves only `POST /internal/run/{frequency}`",
    ),
    key(
        "CATCH_UP_MAX_PERIODS",
        Some("10"),
        Plain,
        "periods a strategy missed (a replica killed, Postgres away, a restart) evaluated afterwards, at most",
    ),
    key(
        "INTERNAL_RATE_LIMIT_PER_MINUTE",
        Some("1200"),
        Plain,
        "requests per minute and API key on `/internal/*` after the burst; over it: 429 `rate_limited` with `Retry-After`; 0 = unlimited",
    ),
    key(
        "INTERNAL_RATE_LIMIT_BURST",
        Some("100"),
        Plain,
        "requests an API key may make at once on `/internal/*` before the per-minute rate applies",
    ),
    key(
        "ALERT_LOG_DIR",
        Some("logs/alerts"),
        Plain,
        "operational alert events, one JSON line each, in `<dir>/<UTC date>.jsonl`; empty: no files",
    ),
    key(
        "ALERT_RETENTION_DAYS",
        Some("90"),
        Plain,
        "closed operational alerts and alert log files older than this are removed daily",
    ),
    key(
        "OPS_ALERT_ROUTES",
        Some("{}"),
        Secret,
        "operational alerts' channels by severity, JSON: `{\"WARNING\": [{\"type\": \"slack\", \"webhook_url\": \"…\"}], \"CRITICAL\": […]}` (channels as in strategies; a secret: never shown)",
    ),
    key(
        "OPS_ALERT_GROUP_WAIT_SECONDS",
        Some("30"),
        Plain,
        "new operational alerts of a route gather this long before one message lists them",
    ),
    key(
        "OPS_ALERT_REPEAT_SECONDS",
        Some("14400"),
        Plain,
        "a firing, unacknowledged operational alert is sent again this often",
    ),
    key(
        "OPS_ALERT_CLAIM_SECONDS",
        Some("300"),
        Plain,
        "how long a replica has to send an alert message it claimed before another replica takes it over",
    ),
    key(
        "ALERT_STREAM_KEEPALIVE_SECONDS",
        Some("15"),
        Plain,
        "`GET /internal/alerts/stream`: seconds between keep-alive comments",
    ),
    key(
        "ALERT_STREAM_MAX_SECONDS",
        Some("3600"),
        Plain,
        "`GET /internal/alerts/stream`: a stream is closed after this long (the client resumes with `Last-Event-ID`)",
    ),
    key(
        "ALERT_STREAMS_PER_KEY",
        Some("16"),
        Plain,
        "alert streams one API key may hold open at once; past it: 429 `too_many_streams`",
    ),
    key(
        "SILENCE_MAX_DAYS",
        Some("30"),
        Plain,
        "the longest a silence may last (longer: 400 naming `ends_at`)",
    ),
    key(
        "ALERT_RESOLVE_TIMEOUT_SECONDS",
        Some("300"),
        Plain,
        "a posted alert (Alertmanager API) without `endsAt` resolves when not re-sent within this",
    ),
    key(
        "ALERT_INGEST_RATE_LIMIT_PER_MINUTE",
        Some("6000"),
        Plain,
        "`POST /api/v2/alerts` requests per minute and API key (a budget apart from the operator routes'); 0 = unlimited",
    ),
    key(
        "ENGINE_TICKS_RATE_LIMIT_PER_MINUTE",
        Some("60000"),
        Plain,
        "engine ticks per minute and API key (a budget apart from the operator routes'); 0 = unlimited",
    ),
    key(
        "METRICS_RETENTION_DAYS",
        Some("30"),
        Plain,
        "engine ticks and metric snapshots are kept this many days",
    ),
    key(
        "METRICS_SNAPSHOT_INTERVAL",
        Some("60"),
        Plain,
        "seconds between snapshots of each engine's latest tick",
    ),
    key(
        "METRICS_SNAPSHOT_DIR",
        Some("data/monitoring"),
        Plain,
        "each engine's latest tick is written to `<dir>/metrics_<timestamp>.json`; empty: off",
    ),
    key(
        "OPS_DAILY_LOSS_PCT",
        Some("5.0"),
        Plain,
        "default threshold of `daily_loss` (percent); `alert_thresholds` rows override it",
    ),
    key(
        "OPS_MAX_POSITIONS",
        Some("10"),
        Plain,
        "default threshold of `max_positions`; `alert_thresholds` rows override it",
    ),
    key(
        "OPS_MAX_TOTAL_EXPOSURE",
        Some(""),
        Plain,
        "default threshold of `total_exposure` (empty: no limit); `alert_thresholds` rows override it",
    ),
    key(
        "OPS_SENTIMENT_MAX_FAILURES",
        Some("5"),
        Plain,
        "default threshold of `sentiment_failures`; `alert_thresholds` rows override it",
    ),
    key(
        "OPS_ARTIFACT_MAX_AGE_HOURS",
        Some("24"),
        Plain,
        "default threshold of `stale_model` (hours); `alert_thresholds` rows override it",
    ),
    key(
        "OPS_CONNECTIVITY_MAX_SILENCE_SECONDS",
        Some("300"),
        Plain,
        "default threshold of `connectivity` (seconds since the last API call); `alert_thresholds` rows override it",
    ),
    key(
        "OPS_HEARTBEAT_LAPSE_SECONDS",
        Some("180"),
        Plain,
        "an engine not heard from for this long raises `heartbeat_lapsed`",
    ),
    key(
        "OPS_EXPECTED_ENGINES",
        Some(""),
        Plain,
        "comma-separated engine ids that lapse (`heartbeat_lapsed`) even if they never ticked",
    ),
    key(
        "OPS_TICK_MAX_SKEW_SECONDS",
        Some("300"),
        Plain,
        "how far ahead of the server's clock a tick's timestamps may be (past it: 400 naming the field)",
    ),
    key(
        "HEALTH_TARGETS",
        Some("[]"),
        Secret,
        "the platform's services to check, JSON `[{\"name\", \"url\", \"critical\"}]` (unique names, http(s) URLs; a bad entry stops startup naming it; a secret: never shown)",
    ),
    key(
        "HEALTH_CHECK_INTERVAL",
        Some("60"),
        Plain,
        "seconds between platform health cycles (0: off)",
    ),
    key(
        "HEALTH_CHECK_TIMEOUT_MS",
        Some("5500"),
        Plain,
        "each health check's time limit",
    ),
    key(
        "HEALTH_LATENCY_DEGRADED_MS",
        Some("1000"),
        Plain,
        "a target answering slower than this is DEGRADED",
    ),
    key(
        "HEALTH_LATENCY_CRITICAL_MS",
        Some("5000"),
        Plain,
        "a target answering slower than this is DOWN",
    ),
    key(
        "HEALTH_ALERT_AFTER",
        Some("2"),
        Plain,
        "health cycles in a row before a dependency alert opens or resolves",
    ),
    key(
        "ANALYSIS_URL",
        None,
        Url,
        "the llm-proxy's analysis endpoint (unset: no candle-close analysis)",
    ),
    key(
        "ANALYSIS_API_KEY",
        None,
        Secret,
        "the llm-proxy's bearer token",
    ),
    key(
        "ANALYSIS_TIMEOUT_MS",
        Some("30000"),
        Plain,
        "one analysis call's limit, retries included",
    ),
    key(
        "ANALYSIS_CANDLES",
        Some("100"),
        Plain,
        "closed candles sent with each analysis",
    ),
    key(
        "ANALYSIS_TRADERS",
        Some(""),
        Plain,
        "only these traders' schedules (comma-separated UUIDs; empty: all) — a canary",
    ),
    key(
        "ANALYSIS_MAX_CONSECUTIVE_ERRORS",
        Some("3"),
        Plain,
        "failed analyses in a row before a schedule goes to `error`",
    ),
    key(
        "ANALYSIS_MAX_CONCURRENCY",
        Some("8"),
        Plain,
        "analysis calls in flight at most",
    ),
    key(
        "ANALYSIS_RATE_PER_MINUTE",
        Some("600"),
        Plain,
        "analysis calls started per minute at most",
    ),
    key(
        "BACKTEST_MAX_CONCURRENCY",
        Some("2"),
        Plain,
        "backtests running at once per replica; beyond: 429 `backtest_busy`",
    ),
    key(
        "CANDLE_RETENTION_DAYS",
        Some("400"),
        Plain,
        "stored candles (read by backtests) older than this are removed daily",
    ),
];

/// The setting named `name` (an environment variable name), if there is one.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every environment variable the service reads, in table order.
pub fn env_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// The configuration reference: one Markdown table row per key, in table order (the
/// section of `docs/configuration.md` a unit test keeps equal to it).
pub fn reference() -> String {
    let mut table = String::from("| key | default | meaning |\n|---|---|---|\n");
    for key in KEYS {
        let default = match key.default {
            None => "unset".to_owned(),
            Some("") => "empty".to_owned(),
            Some(value) => format!("`{value}`"),
        };
        let secret = if key.shown == Shown::Secret {
            " (secret: never shown)"
        } else {
            ""
        };
        table.push_str(&format!(
            "| `{}` | {default} | {}{secret} |\n",
            key.name, key.help
        ));
    }
    table
}
