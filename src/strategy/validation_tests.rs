//! Every validation rule of the strategy engine, with the exact message a strategy
//! author sees.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::conditions::SymbolInterner;
use crate::frequency::Frequency;

const C1: &str = "00000000-0000-4000-8000-000000000001";
const C2: &str = "00000000-0000-4000-8000-000000000002";

fn rsi_params() -> Value {
    json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
           "indicator": "rsi", "period": 14, "operator": "below", "value": 30})
}

fn price_params() -> Value {
    json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 65000})
}

fn strategy(tree: Value, conditions: &[(&str, &str, Value)]) -> ResolvedStrategy {
    let id = Uuid::new_v4();
    ResolvedStrategy {
        row: StrategyRow {
            id,
            user_id: Uuid::new_v4(),
            name: "s".into(),
            status: "active".into(),
            logic_tree: Some(tree.to_string()),
            frequency: "1m".into(),
            trigger_mode: "every_time".into(),
            cooldown_seconds: 300,
            channels: Some("[]".into()),
            message_template: None,
            expires_at: None,
            error: None,
            updated_at: Utc::now(),
        },
        conditions: conditions
            .iter()
            .map(|(cid, kind, params)| ConditionRow {
                id: Uuid::parse_str(cid).unwrap(),
                strategy_id: id,
                kind: (*kind).into(),
                params: Some(params.to_string()),
            })
            .collect(),
    }
}

fn compile(resolved: &ResolvedStrategy) -> Result<CompiledStrategy, String> {
    CompiledStrategy::compile(resolved, &mut SymbolInterner::default()).map_err(|e| e.to_string())
}

/// Compiles a one-condition price alert after `edit` changed its row.
fn compile_edited(edit: impl FnOnce(&mut StrategyRow)) -> Result<CompiledStrategy, String> {
    let mut resolved = strategy(
        json!({"condition": C1}),
        &[(C1, "price_alert", price_params())],
    );
    edit(&mut resolved.row);
    compile(&resolved)
}

fn error_of_params(kind: &str, params: Value) -> String {
    compile(&strategy(json!({"condition": C1}), &[(C1, kind, params)])).unwrap_err()
}

fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

fn without(mut base: Value, field: &str) -> Value {
    base.as_object_mut().unwrap().remove(field);
    base
}

#[test]
fn a_valid_strategy_compiles_with_its_bar_interval() {
    let compiled = compile(&strategy(
        json!({"and": [{"condition": C1}, {"not": {"condition": C2}}]}),
        &[
            (C1, "technical_indicator", rsi_params()),
            (C2, "price_alert", price_params()),
        ],
    ))
    .unwrap();
    assert_eq!(compiled.conditions.len(), 2);
    assert_eq!(compiled.bar_interval, Some(crate::market::Interval::H1));
    assert_eq!(compiled.frequency, Frequency::Every(60));
}

#[test]
fn tree_errors_carry_their_path() {
    let missing = "7f3e0000-0000-4000-8000-000000000000";
    let resolved = strategy(
        json!({"and": [{"condition": C1}, {"condition": C1}, {"condition": missing}]}),
        &[(C1, "price_alert", price_params())],
    );
    assert_eq!(
        compile(&resolved).unwrap_err(),
        format!("logic_tree.and[2].condition: no condition {missing} in this strategy")
    );
    let resolved = strategy(json!({"and": []}), &[(C1, "price_alert", price_params())]);
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "logic_tree.and: must not be empty"
    );
    let resolved = strategy(json!({"condition": "abc"}), &[]);
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "logic_tree.condition: `abc` is not a condition id (UUID)"
    );
}

#[test]
fn a_hostile_tree_is_rejected_without_recursion() {
    let depth = 100_000;
    let mut resolved = strategy(json!({}), &[(C1, "price_alert", price_params())]);
    resolved.row.logic_tree = Some(format!(
        "{}{{\"condition\":\"{C1}\"}}{}",
        "{\"not\":".repeat(depth),
        "}".repeat(depth)
    ));
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "logic_tree: the tree is nested deeper than 32 levels"
    );
    // The loader selects NULL for an oversized document instead of reading it.
    resolved.row.logic_tree = None;
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "logic_tree: the document is larger than 262144 bytes"
    );
}

