//! The configuration's loading, validation and redaction, key by key.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;
use crate::notify::SmtpTls;
use crate::telemetry::LogFormat;

const PG: &str = "postgres://svc:hunter2@localhost:5432/monitoring";

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from_vars(None, vars.iter().copied())
}

#[test]
fn defaults_apply_when_only_the_database_is_given() {
    let config = load(&[("POSTGRES_URL", PG)]).unwrap();
    assert_eq!(config.bind_address().to_string(), "0.0.0.0:9000");
    assert!(config.database.redis_url.is_none());
    assert!(config.server.api_keys.is_empty());
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!((config.shard.index, config.shard.count), (0, 1));
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(10));
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
    let keys: Vec<_> = config
        .server
        .api_keys
        .iter()
        .map(|k| k.expose_secret())
        .collect();
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
    assert_eq!(
        config.notify.telegram_bot_token.unwrap().expose_secret(),
        "007"
    );
    assert!(config.market.websocket.is_none());
    assert!(config.notify.allow_private_networks);
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
fn shard_count_auto_shares_virtual_shards_by_lease() {
    let config = load(&[("POSTGRES_URL", PG), ("SHARD_COUNT", "auto")]).unwrap();
    let auto = config.auto_shard.expect("auto sharding");
    assert_eq!(auto.lease_ttl, std::time::Duration::from_secs(15));
    assert_eq!((config.shard.index, config.shard.count), (0, 1));
    let config = load(&[
        ("POSTGRES_URL", PG),
        ("SHARD_COUNT", "AUTO"),
        ("SHARD_LEASE_SECONDS", "6"),
    ])
    .unwrap();
    assert_eq!(config.auto_shard.unwrap().lease_ttl.as_secs(), 6);
    let err = load(&[
        ("POSTGRES_URL", PG),
        ("SHARD_COUNT", "auto"),
        ("SHARD_LEASE_SECONDS", "1"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "SHARD_LEASE_SECONDS");
    let err = load(&[("POSTGRES_URL", PG), ("SHARD_COUNT", "many")]).unwrap_err();
    assert_eq!(err.key, "SHARD_COUNT");
    assert!(err.to_string().contains("auto"), "{err}");
    assert!(load(&[("POSTGRES_URL", PG)]).unwrap().auto_shard.is_none());
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
    assert_eq!(unlimited.server.internal_rate_limit_per_minute, 0);
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
    let smtp = config.notify.smtp.unwrap();
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
    assert_eq!(config.server.port, 9200, "environment wins over the file");
    assert_eq!(config.shard.count, 4, "file wins over defaults");

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
fn every_url_key_is_shown_with_its_password_masked() {
    let config = load(&[
        ("POSTGRES_URL", PG),
        (
            "BINANCE_BASE_URL",
            "https://user:binance-pass@binance.example",
        ),
        ("BINANCE_WS_URL", "wss://user:ws-pass@binance.example:9443"),
        (
            "COINGECKO_BASE_URL",
            "https://cg.example/?x_cg_pro_api_key=cg-key",
        ),
        ("TELEGRAM_API_URL", "https://user:tg-pass@tg.example"),
        (
            "MONITORING_API_KEY",
            "first-key-0123456789,second-key-0123456789",
        ),
    ])
    .unwrap();
    let redacted: std::collections::HashMap<_, _> = config.redacted().into_iter().collect();
    let printed = format!("{redacted:?}");
    for secret in ["binance-pass", "ws-pass", "cg-key", "tg-pass", "first-key"] {
        assert!(!printed.contains(secret), "{secret} leaked: {printed}");
    }
    assert_eq!(
        redacted["BINANCE_BASE_URL"],
        "https://user:[REDACTED]@binance.example"
    );
    assert_eq!(redacted["MONITORING_API_KEY"], "[REDACTED: 2 key(s)]");
    assert_eq!(
        redacted["COINGECKO_BASE_URL"],
        "https://cg.example/?[REDACTED]"
    );
}

#[test]
fn every_env_key_is_printed_by_redacted() {
    let config = load(&[("POSTGRES_URL", PG)]).unwrap();
    let printed: Vec<_> = config.redacted().into_iter().map(|(k, _)| k).collect();
    assert_eq!(printed, env_keys().collect::<Vec<_>>());
}

#[test]
fn env_example_lists_exactly_the_keys_read() {
    let listed: Vec<&str> = include_str!("../../.env.example")
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains('='))
        .map(|line| line.split('=').next().unwrap())
        .collect();
    let mut expected: Vec<&str> = env_keys().collect();
    let mut listed_sorted = listed.clone();
    expected.sort_unstable();
    listed_sorted.sort_unstable();
    assert_eq!(listed_sorted, expected);
}

#[test]
fn the_configuration_reference_is_the_key_table() {
    const BEGIN: &str = "<!-- generated from src/config/keys.rs: UPDATE_CONFIG_REFERENCE=1 cargo test --lib config -->\n";
    const END: &str = "<!-- end of the generated reference -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find(BEGIN).expect("the reference's start marker") + BEGIN.len();
    let end = doc.find(END).expect("the reference's end marker");
    let wanted = super::keys::reference();
    if std::env::var_os("UPDATE_CONFIG_REFERENCE").is_some() {
        std::fs::write(path, format!("{}{wanted}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        wanted,
        "docs/configuration.md differs from src/config/keys.rs: \
         regenerate it with UPDATE_CONFIG_REFERENCE=1 cargo test --lib config"
    );
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

#[test]
fn ops_alert_routes_are_parsed_and_their_errors_name_the_place_not_the_value() {
    let pg = ("POSTGRES_URL", "postgres://localhost/db");
    let routes = r#"{"CRITICAL": [{"type": "telegram", "chat_id": "123456"}],
                     "INFO": [{"type": "email", "to": "ops@example.com"}]}"#;
    let config = load(&[pg, ("OPS_ALERT_ROUTES", routes)]).unwrap();
    let kinds: Vec<(&str, usize)> = config
        .alerts
        .routes
        .iter()
        .map(|(severity, channels)| (severity.as_str(), channels.len()))
        .collect();
    assert_eq!(kinds, [("INFO", 1), ("CRITICAL", 1)]);
    let shown = config.redacted();
    assert!(shown.contains(&("OPS_ALERT_ROUTES", "[REDACTED]".to_owned())));
    let error = |text: &str| {
        load(&[pg, ("OPS_ALERT_ROUTES", text)])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(r#"{"LOUD": []}"#),
        "OPS_ALERT_ROUTES: LOUD: not a severity (INFO, WARNING or CRITICAL)"
    );
    let bad = error(r#"{"WARNING": [{"type": "telegram", "chat_id": 99887766}]}"#);
    assert_eq!(
        bad,
        "OPS_ALERT_ROUTES: WARNING.channels[0]: chat_id: must be a string"
    );
    assert!(error("not json").starts_with("OPS_ALERT_ROUTES: must be a JSON object"));
    assert!(
        load(&[pg]).unwrap().alerts.routes.is_empty(),
        "none by default"
    );
}

#[test]
fn each_out_of_range_or_malformed_value_names_its_key_and_not_its_value() {
    // (settings besides POSTGRES_URL, the key named, part of the message)
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );
    let cases: &[Case] = &[
        (
            &[("MONITORING_HOST", "localhost")],
            "MONITORING_HOST",
            "must be an IP address",
        ),
        (
            &[("HTTP_BODY_LIMIT_BYTES", "1000")],
            "HTTP_BODY_LIMIT_BYTES",
            "between 1024",
        ),
        (
            &[("PRICE_TTL_MS", "9001")],
            "PRICE_TTL_MS",
            "between 100 and 9000",
        ),
        (
            &[("UPSTREAM_TIMEOUT_MS", "99")],
            "UPSTREAM_TIMEOUT_MS",
            "between 100",
        ),
        (
            &[("UPSTREAM_MAX_RETRIES", "11")],
            "UPSTREAM_MAX_RETRIES",
            "between 0 and 10",
        ),
        (
            &[("BINANCE_WEIGHT_BUDGET", "6001")],
            "BINANCE_WEIGHT_BUDGET",
            "between 10 and 6000",
        ),
        (
            &[("PRICE_FALLBACK_COINGECKO_IDS", "BTCUSDT:bitcoin")],
            "PRICE_FALLBACK_COINGECKO_IDS",
            "SYMBOL=coin-id",
        ),
        (
            &[("ALERT_RETENTION_DAYS", "0")],
            "ALERT_RETENTION_DAYS",
            "between 1 and 3650",
        ),
        (
            &[("OPS_MAX_TOTAL_EXPOSURE", "-1")],
            "OPS_MAX_TOTAL_EXPOSURE",
            "or empty (off)",
        ),
        (
            &[("OPS_DAILY_LOSS_PCT", "-5")],
            "OPS_DAILY_LOSS_PCT",
            "a number from 0",
        ),
        (
            &[("OPS_EXPECTED_ENGINES", "live-1,live 2")],
            "OPS_EXPECTED_ENGINES",
            "an engine id",
        ),
        (
            &[("METRICS_RETENTION_DAYS", "3651")],
            "METRICS_RETENTION_DAYS",
            "between 1 and 3650",
        ),
        (
            &[("ENGINE_TICKS_RATE_LIMIT_PER_MINUTE", "10000001")],
            "ENGINE_TICKS_RATE_LIMIT_PER_MINUTE",
            "between 0 (unlimited)",
        ),
        (
            &[("HEALTH_LATENCY_DEGRADED_MS", "0")],
            "HEALTH_LATENCY_DEGRADED_MS",
            "between 1",
        ),
        (
            &[
                ("HEALTH_LATENCY_DEGRADED_MS", "2000"),
                ("HEALTH_LATENCY_CRITICAL_MS", "1500"),
            ],
            "HEALTH_LATENCY_CRITICAL_MS",
            "must not be below HEALTH_LATENCY_DEGRADED_MS",
        ),
        (
            &[("HEALTH_CHECK_TIMEOUT_MS", "600001")],
            "HEALTH_CHECK_TIMEOUT_MS",
            "between 1",
        ),
        (
            &[("HEALTH_ALERT_AFTER", "101")],
            "HEALTH_ALERT_AFTER",
            "between 1 and 100",
        ),
        (
            &[("ANALYSIS_TIMEOUT_MS", "99")],
            "ANALYSIS_TIMEOUT_MS",
            "between 100",
        ),
        (
            &[("ANALYSIS_TRADERS", "trader-7")],
            "ANALYSIS_TRADERS",
            "UUIDs",
        ),
        (
            &[("ANALYSIS_CANDLES", "1001")],
            "ANALYSIS_CANDLES",
            "between 1 and 1000",
        ),
        (
            &[("ANALYSIS_MAX_CONSECUTIVE_ERRORS", "0")],
            "ANALYSIS_MAX_CONSECUTIVE_ERRORS",
            "between 1 and 1000",
        ),
        (
            &[("ANALYSIS_MAX_CONCURRENCY", "1001")],
            "ANALYSIS_MAX_CONCURRENCY",
            "between 1 and 1000",
        ),
        (
            &[("ANALYSIS_RATE_PER_MINUTE", "0")],
            "ANALYSIS_RATE_PER_MINUTE",
            "between 1",
        ),
    ];
    for (vars, key, message) in cases {
        let mut all = vec![("POSTGRES_URL", PG)];
        all.extend_from_slice(vars);
        let err = load(&all).expect_err(key);
        assert_eq!(err.key, *key, "{vars:?}: {err}");
        assert!(err.message.contains(message), "{vars:?}: {err}");
        // A number may appear in the allowed range; words must not be echoed.
        let (_, bad) = vars.last().unwrap();
        if bad.parse::<f64>().is_err() {
            assert!(!err.to_string().contains(bad), "{err} echoes {bad}");
        }
    }
}
