//! Deterministic strategies and market data shared by the benchmarks.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use monitoring_service::conditions::SymbolInterner;
use monitoring_service::market::{
    CandleSeries, Interval, MarketSnapshot, PriceKey, Quote, SeriesKey, Source,
};
use monitoring_service::strategy::{CompiledStrategy, ConditionRow, ResolvedStrategy, StrategyRow};
use serde_json::{Value, json};
use uuid::Uuid;

pub const SYMBOLS: usize = 50;
pub const CANDLES: usize = 1000;

pub fn symbol(i: usize) -> String {
    format!("SYM{i}USDT")
}

/// A deterministic wavy price path around `base`.
pub fn wave(n: usize, seed: u64, base: f64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 10_000) as f64 / 10_000.0 - 0.5;
            base * (1.0 + 0.05 * (i as f64 / 17.0).sin() + 0.01 * noise)
        })
        .collect()
}

pub fn series(n: usize, seed: u64, base: f64) -> CandleSeries {
    let closes = wave(n, seed, base);
    let mut series = CandleSeries::default();
    for (i, &close) in closes.iter().enumerate() {
        let open = if i == 0 { close } else { closes[i - 1] };
        series.push(
            i as i64 * 3_600_000,
            [
                open,
                open.max(close) * 1.002,
                open.min(close) * 0.998,
                close,
                1000.0 + (i % 97) as f64,
            ],
        );
    }
    series
}

/// The params of the three condition shapes the fixtures mix.
pub fn condition_params(i: usize, slot: usize) -> (&'static str, Value) {
    let symbol = symbol(i % SYMBOLS);
    let interval = if i.is_multiple_of(2) { "1h" } else { "4h" };
    match slot {
        0 => (
            "price_alert",
            json!({"source": "binance", "symbol": symbol, "operator": if i.is_multiple_of(3) { "above" } else { "below" },
                   "value": 100.0 * (1.0 + (i % 7) as f64 / 100.0)}),
        ),
        1 => (
            "technical_indicator",
            json!({"source": "binance", "symbol": symbol, "interval": interval, "indicator": "rsi",
                   "period": 14, "operator": "below", "value": 30 + (i % 40)}),
        ),
        _ => {
            if i.is_multiple_of(2) {
                (
                    "technical_indicator",
                    json!({"source": "binance", "symbol": symbol, "interval": interval,
                    "indicator": "ema", "period": 20, "operator": "crosses_above",
                    "compare_to": {"indicator": "ema", "period": 50}}),
                )
            } else {
                (
                    "technical_indicator",
                    json!({"source": "binance", "symbol": symbol, "interval": interval,
                    "indicator": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "histogram",
                    "operator": "above", "value": 0}),
                )
            }
        }
    }
}

/// Strategy `i` in resolved form: three conditions under `and(A, or(B, C))` or
/// `or(A, and(B, not C))`.
pub fn resolved(i: usize) -> ResolvedStrategy {
    let id = Uuid::from_u128(i as u128 + 1);
    let ids: Vec<Uuid> = (0..3)
        .map(|k| Uuid::from_u128(((i as u128 + 1) << 8) | k))
        .collect();
    let tree = if i.is_multiple_of(2) {
        json!({"and": [{"condition": ids[0]}, {"or": [{"condition": ids[1]}, {"condition": ids[2]}]}]})
    } else {
        json!({"or": [{"condition": ids[0]}, {"and": [{"condition": ids[1]}, {"not": {"condition": ids[2]}}]}]})
    };
    ResolvedStrategy {
        row: StrategyRow {
            id,
            user_id: Uuid::from_u128(i as u128 % 5000 + 1),
            name: format!("strategy {i}"),
            status: "active".into(),
            logic_tree: Some(tree.to_string()),
            frequency: "1m".into(),
            trigger_mode: "every_time".into(),
            cooldown_seconds: 300,
            channels: Some(r#"[{"type":"telegram","chat_id":"123456"}]"#.into()),
            message_template: None,
            expires_at: None,
            error: None,
            updated_at: Utc::now(),
        },
        conditions: (0..3)
            .map(|slot| {
                let (kind, params) = condition_params(i, slot);
                ConditionRow {
                    id: ids[slot],
                    strategy_id: id,
                    kind: kind.into(),
                    params: Some(params.to_string()),
                }
            })
            .collect(),
    }
}

pub fn compiled(n: usize) -> Vec<Arc<CompiledStrategy>> {
    let mut interner = SymbolInterner::default();
    (0..n)
        .map(|i| {
            Arc::new(
                CompiledStrategy::compile(&resolved(i), &mut interner).expect("fixture is valid"),
            )
        })
        .collect()
}

/// Prices and 1h/4h candles for every fixture symbol.
pub fn snapshot() -> MarketSnapshot {
    let mut snapshot = MarketSnapshot {
        taken_at_ms: 0,
        ..Default::default()
    };
    for s in 0..SYMBOLS {
        let symbol: Arc<str> = Arc::from(symbol(s));
        snapshot.prices.insert(
            PriceKey {
                source: Source::Binance,
                symbol: symbol.clone(),
            },
            Quote {
                price: 100.0 + s as f64 / 10.0,
                answered_by: Source::Binance,
                at_ms: 0,
            },
        );
        for (k, interval) in [Interval::H1, Interval::H4].into_iter().enumerate() {
            snapshot.candles.insert(
                SeriesKey {
                    source: Source::Binance,
                    symbol: symbol.clone(),
                    interval,
                },
                Arc::new(series(CANDLES, (s * 2 + k) as u64 + 1, 100.0)),
            );
        }
    }
    snapshot
}
