//! Every indicator against TA-Lib's own output on the same candles
//! (`tests/golden/indicators.json`, made by `scripts/golden/generate_indicators.py`):
//! the functions on whole series, and each bar's value as the service computes it — on
//! the indicator's fixed window ending at that bar. Warm-up must line up exactly (NaN
//! where TA-Lib has no value) and every value must agree to 1e-9 relative (1e-12
//! absolute for values near zero).

use monitoring_service::indicators::{self, IndicatorSpec};
use monitoring_service::market::CandleSeries;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    talib_c: String,
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    indicator: String,
    params: serde_json::Map<String, serde_json::Value>,
    outputs: std::collections::BTreeMap<String, Vec<Option<f64>>>,
    /// The service's window for this indicator.
    window: usize,
    /// TA-Lib on the window ending at each bar.
    windowed: std::collections::BTreeMap<String, Vec<Option<f64>>>,
}

fn load() -> Golden {
    serde_json::from_str(include_str!("../../golden/indicators.json")).expect("golden file parses")
}

fn param(case: &Case, name: &str) -> f64 {
    case.params[name].as_f64().expect(name)
}

fn compute(series: &Series, case: &Case) -> Vec<(&'static str, Vec<f64>)> {
    let p = |name| param(case, name) as usize;
    let (h, l, c) = (&series.high[..], &series.low[..], &series.close[..]);
    match case.indicator.as_str() {
        "sma" => vec![("value", indicators::sma(c, p("period")))],
        "ema" => vec![("value", indicators::ema(c, p("period")))],
        "wma" => vec![("value", indicators::wma(c, p("period")))],
        "rsi" => vec![("value", indicators::rsi(c, p("period")))],
        "macd" => {
            let m = indicators::macd(c, p("fast"), p("slow"), p("signal"));
            vec![
                ("macd", m.macd),
                ("signal", m.signal),
                ("histogram", m.histogram),
            ]
        }
        "bbands" => {
            let b = indicators::bbands(c, p("period"), param(case, "stddev"));
            vec![("upper", b.upper), ("middle", b.middle), ("lower", b.lower)]
        }
        "atr" => vec![("value", indicators::atr(h, l, c, p("period")))],
        "stoch" => {
            let s = indicators::stoch(h, l, c, p("period"), p("k_smoothing"), p("d_period"));
            vec![("k", s.k), ("d", s.d)]
        }
        "volume_sma" => vec![("value", indicators::sma(&series.volume, p("period")))],
        other => panic!("unknown indicator {other}"),
    }
}

/// Values compared against TA-Lib's, the worst relative error and the mismatches.
#[derive(Default)]
struct Comparison {
    compared: usize,
    worst: f64,
    failures: Vec<String>,
}

impl Comparison {
    fn check(&mut self, label: impl Fn() -> String, ours: f64, theirs: Option<f64>) {
        match theirs {
            None => {
                if !ours.is_nan() {
                    self.failures
                        .push(format!("{}: TA-Lib has no value, we have {ours}", label()));
                }
            }
            Some(e) => {
                self.compared += 1;
                let error = (ours - e).abs();
                let relative = if e.abs() > 1e-3 {
                    error / e.abs()
                } else {
                    error
                };
                self.worst = self.worst.max(relative);
                if !(error <= 1e-9 * e.abs() || error <= 1e-12) {
                    self.failures
                        .push(format!("{}: TA-Lib {e}, we {ours}", label()));
                }
            }
        }
    }

    fn assert_all_equal(&self, talib: &str, at_least: usize) {
        assert!(
            self.failures.is_empty(),
            "{} mismatches against TA-Lib {talib}:\n{}",
            self.failures.len(),
            self.failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(self.compared > at_least, "compared {}", self.compared);
        eprintln!(
            "{} values equal TA-Lib {talib}; worst relative error {:e}",
            self.compared, self.worst
        );
    }
}

#[test]
fn indicators_equal_talib() {
    let golden = load();
    let mut comparison = Comparison::default();
    for series in &golden.series {
        for case in &series.cases {
            for (output, ours) in compute(series, case) {
                let theirs = &case.outputs[output];
                assert_eq!(ours.len(), theirs.len());
                for (i, (a, e)) in ours.iter().zip(theirs).enumerate() {
                    let label = || {
                        format!(
                            "{} {} {:?} {output}[{i}]",
                            series.name, case.indicator, case.params
                        )
                    };
                    comparison.check(label, *a, *e);
                }
            }
        }
    }
    comparison.assert_all_equal(&golden.talib_c, 50_000);
}

/// The case as the service's indicator.
fn spec(case: &Case) -> IndicatorSpec {
    let p = |name| param(case, name) as u16;
    match case.indicator.as_str() {
        "sma" => IndicatorSpec::Sma {
            period: p("period"),
        },
        "ema" => IndicatorSpec::Ema {
            period: p("period"),
        },
        "wma" => IndicatorSpec::Wma {
            period: p("period"),
        },
        "rsi" => IndicatorSpec::Rsi {
            period: p("period"),
        },
        "macd" => IndicatorSpec::Macd {
            fast: p("fast"),
            slow: p("slow"),
            signal: p("signal"),
        },
        "bbands" => IndicatorSpec::Bbands {
            period: p("period"),
            stddev_bits: param(case, "stddev").to_bits(),
        },
        "atr" => IndicatorSpec::Atr {
            period: p("period"),
        },
        "stoch" => IndicatorSpec::Stoch {
            period: p("period"),
            k_smoothing: p("k_smoothing"),
            d_period: p("d_period"),
        },
        "volume_sma" => IndicatorSpec::VolumeSma {
            period: p("period"),
        },
        other => panic!("unknown indicator {other}"),
    }
}

/// The first `n` candles of `series`, as the kline cache holds a series.
fn first(series: &Series, n: usize) -> CandleSeries {
    CandleSeries {
        open_time: (0..n as i64).map(|i| i * 60_000).collect(),
        open: series.open[..n].to_vec(),
        high: series.high[..n].to_vec(),
        low: series.low[..n].to_vec(),
        close: series.close[..n].to_vec(),
        volume: series.volume[..n].to_vec(),
    }
}

#[test]
fn each_bar_on_its_fixed_window_equals_talib_on_that_window() {
    let golden = load();
    let mut comparison = Comparison::default();
    for series in &golden.series {
        for case in &series.cases {
            let spec = spec(case);
            assert_eq!(spec.candles_needed(), case.window, "{spec}: the window");
            for bar in 0..series.close.len() {
                // The cache may hold any amount of history: here, all of it up to the bar.
                let values = spec.compute(&first(series, bar + 1));
                for &output in spec.outputs() {
                    let label =
                        || format!("{} {spec} {} at bar {bar}", series.name, output.as_str());
                    let theirs = case.windowed[output.as_str()][bar];
                    comparison.check(label, values.get(output).last, theirs);
                }
            }
        }
    }
    comparison.assert_all_equal(&golden.talib_c, 50_000);
}
