//! One validator per section of the configuration. Each reads its keys through the
//! [`Reader`], checks them (alone and against each other) and builds the settings type
//! of the component that uses them.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::reader::{Reader, require_scheme};
use super::{ConfigError, ServerSettings};
use crate::market::sources::UpstreamSettings;
use crate::market::{
    MarketConfig, PrefetchSettings, SharedCacheSettings, Source, SourcesConfig, WebsocketSettings,
};
use crate::notify::{NotifierSettings, SmtpConfig, SmtpTls};
use crate::sharding::AutoSharding;
use crate::storage::DatabaseSettings;
use crate::strategy::Shard;
use crate::telemetry::{LogFormat, LogSettings};

/// Postgres and Redis.
pub fn database(r: &mut Reader) -> Result<DatabaseSettings, ConfigError> {
    let postgres_url = r
        .secret_url("POSTGRES_URL", &["postgres", "postgresql"])?
        .ok_or_else(|| ConfigError::new("POSTGRES_URL", "is required"))?;
    let redis_url = r.secret_url("REDIS_URL", &["redis", "rediss", "redis+unix", "unix"])?;
    let max_connections = r.number("DB_MAX_CONNECTIONS", 1..=1000, "must be between 1 and 1000")?;
    Ok(DatabaseSettings {
        postgres_url,
        redis_url,
        max_connections,
    })
}

/// The HTTP server, the operator API and the process lifecycle.
pub fn server(r: &mut Reader) -> Result<ServerSettings, ConfigError> {
    let host_text = r.plain("MONITORING_HOST");
    let host: IpAddr = host_text.trim().parse().map_err(|_| {
        ConfigError::new("MONITORING_HOST", "must be an IP address such as 0.0.0.0")
    })?;
    r.show("MONITORING_HOST", host.to_string());
    let port = r.number(
        "MONITORING_PORT",
        0..=u16::MAX,
        "must be between 0 and 65535",
    )?;
    let api_keys: Vec<SecretString> = r
        .text("MONITORING_API_KEY")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| SecretString::from(key.to_owned()))
        .collect();
    r.show_redacted(
        "MONITORING_API_KEY",
        format!("[REDACTED: {} key(s)]", api_keys.len()),
    );
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
    let seconds = |r: &mut Reader, key: &'static str, max: u64| {
        r.number(key, 1..=max, &format!("must be between 1 and {max}"))
            .map(Duration::from_secs)
    };
    let startup_timeout = seconds(r, "STARTUP_TIMEOUT_SECONDS", 3600)?;
    let shutdown_timeout = seconds(r, "SHUTDOWN_TIMEOUT_SECONDS", 300)?;
    let http_request_timeout = seconds(r, "HTTP_REQUEST_TIMEOUT_SECONDS", 600)?;
    let header_read_timeout = seconds(r, "HTTP_HEADER_READ_TIMEOUT_SECONDS", 600)?;
    let max_connections = r.number(
        "MONITORING_MAX_CONNECTIONS",
        8..=1_000_000,
        "must be between 8 and 1000000",
    )?;
    let http_body_limit_bytes = r.number(
        "HTTP_BODY_LIMIT_BYTES",
        1024..=64 * 1024 * 1024,
        "must be between 1024 and 67108864",
    )?;
    let cors_allowed_origins: Vec<String> = r
        .plain("CORS_ALLOWED_ORIGINS")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    for origin in &cors_allowed_origins {
        require_scheme("CORS_ALLOWED_ORIGINS", origin, &["http", "https"])?;
    }
    r.show("CORS_ALLOWED_ORIGINS", cors_allowed_origins.join(","));
    let enable_scheduler = r.flag("ENABLE_SCHEDULER")?;
    let catch_up_max_periods = r.number(
        "CATCH_UP_MAX_PERIODS",
        0..=1000,
        "must be between 0 and 1000",
    )?;
    let internal_rate_limit_per_minute =
        r.number("INTERNAL_RATE_LIMIT_PER_MINUTE", 0..=u32::MAX, "")?;
    let internal_rate_limit_burst = r.number("INTERNAL_RATE_LIMIT_BURST", 0..=u32::MAX, "")?;
    if internal_rate_limit_per_minute > 0 && internal_rate_limit_burst == 0 {
        return Err(ConfigError::new(
            "INTERNAL_RATE_LIMIT_BURST",
            "must be at least 1 when INTERNAL_RATE_LIMIT_PER_MINUTE is set",
        ));
    }
    Ok(ServerSettings {
        host,
        port,
        api_keys,
        startup_timeout,
        shutdown_timeout,
        http_request_timeout,
        http_body_limit_bytes,
        header_read_timeout,
        max_connections,
        cors_allowed_origins,
        enable_scheduler,
        catch_up_max_periods,
        internal_rate_limit_per_minute,
        internal_rate_limit_burst,
    })
}

