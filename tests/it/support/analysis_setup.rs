//! Candle-close analysis tests' setup: the simulator on a fast clock, the simulated
//! llm-proxy, monitored schedules, and reading their decisions and status back.

use std::time::Duration;

use market_sim::{LlmProxy, SimConfig, SimHandle};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::market::{hour, mirrored_clock};
use super::{TestApp, eventually, test_config};

pub const MINUTE: i64 = 60_000;
pub const KEY: &str = "sk-analysis-test-secret-0123456789";
pub const SYMBOL: &str = "ANAUSDT";

/// A simulator 30× real time (a 1m candle every 2 s), 10 s before a minute boundary,
/// with `SYMBOL`.
pub async fn fast_sim() -> SimHandle {
    sim_at(30.0).await
}

pub async fn sim_at(speed: f64) -> SimHandle {
    market_sim::start(SimConfig {
        start_ms: Some(hour(70) - 10_000),
        speed,
        extra_symbols: vec![SYMBOL.into()],
        ws_ping_interval: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

pub async fn proxy() -> LlmProxy {
    LlmProxy::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A schedule being monitored; answers (schedule id, signal id).
pub async fn schedule(pool: &PgPool, interval: &str, max_reanalyses: i32) -> (Uuid, Uuid) {
    schedule_of(pool, interval, max_reanalyses, Uuid::new_v4()).await
}

/// A schedule of `trader`'s.
pub async fn schedule_of(
    pool: &PgPool,
    interval: &str,
    max_reanalyses: i32,
    trader: Uuid,
) -> (Uuid, Uuid) {
    let (id, signal) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO workflow_schedules (id, entity_id, trader_id, interval, symbol, max_reanalyses)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(signal)
    .bind(trader)
    .bind(interval)
    .bind(SYMBOL)
    .bind(max_reanalyses)
    .execute(pool)
    .await
    .unwrap();
    (id, signal)
}

pub fn analysis_config(
    sim: &SimHandle,
    proxy: &LlmProxy,
    extra: &[(&str, &str)],
) -> monitoring_service::config::Config {
    let (binance, ws, url) = (sim.binance_url(), sim.binance_ws_url(), proxy.url());
    let mut vars = vec![
        ("BINANCE_BASE_URL", binance.as_str()),
        ("BINANCE_WS_URL", ws.as_str()),
        ("ENABLE_WEBSOCKETS", "true"),
        ("ANALYSIS_URL", url.as_str()),
        ("ANALYSIS_API_KEY", KEY),
    ];
    vars.extend_from_slice(extra);
    test_config(true, &vars)
}

pub async fn start(
    pool: &PgPool,
    sim: &SimHandle,
    proxy: &LlmProxy,
    extra: &[(&str, &str)],
) -> TestApp {
    let app = TestApp::spawn_with_clock(
        pool.clone(),
        analysis_config(sim, proxy, extra),
        mirrored_clock(sim),
    )
    .await;
    app.wait_ready().await;
    app
}

/// (decision, candle) of a schedule's rows, oldest first.
pub async fn decisions(pool: &PgPool, schedule: Uuid) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT decision, candle_open_time FROM monitoring_decisions
          WHERE schedule_id = $1 ORDER BY candle_open_time",
    )
    .bind(schedule)
    .fetch_all(pool)
    .await
    .unwrap()
}

pub async fn status_of(pool: &PgPool, schedule: Uuid) -> (String, i32, i32, bool) {
    sqlx::query_as(
        "SELECT status, reanalysis_count, consecutive_errors, is_active FROM workflow_schedules WHERE id = $1",
    )
    .bind(schedule)
    .fetch_one(pool)
    .await
    .unwrap()
}

pub async fn wait_status(pool: &PgPool, schedule: Uuid, status: &str) {
    eventually(Duration::from_secs(60), status, || async {
        (status_of(pool, schedule).await.0 == status).then_some(())
    })
    .await;
}

/// The proxy's requests for `signal`, in arrival order.
pub fn requests_for(proxy: &LlmProxy, signal: Uuid) -> Vec<Value> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.body["signal_id"] == signal.to_string())
        .map(|r| r.body)
        .collect()
}