#[test]
fn unknown_kinds_sources_indicators_operators_and_intervals() {
    assert_eq!(
        error_of_params("moon_phase", json!({})),
        "conditions[0].kind: unknown kind `moon_phase`; one of price_alert, technical_indicator"
    );
    assert_eq!(
        error_of_params(
            "price_alert",
            with(price_params(), "source", json!("kraken"))
        ),
        "conditions[0].params.source: unknown source `kraken`; one of binance, coingecko, uniswap"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "indicator", json!("ichimoku"))
        ),
        "conditions[0].params.indicator: unknown indicator `ichimoku`; one of sma, ema, wma, rsi, macd, bbands, atr, stoch, volume_sma"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "operator", json!("equals"))
        ),
        "conditions[0].params.operator: unknown operator `equals`; one of above, below, crosses_above, crosses_below"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "interval", json!("2m"))
        ),
        "conditions[0].params.interval: unknown interval `2m`; one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w"
    );
    assert_eq!(
        error_of_params(
            "price_alert",
            with(price_params(), "operator", json!("sideways"))
        ),
        "conditions[0].params.operator: unknown operator `sideways`; one of above, below, crosses_above, crosses_below, pct_change_above, pct_change_below"
    );
    assert_eq!(
        error_of_params(
            "price_alert",
            json!({"source": "uniswap", "symbol": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640",
                   "operator": "pct_change_below", "value": -5, "window": "1h"})
        ),
        "conditions[0].params.operator: percent-change operators are not available for uniswap pools (no price history); use above, below or a cross"
    );
}

#[test]
fn missing_wrong_typed_and_out_of_range_params() {
    assert_eq!(
        error_of_params("technical_indicator", without(rsi_params(), "period")),
        "conditions[0].params.period: is required"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "period", json!("14"))
        ),
        "conditions[0].params.period: must be a whole number (must be between 2 and 1000)"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(
                with(rsi_params(), "indicator", json!("sma")),
                "period",
                json!(5000)
            )
        ),
        "conditions[0].params.period: must be between 1 and 1000"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "period", json!(14.5))
        ),
        "conditions[0].params.period: must be a whole number (must be between 2 and 1000)"
    );
    assert_eq!(
        error_of_params("price_alert", with(price_params(), "value", json!("65000"))),
        "conditions[0].params.value: must be a number"
    );
    assert_eq!(
        error_of_params(
            "price_alert",
            with(price_params(), "symbol", json!("btc/usdt"))
        ),
        "conditions[0].params.symbol: must be a Binance spot symbol such as BTCUSDT (A-Z, 0-9)"
    );
    assert_eq!(
        error_of_params("price_alert", with(price_params(), "perod", json!(3))),
        "conditions[0].params.perod: unknown field; this condition takes source, symbol, operator, value, window"
    );
    assert_eq!(
        error_of_params("price_alert", without(price_params(), "value")),
        "conditions[0].params.value: is required"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "value", json!(130))
        ),
        "conditions[0].params.value: rsi ranges from 0 to 100"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "source", json!("coingecko"))
        ),
        "conditions[0].params.source: technical indicators need candles, which only binance provides"
    );
}

#[test]
fn non_finite_numbers_are_refused() {
    let mut resolved = strategy(
        json!({"condition": C1}),
        &[(C1, "price_alert", price_params())],
    );
    resolved.conditions[0].params =
        Some(r#"{"source":"binance","symbol":"BTCUSDT","operator":"above","value":1e400}"#.into());
    let err = compile(&resolved).unwrap_err();
    assert!(
        err.starts_with("conditions[0].params: not valid JSON: number out of range"),
        "{err}"
    );
    resolved.conditions[0].params =
        Some(r#"{"source":"binance","symbol":"BTCUSDT","operator":"above","value":NaN}"#.into());
    assert!(
        compile(&resolved)
            .unwrap_err()
            .starts_with("conditions[0].params: not valid JSON")
    );
}

#[test]
fn compare_to_must_make_sense() {
    let ema = json!({"source": "binance", "symbol": "ETHUSDT", "interval": "4h",
                     "indicator": "ema", "period": 20, "operator": "crosses_above"});
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(
                ema.clone(),
                "compare_to",
                json!({"indicator": "rsi", "period": 14})
            )
        ),
        "conditions[0].params.compare_to: ema is price scale and rsi is a 0–100 oscillator; they cannot be compared"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(
                ema.clone(),
                "compare_to",
                json!({"indicator": "ema", "period": 20})
            )
        ),
        "conditions[0].params.compare_to: compares the indicator with itself"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(ema.clone(), "compare_to", json!("volume"))
        ),
        "conditions[0].params.compare_to: must be a number, \"price\" or an indicator object"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(rsi_params(), "compare_to", json!("price"))
        ),
        "conditions[0].params.compare_to: give either value or compare_to, not both"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(without(rsi_params(), "value"), "compare_to", json!("price"))
        ),
        "conditions[0].params.compare_to: rsi is a 0–100 oscillator; it cannot be compared with the price"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(
                ema.clone(),
                "compare_to",
                json!({"indicator": "ema", "period": 0})
            )
        ),
        "conditions[0].params.compare_to.period: must be between 1 and 1000"
    );
    assert_eq!(
        error_of_params("technical_indicator", ema),
        "conditions[0].params.value: is required (or compare_to: a number, \"price\" or another indicator)"
    );
    let macd = json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1d", "indicator": "macd",
                      "operator": "crosses_above", "value": 0});
    assert_eq!(
        error_of_params("technical_indicator", macd.clone()),
        "conditions[0].params.output: is required for macd: one of macd, signal, histogram"
    );
    assert_eq!(
        error_of_params(
            "technical_indicator",
            with(with(macd, "output", json!("histogram")), "fast", json!(30))
        ),
        "conditions[0].params.fast: must be less than slow (26)"
    );
}

