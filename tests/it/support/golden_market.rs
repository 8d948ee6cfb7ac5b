//! A market simulator scripted with the golden candles (the series TA-Lib's reference
//! values were computed on), and the simulate route over it.

use market_sim::{Script, ScriptedPath, SimConfig};
use serde_json::{Value, json};

use super::TestApp;
use super::market::hour;

pub const MINUTE: i64 = 60_000;
pub const SYMBOL: &str = "GOLDENUSDT";

/// The golden series `btc_random_walk_600`: its closes and one indicator's outputs.
pub struct Golden {
    pub closes: Vec<f64>,
    cases: Vec<Value>,
}

impl Golden {
    pub fn load() -> Self {
        let golden: Value =
            serde_json::from_str(include_str!("../../golden/indicators.json")).unwrap();
        let series = golden["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "btc_random_walk_600")
            .unwrap()
            .clone();
        Self {
            closes: serde_json::from_value(series["close"].clone()).unwrap(),
            cases: series["cases"].as_array().unwrap().clone(),
        }
    }

    /// TA-Lib's last two values (last closed candle, the one before) of an output.
    pub fn last_two(&self, indicator: &str, params: Value, output: &str) -> (f64, f64) {
        let case = self
            .cases
            .iter()
            .find(|c| c["indicator"] == indicator && c["params"] == params)
            .unwrap_or_else(|| panic!("no golden {indicator} {params}"));
        let values = case["outputs"][output].as_array().unwrap();
        let n = values.len();
        (
            values[n - 1].as_f64().unwrap(),
            values[n - 2].as_f64().unwrap(),
        )
    }
}

pub fn indicator(params: Value) -> (&'static str, Value) {
    let mut params = params;
    let object = params.as_object_mut().unwrap();
    object.insert("source".into(), json!("binance"));
    object.insert("symbol".into(), json!(SYMBOL));
    object.insert("interval".into(), json!("1m"));
    ("technical_indicator", params)
}

pub async fn simulate(app: &TestApp, id: &str) -> (u16, Value) {
    let path = format!("/internal/simulate/{id}");
    app.internal(reqwest::Method::POST, &path).await
}

/// A simulator replaying the golden closes on `SYMBOL` (1m candles), frozen 20 s into
/// the candle after the last golden one. Answers it, the first candle's open time and
/// the number of golden candles.
pub async fn golden_market(golden: &Golden) -> (market_sim::SimHandle, i64, i64) {
    let n = golden.closes.len() as i64;
    // Candle k opens at start + k minutes with close = closes[k]: a scripted path's
    // candle runs from point k to point k + 1.
    let start = hour(60) - n * MINUTE;
    let mut points = vec![golden.closes[0]];
    points.extend(&golden.closes);
    let script = Script {
        paths: vec![ScriptedPath {
            source: "binance".into(),
            symbol: SYMBOL.into(),
            start_ms: start,
            step_ms: MINUTE,
            points,
        }],
    };
    let sim = market_sim::start(SimConfig {
        start_ms: Some(start + n * MINUTE + 20_000),
        speed: 0.0,
        script: Some(script),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    (sim, start, n)
}

pub fn assert_close(what: &str, ours: &Value, theirs: f64) {
    let ours = ours.as_f64().unwrap_or_else(|| panic!("{what}: {ours}"));
    let tolerance = 1e-9 * theirs.abs().max(1.0);
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: engine {ours}, TA-Lib {theirs}"
    );
}
