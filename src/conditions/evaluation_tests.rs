//! Conditions evaluated against prepared snapshots: results, unknowns and what they
//! report as observed.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::indicators::{self, IndicatorSpec};
use crate::logic_tree::BatchContext;
use crate::market::{CandleSeries, Interval, MarketSnapshot, PriceKey, Quote, SeriesKey};

const HOUR_MS: i64 = 3_600_000;

fn condition(kind: &str, params: Value) -> Condition {
    Condition::parse(kind, &params.to_string(), &mut SymbolInterner::default()).unwrap()
}

fn series_from_closes(closes: &[f64]) -> CandleSeries {
    let mut series = CandleSeries::default();
    for (i, &c) in closes.iter().enumerate() {
        series.push(
            i as i64 * HOUR_MS,
            [c, c + 1.0, c - 1.0, c, 100.0 + i as f64],
        );
    }
    series
}

fn btc_1h() -> SeriesKey {
    SeriesKey {
        source: Source::Binance,
        symbol: Arc::from("BTCUSDT"),
        interval: Interval::H1,
    }
}

fn context(
    series: Option<CandleSeries>,
    price: Option<f64>,
    conditions: &[&Condition],
) -> BatchContext {
    let mut snapshot = MarketSnapshot::default();
    if let Some(series) = series {
        snapshot.candles.insert(btc_1h(), Arc::new(series));
    }
    if let Some(price) = price {
        let key = PriceKey {
            source: Source::Binance,
            symbol: Arc::from("BTCUSDT"),
        };
        snapshot.prices.insert(
            key.clone(),
            Quote {
                price,
                answered_by: Source::Binance,
                at_ms: 0,
            },
        );
        snapshot.prices_ago.insert((key, 3600), 100.0);
    }
    let keys: Vec<_> = conditions
        .iter()
        .flat_map(|c| c.indicator_keys())
        .cloned()
        .collect();
    BatchContext::prepare(Arc::new(snapshot), keys.iter())
}

/// A deterministic wavy series.
fn wave(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((state >> 33) % 1000) as f64 / 1000.0 - 0.5;
            100.0 + 10.0 * (i as f64 / 7.0).sin() + 3.0 * noise
        })
        .collect()
}

#[test]
fn rsi_below_30_reads_the_last_closed_candle() {
    let rsi = condition(
        "technical_indicator",
        json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
               "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
    );
    let falling: Vec<f64> = (0..40).map(|i| 100.0 - f64::from(i)).collect();
    let ctx = context(Some(series_from_closes(&falling)), None, &[&rsi]);
    let evaluation = rsi.evaluate(&ctx, None);
    assert_eq!(evaluation.result, Tri::True);
    assert_eq!(evaluation.observed.value, Some(0.0));
    assert_eq!(evaluation.observed.compare_to, Some(30.0));
    assert_eq!(evaluation.observed.bar_open_time_ms, Some(39 * HOUR_MS));
}

#[test]
fn missing_or_too_short_data_is_unknown() {
    let rsi = condition(
        "technical_indicator",
        json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
               "indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
    );
    assert_eq!(
        rsi.evaluate(&context(None, None, &[&rsi]), None).result,
        Tri::Unknown
    );
    let short = series_from_closes(&[1.0, 2.0, 3.0]);
    assert_eq!(
        rsi.evaluate(&context(Some(short), None, &[&rsi]), None)
            .result,
        Tri::Unknown
    );
}

#[test]
fn indicator_crosses_agree_with_the_indicator_functions() {
    let cross = condition(
        "technical_indicator",
        json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
               "indicator": "ema", "period": 5, "operator": "crosses_above",
               "compare_to": {"indicator": "sma", "period": 12}}),
    );
    let mut crosses_seen = 0;
    for length in 20..140 {
        let closes = wave(length, 42);
        // Each indicator is computed on its own fixed window of the last candles.
        let window =
            |spec: IndicatorSpec| &closes[closes.len().saturating_sub(spec.candles_needed())..];
        let fast = indicators::ema(window(IndicatorSpec::Ema { period: 5 }), 5);
        let slow = indicators::sma(window(IndicatorSpec::Sma { period: 12 }), 12);
        let (f, s) = (fast.len(), slow.len());
        let expected = fast[f - 2] <= slow[s - 2] && fast[f - 1] > slow[s - 1];
        crosses_seen += usize::from(expected);
        let ctx = context(Some(series_from_closes(&closes)), None, &[&cross]);
        let evaluation = cross.evaluate(&ctx, None);
        assert_eq!(
            evaluation.result,
            Tri::from_bool(expected),
            "length {length}"
        );
        assert_eq!(evaluation.observed.value, Some(fast[f - 1]));
        assert_eq!(evaluation.observed.previous, Some(fast[f - 2]));
        assert_eq!(evaluation.observed.compare_to, Some(slow[s - 1]));
    }
    assert!(
        crosses_seen >= 3,
        "the wave crosses several times ({crosses_seen})"
    );
}

