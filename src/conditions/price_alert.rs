//! `price_alert`: a spot price against a threshold, a cross of it since the previous
//! evaluation, or a percent change over a window.
//!
//! ```json
//! {"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_above", "value": 65000}
//! {"source": "coingecko", "symbol": "bitcoin", "operator": "pct_change_below", "value": -5, "window": "1h"}
//! ```

use serde_json::{Map, Value};

use super::Wording;
use super::params::Params;
use super::{Evaluation, Observed, SymbolInterner, parse_source_and_symbol};
use crate::indicators::LastTwo;
use crate::logic_tree::{BatchContext, Tri};
use crate::market::{DataNeed, DataNeeds, PriceKey, Source};
use crate::validation::ValidationError;

use super::comparison::Comparison;

const FIELDS: &str = "source, symbol, operator, value, window";
const OPERATORS: &str =
    "above, below, crosses_above, crosses_below, pct_change_above, pct_change_below";
/// Windows from one minute to thirty days.
const MAX_WINDOW_SECONDS: u32 = 30 * 86_400;

/// What a price alert compares.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PriceTest {
    /// `above`, `below`, `crosses_*` against `value`.
    Level(Comparison),
    /// Percent change over the window above (`true`) or below `value`.
    PercentChange { above: bool, window_seconds: u32 },
}

/// `3600` → `1h`, `90` → `90s`.
fn window_text(seconds: u32) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A compiled price alert.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceAlert {
    pub key: PriceKey,
    test: PriceTest,
    value: f64,
}

impl PriceAlert {
    pub(crate) fn parse(
        map: &Map<String, Value>,
        interner: &mut SymbolInterner,
    ) -> Result<Self, ValidationError> {
        let mut params = Params::new(map, "");
        let (source, symbol) = parse_source_and_symbol(&mut params, interner, None)?;
        let operator = params.required_str("operator")?;
        let value = params
            .optional_number("value")?
            .ok_or_else(|| ValidationError::new("value", "is required"))?;
        let window = params.optional_str("window")?;
        let test = match (operator, window) {
            ("pct_change_above" | "pct_change_below", _) if source == Source::Uniswap => {
                // A pool's past price needs an archive node; refuse rather than leave
                // the condition unknown forever.
                return Err(ValidationError::new(
                    "operator",
                    "percent-change operators are not available for uniswap pools (no price history); use above, below or a cross",
                ));
            }
            ("pct_change_above" | "pct_change_below", Some(window)) => PriceTest::PercentChange {
                above: operator == "pct_change_above",
                window_seconds: parse_window(window)?,
            },
            ("pct_change_above" | "pct_change_below", None) => {
                return Err(ValidationError::new(
                    "window",
                    "is required for percent-change operators (e.g. \"1h\")",
                ));
            }
            (_, Some(_)) if Comparison::parse(operator).is_some() => {
                return Err(ValidationError::new(
                    "window",
                    "applies only to pct_change_above and pct_change_below",
                ));
            }
            (_, None) => match Comparison::parse(operator) {
                Some(comparison) => {
                    if value <= 0.0 {
                        return Err(ValidationError::new(
                            "value",
                            "a price threshold must be greater than 0",
                        ));
                    }
                    PriceTest::Level(comparison)
                }
                None => {
                    return Err(ValidationError::new(
                        "operator",
                        format!("unknown operator `{operator}`; one of {OPERATORS}"),
                    ));
                }
            },
            (_, Some(_)) => {
                return Err(ValidationError::new(
                    "operator",
                    format!("unknown operator `{operator}`; one of {OPERATORS}"),
                ));
            }
        };
        if let PriceTest::PercentChange { .. } = test
            && !(-100.0..=10_000.0).contains(&value)
        {
            return Err(ValidationError::new(
                "value",
                "a percent change must be between -100 and 10000",
            ));
        }
        params.finish(FIELDS)?;
        Ok(Self {
            key: PriceKey { source, symbol },
            test,
            value,
        })
    }

    /// How a trader writes this condition: `BTCUSDT … crossed above 65,000`, or
    /// `bitcoin change over 1h … below -5%`.
    pub fn wording(&self) -> Wording {
        match self.test {
            PriceTest::Level(comparison) => Wording {
                subject: self.key.symbol.to_string(),
                relation: comparison.wording(),
                compare_label: None,
                percent: false,
            },
            PriceTest::PercentChange {
                above,
                window_seconds,
            } => Wording {
                subject: format!(
                    "{} change over {}",
                    self.key.symbol,
                    window_text(window_seconds)
                ),
                relation: if above { "above" } else { "below" },
                compare_label: None,
                percent: true,
            },
        }
    }

    pub fn needs(&self, needs: &mut DataNeeds) {
        needs.add(DataNeed::Price(self.key.clone()));
        if let PriceTest::PercentChange { window_seconds, .. } = self.test {
            needs.add(DataNeed::PriceAgo(self.key.clone(), window_seconds));
        }
    }

    /// The window of a percent-change alert, in seconds.
    pub fn window_seconds(&self) -> Option<u32> {
        match self.test {
            PriceTest::PercentChange { window_seconds, .. } => Some(window_seconds),
            PriceTest::Level(_) => None,
        }
    }

