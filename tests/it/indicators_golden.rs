//! Every indicator against TA-Lib's own output on the same candles
//! (`tests/golden/indicators.json`, made by `scripts/golden/generate_indicators.py`).
//! Warm-up must line up exactly (NaN where TA-Lib has no value) and every value must
//! agree to 1e-9 relative (1e-12 absolute for values near zero).

use monitoring_service::indicators;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    talib_c: String,
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
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
}

fn load() -> Golden {
    serde_json::from_str(include_str!("../golden/indicators.json")).expect("golden file parses")
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

#[test]
fn indicators_equal_talib() {
    let golden = load();
    let mut compared = 0usize;
    let mut worst = 0.0f64;
    let mut failures = Vec::new();
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
                    match e {
                        None => {
                            if !a.is_nan() {
                                failures
                                    .push(format!("{}: TA-Lib has no value, we have {a}", label()));
                            }
                        }
                        Some(e) => {
                            compared += 1;
                            let error = (a - e).abs();
                            let relative = if e.abs() > 1e-3 {
                                error / e.abs()
                            } else {
                                error
                            };
                            worst = worst.max(relative);
                            if !(error <= 1e-9 * e.abs() || error <= 1e-12) {
                                failures.push(format!("{}: TA-Lib {e}, we {a}", label()));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches against TA-Lib {}:\n{}",
        failures.len(),
        golden.talib_c,
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(compared > 50_000, "compared {compared} values");
    eprintln!(
        "{compared} values equal TA-Lib {}; worst relative error {worst:e}",
        golden.talib_c
    );
}