#[test]
fn bands_compare_with_the_close() {
    let below_band = condition(
        "technical_indicator",
        json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
               "indicator": "bbands", "period": 20, "stddev": 2, "output": "lower",
               "operator": "above", "compare_to": "price"}),
    );
    let mut closes = vec![100.0; 30];
    closes.extend([101.0, 99.0, 100.5, 70.0]);
    let ctx = context(Some(series_from_closes(&closes)), None, &[&below_band]);
    let evaluation = below_band.evaluate(&ctx, None);
    assert_eq!(evaluation.result, Tri::True, "{evaluation:?}");
    assert_eq!(evaluation.observed.compare_to, Some(70.0));
}

#[test]
fn price_levels_crosses_and_percent_changes() {
    let above = condition(
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 65000}),
    );
    let cross = condition(
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_above", "value": 65000}),
    );
    let drop = condition(
        "price_alert",
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "pct_change_below", "value": -5, "window": "1h"}),
    );

    let ctx = context(None, Some(66000.0), &[]);
    assert_eq!(above.evaluate(&ctx, None).result, Tri::True);
    assert_eq!(
        cross.evaluate(&ctx, None).result,
        Tri::Unknown,
        "no previous price yet"
    );
    assert_eq!(cross.evaluate(&ctx, Some(64000.0)).result, Tri::True);
    assert_eq!(cross.evaluate(&ctx, Some(65500.0)).result, Tri::False);
    assert_eq!(cross.memory(&ctx), Some(66000.0));
    assert_eq!(above.memory(&ctx), None);
    let observed = cross.evaluate(&ctx, Some(64000.0)).observed;
    assert_eq!(
        (observed.value, observed.previous, observed.compare_to),
        (Some(66000.0), Some(64000.0), Some(65000.0))
    );
    assert_eq!(observed.answered_by, Some(Source::Binance));

    // 100 an hour ago → 94 now is -6 %.
    let ctx = context(None, Some(94.0), &[]);
    let evaluation = drop.evaluate(&ctx, None);
    assert_eq!(evaluation.result, Tri::True);
    assert!((evaluation.observed.value.unwrap() + 6.0).abs() < 1e-12);

    let empty = context(None, None, &[]);
    for c in [&above, &cross, &drop] {
        assert_eq!(c.evaluate(&empty, Some(1.0)).result, Tri::Unknown);
    }
}

#[test]
fn each_distinct_indicator_is_computed_once_per_batch() {
    let kinds = [
        json!({"indicator": "rsi", "period": 14, "operator": "below", "value": 30}),
        json!({"indicator": "ema", "period": 20, "operator": "above", "compare_to": {"indicator": "ema", "period": 50}}),
    ];
    let mut interner = SymbolInterner::default();
    let conditions: Vec<Condition> = (0..1000)
        .map(|i| {
            let mut params = kinds[i % 2].clone();
            params["source"] = json!("binance");
            params["symbol"] = json!("BTCUSDT");
            params["interval"] = json!("1h");
            Condition::parse("technical_indicator", &params.to_string(), &mut interner).unwrap()
        })
        .collect();
    let refs: Vec<&Condition> = conditions.iter().collect();
    let ctx = context(Some(series_from_closes(&wave(300, 1))), None, &refs);
    assert_eq!(ctx.indicator_count(), 3, "rsi(14), ema(20), ema(50)");
    // The interner shares one symbol allocation.
    assert!(Arc::ptr_eq(
        conditions[0].symbol(),
        conditions[999].symbol()
    ));
}