#[test]
fn frequency_and_trigger_mode_are_checked() {
    let mut resolved = strategy(
        json!({"condition": C1}),
        &[(C1, "price_alert", price_params())],
    );
    resolved.row.frequency = "0 61 * * * *".into();
    assert!(
        compile(&resolved)
            .unwrap_err()
            .starts_with("frequency: invalid cron expression")
    );
    resolved.row.frequency = "every minute".into();
    assert!(
        compile(&resolved)
            .unwrap_err()
            .starts_with("frequency: must be one of 10s")
    );

    resolved.row.frequency = "0 */5 * * * *".into();
    resolved.row.trigger_mode = "once_per_bar_close".into();
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "trigger_mode: once_per_bar_close needs a bar interval: add a technical_indicator condition or use a frequency of at least 1m"
    );
    resolved.row.trigger_mode = "every_time".into();
    resolved.row.frequency = "candle_close".into();
    assert_eq!(
        compile(&resolved).unwrap_err(),
        "frequency: candle_close needs a bar interval: add a technical_indicator condition"
    );
    resolved.row.frequency = "5m".into();
    resolved.row.trigger_mode = "once_per_bar".into();
    let compiled = compile(&resolved).unwrap();
    assert_eq!(compiled.bar_interval, Some(crate::market::Interval::M5));
}

#[test]
fn every_documented_example_is_valid() {
    let examples = [
        (
            "price_alert",
            json!({"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_above", "value": 65000}),
        ),
        (
            "price_alert",
            json!({"source": "coingecko", "symbol": "bitcoin", "operator": "pct_change_below", "value": -5, "window": "1h"}),
        ),
        (
            "price_alert",
            json!({"source": "uniswap", "symbol": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640", "operator": "below", "value": 3000}),
        ),
        ("technical_indicator", rsi_params()),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "ETHUSDT", "interval": "4h",
            "indicator": "ema", "period": 20, "operator": "crosses_above", "compare_to": {"indicator": "ema", "period": 50}}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1d",
            "indicator": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "histogram", "operator": "crosses_above", "value": 0}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
            "indicator": "bbands", "period": 20, "stddev": 2, "output": "lower", "operator": "above", "compare_to": "price"}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "15m",
            "indicator": "stoch", "period": 14, "output": "k", "operator": "crosses_above", "compare_to": {"indicator": "stoch", "period": 14, "output": "d"}}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
            "indicator": "atr", "period": 14, "operator": "above", "value": 500}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
            "indicator": "volume_sma", "period": 20, "operator": "above", "value": 1000}),
        ),
        (
            "technical_indicator",
            json!({"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
            "indicator": "wma", "period": 20, "operator": "below", "compare_to": "price"}),
        ),
    ];
    for (kind, params) in examples {
        let resolved = strategy(json!({"condition": C1}), &[(C1, kind, params.clone())]);
        assert!(
            compile(&resolved).is_ok(),
            "{params}: {:?}",
            compile(&resolved).err()
        );
    }
}

#[test]
fn channels_are_checked_entry_by_entry() {
    let with_channels = |channels: &str| compile_edited(|row| row.channels = Some(channels.into()));
    assert!(with_channels(r#"[{"type": "telegram", "chat_id": "123456"}]"#).is_ok());
    assert_eq!(
        with_channels(r#"[{"type": "telegram", "chat_id": "1"}, {"type": "slack", "webhook_url": "hooks.slack.com"}]"#)
            .unwrap_err(),
        "channels[1]: must be an http(s) URL"
    );
    assert_eq!(
        with_channels(r#"[{"type": "webhook", "url": "https://example.com/h"}]"#).unwrap_err(),
        "channels[0]: missing field `secret`"
    );
}

#[test]
fn message_templates_must_parse() {
    let with_template =
        |template: &str| compile_edited(|row| row.message_template = Some(template.into()));
    assert!(with_template("{{ strategy_name }}: {{ symbol }} at {{ value }}").is_ok());
    let error = with_template("{{ strategy_name").unwrap_err();
    assert!(
        error.starts_with("message_template: syntax error"),
        "{error}"
    );
}

#[test]
fn a_compiled_strategy_shows_no_channel_address_or_secret_in_debug() {
    let channels = r#"[{"type": "telegram", "chat_id": "987654321"},
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/SLACKTOKEN"},
        {"type": "webhook", "url": "https://example.com/hook", "secret": "s3cret-value"}]"#;
    let compiled = compile_edited(|row| row.channels = Some(channels.into())).unwrap();
    let shown = format!("{compiled:?}");
    for secret in ["987654321", "SLACKTOKEN", "s3cret-value", "example.com"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("Channel(webhook)"), "the kinds are shown");
}
