//! The command line: `serve` (the default), `migrate` and `check-config` for the
//! service, and the operator subcommands of [`crate::cli::client`] for a running one.

pub mod client;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app;
use crate::config::Config;
use crate::telemetry;
use client::{ClientArgs, ClientCommand};

/// Exit code for a configuration problem (bad or missing key).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a dependency that could not be reached or prepared.
pub const EXIT_STARTUP: u8 = 1;

/// monitoring-service: watches trading strategies and alerts their owners.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// A TOML file layered between the defaults and the environment
    /// (default: ./monitoring.toml when present).
    #[arg(long, global = true, env = "MONITORING_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when omitted.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration with secrets redacted and exit.
    CheckConfig,
    #[command(flatten)]
    Client(ClientCommand),
}

/// Parses the command line and runs the command; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    // Fault tests stop a debug build at a named place to kill it there.
    if cfg!(debug_assertions)
        && let Ok(point) = std::env::var("MONITORING_FAIL_POINT")
    {
        crate::failpoint::arm(&point);
    }
    // Operator subcommands load no server setting: they only talk to a service.
    let load = || {
        Config::load(cli.config.as_deref()).map_err(|err| {
            eprintln!("configuration error: {err}");
            ExitCode::from(EXIT_CONFIG)
        })
    };
    let outcome = match command {
        Command::Client(command) => Ok(client::run(cli.client.clone(), command)),
        Command::CheckConfig => load().map(|config| {
            for (key, value) in config.redacted() {
                println!("{key}={value}");
            }
            ExitCode::SUCCESS
        }),
        Command::Migrate => load().map(|config| {
            telemetry::init(config.log.format, &config.log.filter);
            runtime().block_on(migrate(config))
        }),
        Command::Serve => load().map(|config| {
            telemetry::init(config.log.format, &config.log.filter);
            runtime().block_on(serve(config))
        }),
    };
    outcome.unwrap_or_else(|code| code)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

async fn migrate(config: Config) -> ExitCode {
    match app::connect(config).await {
        Ok(state) => {
            state.db.close().await;
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "migrate failed");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let address = config.bind_address();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = ?config.redacted(),
        "starting"
    );
    let state = match app::connect(config).await {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(%address, error = %err, "cannot bind");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    app::cancel_on_signal(state.shutdown.clone());
    match app::serve(listener, state).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}
