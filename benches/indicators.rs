//! Indicator throughput against TA-Lib's C code on the same series, in the same run,
//! interleaved: each round times one call of ours, then one call of TA-Lib's through
//! its Python binding (`benches/talib_timing.py`, a child process timing the call
//! itself; the binding adds about a microsecond), indicator by indicator — so a noisy
//! moment of the machine hits both sides alike. Prints each side's median and its
//! 10th–90th percentile spread, the ratio of medians and the spread of the per-round
//! ratios. TA-Lib's columns are left empty when the `ta-lib` wheel is not installed
//! (`TALIB_PYTHON` names the interpreter; `python3` by default).
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
const ROUNDS: usize = 41;
const MALLOC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456";

/// The p-th percentile (0–100) of `values` (sorted here).
fn percentile(values: &mut [f64], p: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) * p / 100]
}

/// TA-Lib's side: the Python child timing one call per request.
struct TaLib {
    child: std::process::Child,
    answers: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl TaLib {
    fn start(series_file: &std::path::Path) -> Option<Self> {
        use std::io::BufRead;
        let python = std::env::var("TALIB_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/talib_timing.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(series_file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut answers = std::io::BufReader::new(child.stdout.take()?).lines();
        (answers.next()?.ok()? == "ready").then_some(Self { child, answers })
    }

    /// One call of `name`, timed by the child.
    fn time(&mut self, name: &str) -> Option<Duration> {
        use std::io::Write;
        writeln!(self.child.stdin.as_mut()?, "{name}").ok()?;
        let nanos: u64 = self.answers.next()?.ok()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }
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
    type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let cases: Vec<Case> = vec![
        (
            "sma(20)",
            Box::new(|| drop(black_box(ta::sma(black_box(c), 20)))),
        ),
        (
            "ema(20)",
            Box::new(|| drop(black_box(ta::ema(black_box(c), 20)))),
        ),
        (
            "wma(20)",
            Box::new(|| drop(black_box(ta::wma(black_box(c), 20)))),
        ),
        (
            "rsi(14)",
            Box::new(|| drop(black_box(ta::rsi(black_box(c), 14)))),
        ),
        (
            "macd(12,26,9)",
            Box::new(|| drop(black_box(ta::macd(black_box(c), 12, 26, 9)))),
        ),
        (
            "bbands(20,2)",
            Box::new(|| drop(black_box(ta::bbands(black_box(c), 20, 2.0)))),
        ),
        (
            "atr(14)",
            Box::new(|| drop(black_box(ta::atr(h, l, black_box(c), 14)))),
        ),
        (
            "stoch(14,3,3)",
            Box::new(|| drop(black_box(ta::stoch(h, l, black_box(c), 14, 3, 3)))),
        ),
        (
            "volume_sma(20)",
            Box::new(|| drop(black_box(ta::sma(black_box(v), 20)))),
        ),
    ];

    let file = std::env::temp_dir().join(format!("indicator-bench-{}.json", std::process::id()));
    let data = serde_json::json!({"high": h, "low": l, "close": c, "volume": v});
    std::fs::write(&file, data.to_string()).expect("temp file is writable");
    let mut talib = TaLib::start(&file);
    let _ = std::fs::remove_file(&file);

    // Warm-up, then rounds: ours, theirs, indicator by indicator.
    for (_, run) in &cases {
        run();
    }
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (k, (name, run)) in cases.iter().enumerate() {
            let started = Instant::now();
            run();
            ours[k].push(started.elapsed().as_secs_f64() * 1e6);
            if let Some(duration) = talib.as_mut().and_then(|t| t.time(name)) {
                theirs[k].push(duration.as_secs_f64() * 1e6);
            }
        }
    }

    println!("{CANDLES} candles, {ROUNDS} interleaved rounds; medians [10th–90th percentile]");
    println!(
        "{:<16} {:>20} {:>20} {:>14} {:>16}",
        "indicator", "ours (µs)", "TA-Lib (µs)", "TA-Lib / ours", "per-round ratio"
    );
    for (k, (name, _)) in cases.iter().enumerate() {
        let spread = |values: &mut Vec<f64>| {
            let (p10, p50, p90) = (
                percentile(values, 10),
                percentile(values, 50),
                percentile(values, 90),
            );
            (p50, format!("{p50:.0} [{p10:.0}–{p90:.0}]"))
        };
        // Per-round ratios before the sorting below.
        let mut ratios: Vec<f64> = theirs[k].iter().zip(&ours[k]).map(|(t, o)| t / o).collect();
        let (our_median, our_text) = spread(&mut ours[k]);
        if theirs[k].len() == ours[k].len() {
            let (their_median, their_text) = spread(&mut theirs[k]);
            println!(
                "{name:<16} {our_text:>20} {their_text:>20} {:>13.2}x {:>7.2}–{:.2}x",
                their_median / our_median,
                percentile(&mut ratios, 10),
                percentile(&mut ratios, 90)
            );
        } else {
            println!(
                "{name:<16} {our_text:>20} {:>20} {:>14} {:>16}",
                "-", "-", "-"
            );
        }
    }
}
