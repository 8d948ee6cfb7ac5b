//! Backtests (DESIGN §15) against the market simulator's candles and real Postgres:
//! fires equal to TA-Lib's, the trigger modes' semantics, live and backtest agreeing,
//! the candle store asked once, and every refusal.

mod cli;
mod golden_rsi;
mod limits;
mod live_agreement;
mod modes;
mod retention;
mod state_carry;

use market_sim::{Script, ScriptedPath, SimConfig, SimHandle};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::market::mirrored_clock;
use crate::support::{TestApp, test_config};

/// A service on `sim`'s Binance and clock.
pub async fn app_on(pool: PgPool, sim: &SimHandle, extra: &[(&str, &str)]) -> TestApp {
    let binance = sim.binance_url();
    let mut vars = vec![("BINANCE_BASE_URL", binance.as_str())];
    vars.extend_from_slice(extra);
    let config = test_config(false, &vars);
    TestApp::spawn_with_clock(pool, config, mirrored_clock(sim)).await
}

/// A simulator frozen at `now_ms` whose `symbol` follows `points` (one every `step_ms`
/// from `start_ms`).
pub async fn scripted_sim(
    now_ms: i64,
    symbol: &str,
    start_ms: i64,
    step_ms: i64,
    points: Vec<f64>,
) -> SimHandle {
    market_sim::start(SimConfig {
        start_ms: Some(now_ms),
        speed: 0.0,
        script: Some(Script {
            paths: vec![ScriptedPath {
                source: "binance".into(),
                symbol: symbol.into(),
                start_ms,
                step_ms,
                points,
            }],
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// `POST /internal/backtest` with `body`: the status and the answer.
pub async fn backtest(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/internal/backtest", &body).await
}

/// An RFC 3339 time of Unix milliseconds, as the service writes it.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The fire times of an answer, as Unix milliseconds.
pub fn fire_times(report: &Value) -> Vec<i64> {
    report["fires"]
        .as_array()
        .unwrap_or_else(|| panic!("no fires in {report}"))
        .iter()
        .map(|f| {
            chrono::DateTime::parse_from_rfc3339(f["at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis()
        })
        .collect()
}

/// A draft of one condition `params` (kind `kind`) as its whole tree.
pub fn draft(frequency: &str, mode: &str, cooldown: i64, kind: &str, params: Value) -> Value {
    let id = "00000000-0000-4000-8000-00000000c001";
    json!({
        "frequency": frequency, "trigger_mode": mode, "cooldown_seconds": cooldown,
        "logic_tree": {"condition": id},
        "conditions": [{"id": id, "kind": kind, "params": params}],
    })
}
