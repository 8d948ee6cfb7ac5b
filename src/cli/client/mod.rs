//! The operator CLI: subcommands of the binary that talk to a running service over its
//! `/internal` routes, in the spirit of `amtool` and `kubectl`. They read only
//! `MONITORING_URL` and `MONITORING_API_KEY` (or `--url` and `--key-file`), never a
//! server setting, print aligned tables (or `--json` for scripts), and fail with one
//! line and a non-zero exit: 1 when the service refused or answered an error, 2 for a
//! usage error, 3 when it could not be reached. `health` exits with the Nagios
//! convention (0 OK, 1 DEGRADED, 2 CRITICAL, 3 unknown).

mod alerts;
mod api;
mod backtest;
mod health;
mod metrics;
mod monitors;
mod notify;
mod output;
mod silences;
mod status;
mod strategies;
mod tail;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use uuid::Uuid;

pub use api::{Api, ClientError};
pub use output::{Output, Table, Tone};

/// Exit code: the service refused the request or answered an error.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the service could not be reached (and `health`'s UNKNOWN).
pub const EXIT_UNREACHABLE: u8 = 3;

/// What every client subcommand may be told.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client options (operator subcommands)")]
pub struct ClientArgs {
    /// The service's base URL.
    #[arg(
        long,
        global = true,
        env = "MONITORING_URL",
        default_value = "http://127.0.0.1:9000",
        value_name = "URL"
    )]
    pub url: String,
    /// A file whose first line is the API key (default: the first key of
    /// MONITORING_API_KEY).
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Print the service's JSON answer instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for an answer (`tail` waits this long between events).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The operator subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Active alerts first, then the service's summary: strategies, batches, sources.
    Status,
    /// Platform status, each target, each engine's last tick; exit 0 OK, 1 DEGRADED,
    /// 2 CRITICAL, 3 unknown (Nagios).
    Health,
    /// Operational alerts: the active ones, or every episode with --all.
    Alerts {
        /// Every episode (firing, resolved, cleared), newest first.
        #[arg(long)]
        all: bool,
        /// Only this rule.
        #[arg(long, value_name = "RULE")]
        rule: Option<String>,
        /// Only episodes started within this long (e.g. `1h`, `2d`).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<Duration>,
        /// At most this many (with --all).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Acknowledges a firing alert: it stays active but is not notified again.
    Ack { alert_id: String },
    /// Clears a firing alert; it re-arms once its rule is seen not holding.
    Clear { alert_id: String },
    /// Silences: alerts they match are recorded but not notified.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Follows alert events as they happen on any replica, reconnecting without a gap.
    Tail {
        /// Start after this event id (replays what followed it).
        #[arg(long, value_name = "EVENT_ID")]
        after: Option<u64>,
        /// Exit after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// An engine's metrics per step (every engine that ticked when --engine is absent).
    Metrics {
        #[arg(long, value_name = "ENGINE_ID")]
        engine: Option<String>,
        /// How far back.
        #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
        since: Duration,
        /// The step (`30s`, `5m`, `1h`).
        #[arg(long, default_value = "5m", value_name = "STEP")]
        step: String,
        /// The fields to show (dotted paths, e.g. `pnl.daily`); repeatable.
        #[arg(long = "field", value_name = "FIELD")]
        fields: Vec<String>,
    },
    /// The monitors: interval, health, last and next run.
    Monitors,
    /// Runs a monitor now (`batch:1m`, `platform_health`, … or `all`); exit 1 when a
    /// run failed.
    Run { name: String },
    /// Reloads strategies (all, or those named); exit 1 when any failed validation.
    Reload { strategy_ids: Vec<Uuid> },
    /// Evaluates a strategy now without side effects: each condition, its value, its
    /// comparison and its result.
    Simulate { strategy_id: Uuid },
    /// When would a strategy have fired? A stored one (ID), a draft (--strategy-file,
    /// JSON as `POST /internal/backtest`'s `strategy`), or both (the edit's preview).
    Backtest {
        strategy_id: Option<Uuid>,
        /// A draft strategy, JSON: frequency, trigger_mode, cooldown_seconds,
        /// logic_tree, conditions.
        #[arg(long, value_name = "PATH")]
        strategy_file: Option<PathBuf>,
        /// RFC 3339 (default: 30 days before --to).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// RFC 3339, exclusive (default: now).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
    /// Sends a test message to a severity's route (or one channel); exit 1 when a
    /// delivery failed.
    NotifyTest {
        /// `INFO`, `WARNING` or `CRITICAL`.
        #[arg(
            long,
            value_name = "SEVERITY",
            conflicts_with = "channel",
            required_unless_present = "channel"
        )]
        route: Option<String>,
        /// One channel as JSON, e.g. `{"type": "slack", "webhook_url": "…"}`.
        #[arg(long, value_name = "JSON")]
        channel: Option<String>,
    },
}

