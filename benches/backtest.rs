//! Backtest speed (issue 32, BENCHMARKS.md): the walk over a year of 1m candles
//! (525,600 moments) and over 30 days of 1h, for a strategy of three indicator
//! conditions on one symbol, side by side in the same run with the floor — the same
//! RSI/EMA/MACD signals computed over the same closes by TA-Lib (through its Python
//! wheel, `benches/backtest_talib.py`; left empty without it; `TALIB_PYTHON` names the
//! interpreter). With `BENCH_POSTGRES_URL` (scripts/bench.sh sets it), also filling a
//! year of 1m candles from the market simulator into the candle store (requests made,
//! time, weight used) and the whole backtest once the candles are stored.
//!
//!     scripts/bench.sh backtest

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use monitoring_service::backtest::{self, BacktestRequest, Backtester, Draft, Tape};
use monitoring_service::market::candle_history::CandleHistory;
use monitoring_service::market::{CandleSeries, Clock, Interval, SeriesKey, Source, Sources};
use serde_json::{Value, json};

#[path = "scratch_database.rs"]
mod scratch_database;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// An hour boundary (2027-01-15T08:00:00Z), the end of every span.
const END: i64 = 1_800_000_000_000;
const RUNS: usize = 5;

/// A seeded random walk of `n` closes, 0.1 % a step, with OHLCV around it.
fn candles(n: usize, first_open: i64, step: i64) -> CandleSeries {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut price = 65_000.0;
    let mut series = CandleSeries::default();
    for i in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 20_001) as f64 / 10_000.0 - 1.0;
        let open = price;
        price *= 1.0 + 0.002 * noise;
        let ohlcv = [
            open,
            open.max(price) * 1.0005,
            open.min(price) * 0.9995,
            price,
            10.0,
        ];
        series.push(first_open + i as i64 * step, ohlcv);
    }
    series
}

