//! Indicator throughput against TA-Lib's C code on the same series, in the same run:
//! each indicator's median over 30 runs here, then TA-Lib's through its Python binding
//! (`benches/talib_timing.py`; the per-call overhead of the binding is about a
//! microsecond, under 0.1 % of a call on this series). Prints the ratio; TA-Lib's
//! column is skipped when the `ta-lib` wheel is not installed.
//!
//! Both processes run with the same glibc malloc tunables (fixed mmap and trim
//! thresholds). Without them glibc hands large freed outputs back to the kernel after
//! every call, and each call then pays ~400 page faults per 1.6 MB output — an artefact
//! of timing one 200,000-candle call in a loop that would swamp the arithmetic. The
//! service computes on at most 1,000 candles, where no output comes near those
//! thresholds.
//!
//!     cargo bench --bench indicators

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use monitoring_service::indicators as ta;

#[path = "fixtures.rs"]
mod fixtures;

const CANDLES: usize = 200_000;
const ROUNDS: usize = 30;
const MALLOC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456";

fn median_of(mut run: impl FnMut()) -> Duration {
    run();
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // Re-run with the tunables: glibc reads them only at process start.
        let status = Command::new(std::env::current_exe().expect("own path"))
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", MALLOC_TUNABLES)
            .status()
            .expect("re-exec");
        std::process::exit(status.code().unwrap_or(1));
    }
    let series = fixtures::series(CANDLES, 7, 100.0);
    let (h, l, c, v) = (
        &series.high[..],
        &series.low[..],
        &series.close[..],
        &series.volume[..],
    );
    let ours: Vec<(&str, Duration)> = vec![
        (
            "sma(20)",
            median_of(|| {
                black_box(ta::sma(black_box(c), 20));
            }),
        ),
        (
            "ema(20)",
            median_of(|| {
                black_box(ta::ema(black_box(c), 20));
            }),
        ),
        (
            "wma(20)",
            median_of(|| {
                black_box(ta::wma(black_box(c), 20));
            }),
        ),
        (
            "rsi(14)",
            median_of(|| {
                black_box(ta::rsi(black_box(c), 14));
            }),
        ),
        (
            "macd(12,26,9)",
            median_of(|| {
                black_box(ta::macd(black_box(c), 12, 26, 9));
            }),
        ),
        (
            "bbands(20,2)",
            median_of(|| {
                black_box(ta::bbands(black_box(c), 20, 2.0));
            }),
        ),
        (
            "atr(14)",
            median_of(|| {
                black_box(ta::atr(h, l, black_box(c), 14));
            }),
        ),
        (
            "stoch(14,3,3)",
            median_of(|| {
                black_box(ta::stoch(h, l, black_box(c), 14, 3, 3));
            }),
        ),
        (
            "volume_sma(20)",
            median_of(|| {
                black_box(ta::sma(black_box(v), 20));
            }),
        ),
    ];

    let file = std::env::temp_dir().join(format!("indicator-bench-{}.json", std::process::id()));
    let data = serde_json::json!({"high": h, "low": l, "close": c, "volume": v});
    std::fs::write(&file, data.to_string()).expect("temp file is writable");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/talib_timing.py");
    let talib: Option<serde_json::Value> = Command::new("python3")
        .arg(script)
        .arg(&file)
        .arg(ROUNDS.to_string())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| serde_json::from_slice(&out.stdout).ok());
    let _ = std::fs::remove_file(&file);

    println!("{CANDLES} candles, median of {ROUNDS} runs");
    println!(
        "{:<16} {:>12} {:>12} {:>16}",
        "indicator", "ours (µs)", "TA-Lib (µs)", "TA-Lib / ours"
    );
    for (name, duration) in ours {
        let us = duration.as_secs_f64() * 1e6;
        match talib.as_ref().and_then(|t| t[name].as_f64()) {
            Some(seconds) => {
                let theirs = seconds * 1e6;
                println!(
                    "{name:<16} {us:>12.0} {theirs:>12.0} {:>15.2}x",
                    theirs / us
                );
            }
            None => println!("{name:<16} {us:>12.0} {:>12} {:>16}", "-", "-"),
        }
    }
}