/// `silence …`.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Adds a silence from now.
    Add {
        /// `name=value`, `name=~regex`, `name!=value` or `name!~regex` over rule (or alertname), severity, component or a label;
        /// repeatable (all must match).
        #[arg(long = "matcher", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        /// How long it lasts (e.g. `2h`).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "")]
        comment: String,
        /// Who adds it (default: $USER).
        #[arg(long, value_name = "NAME")]
        author: Option<String>,
    },
    /// Lists silences not yet ended.
    Ls,
    /// Deletes a silence.
    Rm { id: Uuid },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 30s, 5m, 2h, 1d)"))
}

/// Runs an operator subcommand; answers the process exit code.
pub fn run(args: ClientArgs, command: ClientCommand) -> ExitCode {
    let output = Output::for_stdout(args.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let is_health = matches!(command, ClientCommand::Health);
    let result = runtime.block_on(async {
        let key = api::api_key(args.key_file.as_deref())?;
        let api = Api::new(&args.url, key, args.timeout)?;
        dispatch(&api, &output, command).await
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            let code = if is_health || error.is_unreachable() {
                EXIT_UNREACHABLE
            } else if matches!(error, ClientError::Usage(_)) {
                2
            } else {
                EXIT_FAILED
            };
            ExitCode::from(code)
        }
    }
}

async fn dispatch(api: &Api, out: &Output, command: ClientCommand) -> Result<u8, ClientError> {
    match command {
        ClientCommand::Status => status::status(api, out).await,
        ClientCommand::Health => health::health(api, out).await,
        ClientCommand::Alerts {
            all,
            rule,
            since,
            limit,
        } => alerts::list(api, out, all, rule.as_deref(), since, limit).await,
        ClientCommand::Ack { alert_id } => alerts::change(api, out, &alert_id, "ack").await,
        ClientCommand::Clear { alert_id } => alerts::change(api, out, &alert_id, "clear").await,
        ClientCommand::Silence(SilenceCommand::Add {
            matchers,
            duration,
            comment,
            author,
        }) => {
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".to_owned());
            silences::add(api, out, &matchers, duration, &comment, &author).await
        }
        ClientCommand::Silence(SilenceCommand::Ls) => silences::list(api, out).await,
        ClientCommand::Silence(SilenceCommand::Rm { id }) => silences::remove(api, out, id).await,
        ClientCommand::Tail { after, count } => tail::tail(api, out, after, count).await,
        ClientCommand::Metrics {
            engine,
            since,
            step,
            fields,
        } => metrics::metrics(api, out, engine.as_deref(), since, &step, &fields).await,
        ClientCommand::Monitors => monitors::list(api, out).await,
        ClientCommand::Run { name } => monitors::run(api, out, &name).await,
        ClientCommand::Reload { strategy_ids } => strategies::reload(api, out, &strategy_ids).await,
        ClientCommand::Simulate { strategy_id } => {
            strategies::simulate(api, out, strategy_id).await
        }
        ClientCommand::Backtest {
            strategy_id,
            strategy_file,
            from,
            to,
        } => {
            let args = backtest::BacktestArgs {
                strategy_id,
                strategy_file: strategy_file.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
            };
            backtest::backtest(api, out, args).await
        }
        ClientCommand::NotifyTest { route, channel } => {
            notify::notify_test(api, out, route.as_deref(), channel.as_deref()).await
        }
    }
}

/// A path segment with the characters a URL path must not carry raw escaped.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("batch:1m"), "batch:1m");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("*/5 * * * *"), "%2A%2F5%20%2A%20%2A%20%2A%20%2A");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }
}