/// The benchmark's strategy on `interval`: RSI(14) below 30 and EMA(20) crossing above
/// EMA(50) and the MACD histogram above 0 (three indicator conditions, one symbol).
fn draft(interval: &str, frequency: &str, mode: &str) -> Draft {
    let ids = [
        "00000000-0000-4000-8000-0000000000a1",
        "00000000-0000-4000-8000-0000000000a2",
        "00000000-0000-4000-8000-0000000000a3",
    ];
    let base = json!({"source": "binance", "symbol": "BTCUSDT", "interval": interval});
    let with = |extra: Value| {
        let mut params = base.clone();
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        params
    };
    let params = [
        with(json!({"indicator": "rsi", "period": 14, "operator": "below", "value": 30})),
        with(
            json!({"indicator": "ema", "period": 20, "operator": "crosses_above",
                    "compare_to": {"indicator": "ema", "period": 50}}),
        ),
        with(json!({"indicator": "macd", "output": "histogram", "operator": "above", "value": 0})),
    ];
    serde_json::from_value(json!({
        "frequency": frequency, "trigger_mode": mode, "cooldown_seconds": 300,
        "logic_tree": {"or": ids.iter().map(|id| json!({"condition": id})).collect::<Vec<_>>()},
        "conditions": ids.iter().zip(params).map(|(id, params)|
            json!({"id": id, "kind": "technical_indicator", "params": params})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One span: the walk's median time and what it found; TA-Lib's median on the closes.
fn walk_case(name: &str, days: i64, interval: Interval, frequency: &str, mode: &str) {
    let step = interval.millis();
    let from = END - days * DAY;
    let warm_up = 1_100;
    let n = ((END - from) / step) as usize + warm_up;
    let series = candles(n, from - warm_up as i64 * step, step);
    let strategy = draft(interval.as_str(), frequency, mode)
        .compile(uuid::Uuid::nil())
        .unwrap();
    let key = SeriesKey {
        source: Source::Binance,
        symbol: Arc::from("BTCUSDT"),
        interval,
    };
    let closes = series.close.clone();
    let tape = Tape::of([(key, series)].into_iter().collect());
    let mut times = Vec::new();
    let mut found = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let moments = backtest::moments(&strategy, at(from), at(END));
        let walked = backtest::walk(&strategy, &tape, &moments);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        found = Some((walked.moments, walked.fire_times.len()));
    }
    let (moments, fires) = found.unwrap();
    let talib = talib_ms(&closes);
    println!(
        "{name:<28} {moments:>9} moments {fires:>7} fires   ours {:>9.1} ms   TA-Lib signals {}",
        median(times),
        talib.map_or("—".to_owned(), |ms| format!("{ms:>7.2} ms")),
    );
}

/// TA-Lib's median time for the same signals over `closes` (whole-series calls and
/// vectorised comparisons), or none without the wheel.
fn talib_ms(closes: &[f64]) -> Option<f64> {
    let file = std::env::temp_dir().join(format!("backtest_closes_{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string(closes).unwrap()).ok()?;
    let python = std::env::var("TALIB_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/backtest_talib.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&file)
        .arg(RUNS.to_string())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&file);
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

fn main() {
    println!("backtest walk (median of {RUNS}; three indicator conditions, one symbol)");
    walk_case(
        "365 days of 1m, every 1m",
        365,
        Interval::M1,
        "1m",
        "every_time",
    );
    walk_case(
        "30 days of 1h, on closes",
        30,
        Interval::H1,
        "candle_close",
        "once_per_bar_close",
    );
    if let Ok(server) = std::env::var("BENCH_POSTGRES_URL") {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(fill_and_run(&server));
    } else {
        println!("(BENCH_POSTGRES_URL unset: the fill and the stored backtest are skipped)");
    }
}

/// Fills a year of 1m candles (and the indicators' warm-up before it) from the
/// simulator, then backtests from the store.
async fn fill_and_run(server: &str) {
    let database = scratch_database::ScratchDatabase::create(server, "bench_backtest", 8).await;
    let now = END + 30_000;
    let sim = market_sim::start(market_sim::SimConfig {
        start_ms: Some(now),
        speed: 0.0,
        ..market_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let config = monitoring_service::market::SourcesConfig {
        binance_base_url: sim.binance_url(),
        coingecko_base_url: sim.coingecko_url(),
        eth_rpc_url: None,
        binance_weight_budget: 4800,
        fallback_coingecko_ids: Default::default(),
        upstream: monitoring_service::market::sources::UpstreamSettings::default(),
    };
    let metrics = Arc::new(monitoring_service::metrics::Metrics::new());
    let sources = Arc::new(Sources::new(&config, Arc::new(metrics.market.clone())));
    let history = CandleHistory::new(database.pool.clone(), sources.clone());
    let started = Instant::now();
    let filled = history
        .span(
            "BTCUSDT",
            Interval::M1,
            at(END - 365 * DAY - 300 * MINUTE),
            at(now),
            at(now),
        )
        .await
        .unwrap();
    let fill_s = started.elapsed().as_secs_f64();
    let requests = sim
        .state
        .request_count(market_sim::Provider::Binance, Some("/api/v3/klines"));
    println!(
        "fill a year of 1m from the simulator: {} candles, {requests} requests (weight {}), {fill_s:.1} s",
        filled.candles.len(),
        requests * 2,
    );
    let backtester = Backtester::new(database.pool.clone(), history, Clock::manual(now), 2);
    let mut times = Vec::new();
    for _ in 0..3 {
        let request = BacktestRequest {
            strategy_id: None,
            strategy: Some(draft("1m", "1m", "every_time")),
            from: Some(at(END - 365 * DAY)),
            to: Some(at(END)),
        };
        let started = Instant::now();
        let report = backtester.run(request).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(report.series[0].fetched, 0, "read from the store");
    }
    println!(
        "a year of 1m from the store, whole backtest (read + walk): median {:.0} ms",
        median(times)
    );
    database.drop_now().await;
}