/// Market-data sources, caches and the candle feed.
pub fn market(r: &mut Reader) -> Result<MarketConfig, ConfigError> {
    let enable_websockets = r.flag("ENABLE_WEBSOCKETS")?;
    let binance_base_url = r.url("BINANCE_BASE_URL", &["http", "https"])?;
    let binance_ws_url = r.url("BINANCE_WS_URL", &["ws", "wss"])?;
    let coingecko_base_url = r.url("COINGECKO_BASE_URL", &["http", "https"])?;
    let eth_rpc_url = r.secret_url("ETH_RPC_URL", &["http", "https"])?;
    let price_ttl_ms: u64 = r.number(
        "PRICE_TTL_MS",
        100..=9_000,
        "must be between 100 and 9000 (below the smallest frequency, 10s)",
    )?;
    let upstream_timeout_ms: u64 = r.number(
        "UPSTREAM_TIMEOUT_MS",
        100..=60_000,
        "must be between 100 and 60000",
    )?;
    let upstream_max_retries: u32 =
        r.number("UPSTREAM_MAX_RETRIES", 0..=10, "must be between 0 and 10")?;
    let binance_weight_budget = r.number(
        "BINANCE_WEIGHT_BUDGET",
        10..=6_000,
        "must be between 10 and 6000 (Binance allows 6000 per minute and IP)",
    )?;
    let mut fallback = Vec::new();
    for pair in r
        .plain("PRICE_FALLBACK_COINGECKO_IDS")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let parsed = pair.split_once('=').filter(|(symbol, id)| {
            Source::Binance.check_symbol(symbol).is_ok()
                && Source::Coingecko.check_symbol(id).is_ok()
        });
        let Some((symbol, id)) = parsed else {
            return Err(ConfigError::new(
                "PRICE_FALLBACK_COINGECKO_IDS",
                "must be comma-separated SYMBOL=coin-id pairs such as BTCUSDT=bitcoin",
            ));
        };
        fallback.push((symbol.to_owned(), id.to_owned()));
    }
    let shown: Vec<String> = fallback.iter().map(|(s, id)| format!("{s}={id}")).collect();
    r.show("PRICE_FALLBACK_COINGECKO_IDS", shown.join(","));
    Ok(MarketConfig {
        sources: SourcesConfig {
            binance_base_url,
            coingecko_base_url,
            eth_rpc_url,
            binance_weight_budget,
            fallback_coingecko_ids: fallback.into_iter().collect(),
            upstream: UpstreamSettings {
                timeout: Duration::from_millis(upstream_timeout_ms),
                max_retries: upstream_max_retries as usize,
                ..UpstreamSettings::default()
            },
        },
        prefetch: PrefetchSettings {
            price_ttl: Duration::from_millis(price_ttl_ms),
            ..PrefetchSettings::default()
        },
        shared_cache: SharedCacheSettings::default(),
        websocket: enable_websockets.then(|| WebsocketSettings {
            base_url: binance_ws_url,
            ..WebsocketSettings::default()
        }),
        poll_delay: Duration::from_millis(500),
    })
}

