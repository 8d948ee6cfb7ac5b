//! `market-sim`: serves the simulator on loopback until interrupted.
//!
//! ```text
//! market-sim --binance-port 9101 --coingecko-port 9102 --ethereum-port 9103 \
//!            --speed 1 --script paths.json --symbols SYM1USDT,SYM2USDT --llm-port 9104 \
//!            --inbox-port 9105
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "A local Binance / CoinGecko / Ethereum RPC simulator")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    #[arg(long, default_value_t = 9101)]
    binance_port: u16,
    #[arg(long, default_value_t = 9102)]
    coingecko_port: u16,
    #[arg(long, default_value_t = 9103)]
    ethereum_port: u16,
    /// Simulated seconds per real second (0 = frozen).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Simulated start time, Unix milliseconds (default: now).
    #[arg(long)]
    start_ms: Option<i64>,
    /// A script file of price paths: {"paths": [...]}.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Extra Binance symbols, comma-separated.
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// The simulated llm-proxy's port (0: not started).
    #[arg(long, default_value_t = 0)]
    llm_port: u16,
    /// The demo inbox's port — Telegram's sendMessage and webhooks, each message
    /// printed (0: not started).
    #[arg(long, default_value_t = 0)]
    inbox_port: u16,
    /// Seconds between WebSocket pings.
    #[arg(long, default_value_t = 20)]
    ping_seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let script = match &args.script {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let addr = |port| SocketAddr::new(args.host, port);
    let config = market_sim::SimConfig {
        start_ms: args.start_ms,
        speed: args.speed,
        extra_symbols: args.symbols.clone(),
        script,
        ws_ping_interval: Duration::from_secs(args.ping_seconds.max(1)),
        bind: [
            addr(args.binance_port),
            addr(args.coingecko_port),
            addr(args.ethereum_port),
        ],
        ..Default::default()
    };
    let sim = market_sim::start(config).await?;
    println!(
        "binance   {} (ws {})",
        sim.binance_url(),
        sim.binance_ws_url()
    );
    println!("coingecko {}", sim.coingecko_url());
    println!("ethereum  {}", sim.ethereum_url());
    if args.llm_port != 0 {
        let proxy = market_sim::LlmProxy::start(addr(args.llm_port)).await?;
        println!("llm-proxy {}", proxy.url());
    }
    if args.inbox_port != 0 {
        let inbox = market_sim::Inbox::start(addr(args.inbox_port), true).await?;
        println!("inbox     {} (Telegram API and webhooks)", inbox.url());
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}