    /// Whether the alert compares with the previous evaluation's price.
    pub fn remembers_price(&self) -> bool {
        matches!(self.test, PriceTest::Level(c) if c.is_cross())
    }

    /// The price to remember for the next evaluation's cross.
    pub fn memory(&self, ctx: &BatchContext) -> Option<f64> {
        if self.remembers_price() {
            ctx.snapshot.price(&self.key).map(|q| q.price)
        } else {
            None
        }
    }

    pub fn evaluate(&self, ctx: &BatchContext, previous_price: Option<f64>) -> Evaluation {
        let quote = ctx.snapshot.price(&self.key);
        let mut observed = Observed {
            compare_to: Some(self.value),
            answered_by: quote.map(|q| q.answered_by),
            ..Observed::default()
        };
        let Some(quote) = quote else {
            return Evaluation::unknown(observed);
        };
        let result = match self.test {
            PriceTest::Level(comparison) => {
                observed.value = Some(quote.price);
                observed.previous = previous_price;
                let price = LastTwo {
                    last: quote.price,
                    previous: previous_price.unwrap_or(f64::NAN),
                };
                let line = LastTwo {
                    last: self.value,
                    previous: self.value,
                };
                comparison.apply(price, line)
            }
            PriceTest::PercentChange {
                above,
                window_seconds,
            } => match ctx.snapshot.price_ago(&self.key, window_seconds) {
                Some(before) if before > 0.0 => {
                    let change = (quote.price - before) / before * 100.0;
                    observed.value = Some(change);
                    observed.previous = Some(before);
                    Tri::from_bool(if above {
                        change > self.value
                    } else {
                        change < self.value
                    })
                }
                _ => Tri::Unknown,
            },
        };
        Evaluation { result, observed }
    }
}

/// `"15m"`, `"1h"`, `"7d"` → seconds.
fn parse_window(text: &str) -> Result<u32, ValidationError> {
    let invalid = || {
        ValidationError::new(
            "window",
            "must be a duration such as 15m, 1h or 7d, between 1m and 30d",
        )
    };
    // Split off the last character, not the last byte: the text is user input and may
    // end in a multi-byte character (found by the fuzzer).
    let Some(unit) = text.chars().last() else {
        return Err(invalid());
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    let count: u32 = digits.parse().map_err(|_| invalid())?;
    let unit_seconds = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(invalid()),
    };
    let seconds = count.checked_mul(unit_seconds).ok_or_else(invalid)?;
    if seconds == 0 || seconds > MAX_WINDOW_SECONDS {
        return Err(invalid());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(params: serde_json::Value) -> Result<PriceAlert, ValidationError> {
        let serde_json::Value::Object(map) = params else {
            panic!("params must be an object")
        };
        PriceAlert::parse(&map, &mut SymbolInterner::default())
    }

    #[test]
    fn each_invalid_price_alert_names_its_field() {
        use serde_json::json;
        let cases = [
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "pct_change_above", "value": 5}),
                "window",
                "is required for percent-change operators",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 5, "window": "1h"}),
                "window",
                "applies only to pct_change_above and pct_change_below",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 0}),
                "value",
                "a price threshold must be greater than 0",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "near", "value": 5}),
                "operator",
                "unknown operator `near`",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "near", "value": 5, "window": "1h"}),
                "operator",
                "unknown operator `near`",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "pct_change_below", "value": -101, "window": "1h"}),
                "value",
                "a percent change must be between -100 and 10000",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above"}),
                "value",
                "is required",
            ),
            (
                json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 5, "colour": "red"}),
                "colour",
                "unknown field",
            ),
        ];
        for (params, path, message) in cases {
            let err = parse(params.clone()).expect_err(&params.to_string());
            assert_eq!(err.path, path, "{params}: {err}");
            assert!(err.message.contains(message), "{params}: {err}");
        }
    }

    #[test]
    fn a_percent_change_is_worded_with_its_window() {
        use serde_json::json;
        for (window, text) in [("90m", "90m"), ("2h", "2h"), ("7d", "7d"), ("60m", "1h")] {
            let alert = parse(json!({"source": "binance", "symbol": "BTCUSDT",
                "operator": "pct_change_below", "value": -5, "window": window}))
            .unwrap();
            let wording = alert.wording();
            assert_eq!(wording.subject, format!("BTCUSDT change over {text}"));
            assert_eq!((wording.relation, wording.percent), ("below", true));
        }
        let level = parse(
            json!({"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_above", "value": 65000}),
        )
        .unwrap();
        assert_eq!(level.wording().subject, "BTCUSDT");
        assert!(!level.wording().percent);
        assert_eq!(window_text(45), "45s");
    }

    #[test]
    fn windows_parse_within_bounds() {
        assert_eq!(parse_window("1h").unwrap(), 3600);
        assert_eq!(parse_window("15m").unwrap(), 900);
        assert_eq!(parse_window("30d").unwrap(), MAX_WINDOW_SECONDS);
        for bad in [
            "",
            "h",
            "0m",
            "31d",
            "1y",
            "-1h",
            "1.5h",
            "99999999999d",
            "1h\u{FFFD}",
            "é",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