/// Telegram, SMTP and the webhook address guard.
pub fn notify(r: &mut Reader) -> Result<NotifierSettings, ConfigError> {
    let telegram_bot_token = r.secret("TELEGRAM_BOT_TOKEN");
    let telegram_api_url = r.url("TELEGRAM_API_URL", &["http", "https"])?;
    let allow_private_networks = r.flag("NOTIFY_ALLOW_PRIVATE_NETWORKS")?;
    let smtp = match r.text("SMTP_HOST") {
        None => None,
        Some(host) => Some(smtp(r, host)?),
    };
    let first_byte_ms: u64 = r.number(
        "NOTIFY_FIRST_BYTE_TIMEOUT_MS",
        100..=60_000,
        "must be between 100 and 60000 ms",
    )?;
    Ok(NotifierSettings {
        telegram_api_url,
        telegram_bot_token,
        allow_private_networks,
        smtp,
        first_byte_timeout: Duration::from_millis(first_byte_ms),
        ..NotifierSettings::default()
    })
}

/// SMTP, read only when `SMTP_HOST` is set.
fn smtp(r: &mut Reader, host: String) -> Result<SmtpConfig, ConfigError> {
    let from = r
        .text("SMTP_FROM")
        .filter(|f| f.contains('@'))
        .ok_or_else(|| {
            ConfigError::new(
                "SMTP_FROM",
                "must be an email address when SMTP_HOST is set",
            )
        })?;
    let port = r.number("SMTP_PORT", 1..=u16::MAX, "must be between 1 and 65535")?;
    let tls = match r.choice(
        "SMTP_TLS",
        &["starttls", "tls", "none"],
        "must be one of starttls, tls, none",
    )? {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        _ => SmtpTls::None,
    };
    Ok(SmtpConfig {
        host,
        port,
        username: r.text("SMTP_USERNAME"),
        password: r.secret("SMTP_PASSWORD"),
        from,
        tls,
    })
}

/// Which strategies this replica keeps: a static shard, or with `SHARD_COUNT=auto` a
/// share of the virtual shards by lease (then the static shard is the whole).
pub fn shard(r: &mut Reader) -> Result<(Shard, Option<AutoSharding>), ConfigError> {
    let written = r.text("SHARD_COUNT").unwrap_or_default();
    let auto = written.trim().eq_ignore_ascii_case("auto");
    if !auto && written.trim().parse::<u32>().is_err() {
        return Err(ConfigError::new(
            "SHARD_COUNT",
            "expected a whole number of at least 1, or `auto`",
        ));
    }
    let lease = r.number(
        "SHARD_LEASE_SECONDS",
        2..=600u64,
        "must be between 2 and 600 seconds",
    )?;
    if auto {
        r.show("SHARD_COUNT", "auto".into());
        return Ok((
            Shard { index: 0, count: 1 },
            Some(AutoSharding {
                lease_ttl: std::time::Duration::from_secs(lease),
            }),
        ));
    }
    let index = r.number("SHARD_INDEX", 0..=u32::MAX, "")?;
    let count = r.number("SHARD_COUNT", 1..=u32::MAX, "must be at least 1, or `auto`")?;
    if index >= count {
        return Err(ConfigError::new(
            "SHARD_INDEX",
            format!("must be less than SHARD_COUNT ({count})"),
        ));
    }
    Ok((Shard { index, count }, None))
}

/// Log lines.
pub fn logging(r: &mut Reader) -> Result<LogSettings, ConfigError> {
    let format = match r.choice(
        "LOG_FORMAT",
        &["json", "pretty"],
        "must be `json` or `pretty`",
    )? {
        "json" => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    let filter = r.plain("RUST_LOG");
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&filter) {
        return Err(ConfigError::new(
            "RUST_LOG",
            format!("not a valid filter: {err}"),
        ));
    }
    Ok(LogSettings { format, filter })
}

/// A number of seconds from 0 to `max`.
fn seconds(r: &mut Reader, name: &'static str, max: u64) -> Result<Duration, ConfigError> {
    r.number(
        name,
        0..=max,
        &format!("must be between 0 and {max} seconds"),
    )
    .map(Duration::from_secs)
}

/// The operational alerts' log, retention, routes, notification timing and stream.
pub fn alerts(r: &mut Reader) -> Result<crate::ops_alerts::AlertSettings, ConfigError> {
    let log_dir = r.plain("ALERT_LOG_DIR");
    let retention_days = r.number(
        "ALERT_RETENTION_DAYS",
        1..=3650,
        "must be between 1 and 3650 days",
    )?;
    let routes = r.secret("OPS_ALERT_ROUTES").map_or_else(
        || Ok(Default::default()),
        |text| {
            crate::ops_alerts::parse_routes(text.expose_secret())
                .map_err(|message| ConfigError::new("OPS_ALERT_ROUTES", message))
        },
    )?;
    let timing = crate::ops_alerts::DispatchTiming {
        group_wait: seconds(r, "OPS_ALERT_GROUP_WAIT_SECONDS", 3600)?,
        repeat: seconds(r, "OPS_ALERT_REPEAT_SECONDS", 7 * 86_400)?.max(Duration::from_secs(1)),
        claim_hold: seconds(r, "OPS_ALERT_CLAIM_SECONDS", 86_400)?.max(Duration::from_secs(1)),
    };
    let stream_keepalive =
        seconds(r, "ALERT_STREAM_KEEPALIVE_SECONDS", 300)?.max(Duration::from_secs(1));
    let stream_max = seconds(r, "ALERT_STREAM_MAX_SECONDS", 86_400)?.max(Duration::from_secs(1));
    Ok(crate::ops_alerts::AlertSettings {
        log_dir: (!log_dir.trim().is_empty()).then(|| log_dir.trim().into()),
        retention_days,
        routes,
        timing,
        stream_keepalive,
        stream_max,
        streams_per_key: r.number(
            "ALERT_STREAMS_PER_KEY",
            1..=10_000,
            "must be between 1 and 10000",
        )?,
        silence_max_days: r.number(
            "SILENCE_MAX_DAYS",
            1..=3650,
            "must be between 1 and 3650 days",
        )?,
        resolve_timeout: seconds(r, "ALERT_RESOLVE_TIMEOUT_SECONDS", 86_400)?
            .max(Duration::from_secs(1)),
        ingest_rate_limit_per_minute: r.number(
            "ALERT_INGEST_RATE_LIMIT_PER_MINUTE",
            0..=10_000_000,
            "must be between 0 (unlimited) and 10000000",
        )?,
    })
}

/// The trading-engine ticks, their rules' default thresholds, snapshots and retention.
pub fn engine(r: &mut Reader) -> Result<crate::ops_rules::EngineSettings, ConfigError> {
    let threshold =
        |r: &mut Reader, name: &'static str| r.number(name, 0.0..=1e15, "must be a number from 0");
    let exposure = r.plain("OPS_MAX_TOTAL_EXPOSURE");
    let max_total_exposure = match exposure.trim() {
        "" => None,
        text => Some(
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    ConfigError::new(
                        "OPS_MAX_TOTAL_EXPOSURE",
                        "must be a number from 0, or empty (off)",
                    )
                })?,
        ),
    };
    let defaults = crate::ops_rules::Defaults {
        daily_loss_pct: threshold(r, "OPS_DAILY_LOSS_PCT")?,
        max_positions: threshold(r, "OPS_MAX_POSITIONS")?,
        max_total_exposure,
        sentiment_max_failures: threshold(r, "OPS_SENTIMENT_MAX_FAILURES")?,
        artifact_max_age_hours: threshold(r, "OPS_ARTIFACT_MAX_AGE_HOURS")?,
        connectivity_max_silence_seconds: threshold(r, "OPS_CONNECTIVITY_MAX_SILENCE_SECONDS")?,
        heartbeat_lapse_seconds: threshold(r, "OPS_HEARTBEAT_LAPSE_SECONDS")?,
    };
    let expected_engines: Vec<String> = r
        .plain("OPS_EXPECTED_ENGINES")
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    for id in &expected_engines {
        crate::ops_rules::tick::check_engine_id(id).map_err(|e| {
            ConfigError::new(
                "OPS_EXPECTED_ENGINES",
                format!("an engine id {}", e.message),
            )
        })?;
    }
    let snapshot_dir = r.plain("METRICS_SNAPSHOT_DIR");
    Ok(crate::ops_rules::EngineSettings {
        defaults,
        expected_engines,
        snapshot_dir: (!snapshot_dir.trim().is_empty()).then(|| snapshot_dir.trim().into()),
        snapshot_interval: seconds(r, "METRICS_SNAPSHOT_INTERVAL", 86_400)?
            .max(Duration::from_secs(1)),
        retention_days: r.number(
            "METRICS_RETENTION_DAYS",
            1..=3650,
            "must be between 1 and 3650 days",
        )?,
        tick_max_skew: seconds(r, "OPS_TICK_MAX_SKEW_SECONDS", 86_400)?,
        ticks_rate_limit_per_minute: r.number(
            "ENGINE_TICKS_RATE_LIMIT_PER_MINUTE",
            0..=10_000_000,
            "must be between 0 (unlimited) and 10000000",
        )?,
    })
}

/// Platform health: the targets, the cycle and the latency limits.
pub fn health(r: &mut Reader) -> Result<crate::platform_health::HealthSettings, ConfigError> {
    let services = r.secret("HEALTH_TARGETS").map_or_else(
        || Ok(Vec::new()),
        |text| {
            crate::platform_health::parse_targets(text.expose_secret())
                .map_err(|message| ConfigError::new("HEALTH_TARGETS", message))
        },
    )?;
    let degraded_ms: u64 = r.number(
        "HEALTH_LATENCY_DEGRADED_MS",
        1..=600_000,
        "must be between 1 and 600000 ms",
    )?;
    let critical_ms: u64 = r.number(
        "HEALTH_LATENCY_CRITICAL_MS",
        1..=600_000,
        "must be between 1 and 600000 ms",
    )?;
    if critical_ms < degraded_ms {
        return Err(ConfigError::new(
            "HEALTH_LATENCY_CRITICAL_MS",
            "must not be below HEALTH_LATENCY_DEGRADED_MS",
        ));
    }
    let timeout_ms: u64 = r.number(
        "HEALTH_CHECK_TIMEOUT_MS",
        1..=600_000,
        "must be between 1 and 600000 ms",
    )?;
    Ok(crate::platform_health::HealthSettings {
        services,
        interval: seconds(r, "HEALTH_CHECK_INTERVAL", 86_400)?,
        timeout: Duration::from_millis(timeout_ms),
        limits: crate::platform_health::Limits {
            degraded_ms: degraded_ms as f64,
            critical_ms: critical_ms as f64,
        },
        alert_after: r.number("HEALTH_ALERT_AFTER", 1..=100, "must be between 1 and 100")?,
    })
}

/// Candle-close analysis: the llm-proxy endpoint, its key, the budget.
pub fn analysis(r: &mut Reader) -> Result<crate::analysis::AnalysisSettings, ConfigError> {
    let url = r.secret_url("ANALYSIS_URL", &["http", "https"])?;
    let api_key = r.secret("ANALYSIS_API_KEY");
    let timeout_ms: u64 = r.number(
        "ANALYSIS_TIMEOUT_MS",
        100..=600_000,
        "must be between 100 and 600000 ms",
    )?;
    let traders = r
        .plain("ANALYSIS_TRADERS")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            uuid::Uuid::parse_str(t).map_err(|_| {
                ConfigError::new(
                    "ANALYSIS_TRADERS",
                    "expected trader ids (UUIDs), comma-separated",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::analysis::AnalysisSettings {
        url,
        api_key,
        timeout: Duration::from_millis(timeout_ms),
        candles: r.number("ANALYSIS_CANDLES", 1..=1000, "must be between 1 and 1000")?,
        traders,
        max_consecutive_errors: r.number(
            "ANALYSIS_MAX_CONSECUTIVE_ERRORS",
            1..=1000,
            "must be between 1 and 1000",
        )?,
        max_concurrency: r.number(
            "ANALYSIS_MAX_CONCURRENCY",
            1..=1000,
            "must be between 1 and 1000",
        )?,
        rate_per_minute: r.number(
            "ANALYSIS_RATE_PER_MINUTE",
            1..=1_000_000,
            "must be between 1 and 1000000",
        )?,
    })
}

/// Backtests: how many at once, how long candles are kept.
pub fn backtest(r: &mut Reader) -> Result<crate::backtest::BacktestSettings, ConfigError> {
    Ok(crate::backtest::BacktestSettings {
        max_concurrency: r.number(
            "BACKTEST_MAX_CONCURRENCY",
            1..=64,
            "must be between 1 and 64",
        )?,
        candle_retention_days: r.number(
            "CANDLE_RETENTION_DAYS",
            1..=3650,
            "must be between 1 and 3650 days",
        )?,
    })
}
