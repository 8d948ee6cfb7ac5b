//! `technical_indicator`: an indicator on closed candles against a number, the close
//! price, or another indicator on the same series.
//!
//! ```json
//! {"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
//!  "indicator": "rsi", "period": 14, "operator": "below", "value": 30}
//! {"source": "binance", "symbol": "ETHUSDT", "interval": "4h",
//!  "indicator": "ema", "period": 20, "operator": "crosses_above",
//!  "compare_to": {"indicator": "ema", "period": 50}}
//! ```

use serde_json::{Map, Value};

use super::Wording;
use super::comparison::Comparison;
use super::params::{Params, number};
use super::{Evaluation, Observed, SymbolInterner, parse_source_and_symbol};
use crate::indicators::{IndicatorSpec, LastTwo, Output, Scale};
use crate::logic_tree::{BatchContext, IndicatorKey};
use crate::market::{DataNeed, DataNeeds, Interval, SeriesKey, Source};
use crate::validation::ValidationError;

const INDICATORS: &str = "sma, ema, wma, rsi, macd, bbands, atr, stoch, volume_sma";

/// What the indicator is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareTo {
    Number(f64),
    /// The close of the same candles.
    Price,
    /// Another indicator on the same series.
    Indicator(IndicatorKey, Output),
}

/// `RSI(14)`, `MACD(12,26,9) histogram`: the indicator as charts label it.
fn indicator_label(key: &IndicatorKey, output: Output) -> String {
    let name = key.spec.to_string().to_ascii_uppercase();
    if key.spec.outputs().len() > 1 {
        format!("{name} {}", output.as_str())
    } else {
        name
    }
}

/// A compiled technical-indicator condition.
#[derive(Debug, Clone, PartialEq)]
pub struct TechnicalIndicator {
    pub key: IndicatorKey,
    pub output: Output,
    pub comparison: Comparison,
    pub compare_to: CompareTo,
}

impl TechnicalIndicator {
    pub(crate) fn parse(
        map: &Map<String, Value>,
        interner: &mut SymbolInterner,
    ) -> Result<Self, ValidationError> {
        let mut params = Params::new(map, "");
        let (source, symbol) = parse_source_and_symbol(
            &mut params,
            interner,
            Some((
                Source::Binance,
                "technical indicators need candles, which only binance provides",
            )),
        )?;
        let interval_text = params.required_str("interval")?;
        let interval = Interval::parse(interval_text).ok_or_else(|| {
            ValidationError::new(
                "interval",
                format!(
                    "unknown interval `{interval_text}`; one of {}",
                    Interval::names()
                ),
            )
        })?;
        let (spec, output) = parse_indicator(&mut params)?;
        let operator = params.required_str("operator")?;
        let comparison = Comparison::parse(operator).ok_or_else(|| {
            ValidationError::new(
                "operator",
                format!(
                    "unknown operator `{operator}`; one of {}",
                    Comparison::NAMES
                ),
            )
        })?;
        let series = SeriesKey {
            source,
            symbol,
            interval,
        };
        let value = params.optional_number("value")?;
        let compare_to = match (value, params.raw("compare_to")) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "compare_to",
                    "give either value or compare_to, not both",
                ));
            }
            (None, None) => {
                return Err(ValidationError::new(
                    "value",
                    "is required (or compare_to: a number, \"price\" or another indicator)",
                ));
            }
            (Some(number), None) => CompareTo::Number(number),
            (None, Some(raw)) => parse_compare_to(raw, spec, output, &series)?,
        };
        if let CompareTo::Number(number) = compare_to
            && spec.scale() == Scale::Oscillator
            && !(0.0..=100.0).contains(&number)
        {
            let field = if value.is_some() {
                "value"
            } else {
                "compare_to"
            };
            return Err(ValidationError::new(
                field,
                format!("{} ranges from 0 to 100", spec.name()),
            ));
        }
        params.finish(
            "source, symbol, interval, indicator, its parameters, output, operator, value or compare_to",
        )?;
        Ok(Self {
            key: IndicatorKey { series, spec },
            output,
            comparison,
            compare_to,
        })
    }

    pub fn interval(&self) -> Interval {
        self.key.series.interval
    }

    /// How a trader writes this condition: `BTCUSDT 1h RSI(14) … below 30`, `ETHUSDT 4h
    /// EMA(20) … crossed above EMA(50)`, `BTCUSDT 1h BBANDS(20,2) lower … above the close`.
    pub fn wording(&self) -> Wording {
        Wording {
            subject: format!(
                "{} {} {}",
                self.key.series.symbol,
                self.key.series.interval,
                indicator_label(&self.key, self.output)
            ),
            relation: self.comparison.wording(),
            compare_label: match &self.compare_to {
                CompareTo::Number(_) => None,
                CompareTo::Price => Some("the close".to_owned()),
                CompareTo::Indicator(key, output) => Some(indicator_label(key, *output)),
            },
            percent: false,
        }
    }

    pub fn needs(&self, needs: &mut DataNeeds) {
        let mut count = self.key.spec.candles_needed();
        if let CompareTo::Indicator(other, _) = &self.compare_to {
            count = count.max(other.spec.candles_needed());
        }
        needs.add(DataNeed::Candles(self.key.series.clone(), count));
    }

    /// The indicators this condition reads (one or two).
    pub fn indicator_keys(&self) -> impl Iterator<Item = &IndicatorKey> {
        let other = match &self.compare_to {
            CompareTo::Indicator(key, _) => Some(key),
            _ => None,
        };
        std::iter::once(&self.key).chain(other)
    }

    pub fn evaluate(&self, ctx: &BatchContext) -> Evaluation {
        let candles = ctx.snapshot.candles(&self.key.series);
        let mut observed = Observed {
            bar_open_time_ms: candles.and_then(|c| c.last_open_time()),
            ..Observed::default()
        };
        let Some(values) = ctx.indicator(&self.key) else {
            return Evaluation::unknown(observed);
        };
        let left = values.get(self.output);
        let right = match &self.compare_to {
            CompareTo::Number(n) => LastTwo {
                last: *n,
                previous: *n,
            },
            CompareTo::Price => match candles {
                Some(series) if series.len() >= 2 => LastTwo {
                    last: series.close[series.len() - 1],
                    previous: series.close[series.len() - 2],
                },
                Some(series) if series.len() == 1 => LastTwo {
                    last: series.close[0],
                    previous: f64::NAN,
                },
                _ => LastTwo::UNKNOWN,
            },
            CompareTo::Indicator(key, output) => ctx
                .indicator(key)
                .map_or(LastTwo::UNKNOWN, |values| values.get(*output)),
        };
        observed.value = finite(left.last);
        observed.previous = finite(left.previous);
        observed.compare_to = finite(right.last);
        Evaluation {
            result: self.comparison.apply(left, right),
            observed,
        }
    }
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Reads `indicator`, its parameters and `output` from `params`.
fn parse_indicator(params: &mut Params<'_>) -> Result<(IndicatorSpec, Output), ValidationError> {
    let name = params.required_str("indicator")?;
    let period = |params: &mut Params<'_>, min: u16| params.integer("period", min, 1000, None);
    let spec = match name {
        "sma" => IndicatorSpec::Sma {
            period: period(params, 1)?,
        },
        "ema" => IndicatorSpec::Ema {
            period: period(params, 1)?,
        },
        "wma" => IndicatorSpec::Wma {
            period: period(params, 1)?,
        },
        "volume_sma" => IndicatorSpec::VolumeSma {
            period: period(params, 1)?,
        },
        "rsi" => IndicatorSpec::Rsi {
            period: period(params, 2)?,
        },
        "atr" => IndicatorSpec::Atr {
            period: period(params, 1)?,
        },
        "macd" => {
            let fast = params.integer("fast", 2, 1000, Some(12))?;
            let slow = params.integer("slow", 2, 1000, Some(26))?;
            let signal = params.integer("signal", 1, 1000, Some(9))?;
            if fast >= slow {
                return Err(ValidationError::new(
                    "fast",
                    format!("must be less than slow ({slow})"),
                ));
            }
            IndicatorSpec::Macd { fast, slow, signal }
        }
        "bbands" => {
            let period = period(params, 2)?;
            let stddev = params.optional_number("stddev")?.unwrap_or(2.0);
            if !(stddev > 0.0 && stddev <= 10.0) {
                return Err(ValidationError::new(
                    "stddev",
                    "must be greater than 0 and at most 10",
                ));
            }
            IndicatorSpec::Bbands {
                period,
                stddev_bits: stddev.to_bits(),
            }
        }
        "stoch" => IndicatorSpec::Stoch {
            period: period(params, 1)?,
            k_smoothing: params.integer("k_smoothing", 1, 1000, Some(3))?,
            d_period: params.integer("d_period", 1, 1000, Some(3))?,
        },
        other => {
            return Err(ValidationError::new(
                "indicator",
                format!("unknown indicator `{other}`; one of {INDICATORS}"),
            ));
        }
    };
    let outputs = spec.outputs();
    let output = match params.optional_str("output")? {
        None if outputs.len() == 1 => outputs[0],
        None => {
            return Err(ValidationError::new(
                "output",
                format!("is required for {name}: one of {}", output_names(outputs)),
            ));
        }
        Some(text) => *outputs.iter().find(|o| o.as_str() == text).ok_or_else(|| {
            ValidationError::new(
                "output",
                format!(
                    "{name} has no output `{text}`; one of {}",
                    output_names(outputs)
                ),
            )
        })?,
    };
    Ok((spec, output))
}

fn output_names(outputs: &[Output]) -> String {
    outputs
        .iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_compare_to(
    raw: &Value,
    spec: IndicatorSpec,
    output: Output,
    series: &SeriesKey,
) -> Result<CompareTo, ValidationError> {
    match raw {
        Value::Number(_) => number(raw)
            .map(CompareTo::Number)
            .map_err(|message| ValidationError::new("compare_to", message)),
        Value::String(text) if text == "price" => {
            if spec.scale() != Scale::Price {
                return Err(ValidationError::new(
                    "compare_to",
                    format!(
                        "{} is {}; it cannot be compared with the price",
                        spec.name(),
                        spec.scale().describe()
                    ),
                ));
            }
            Ok(CompareTo::Price)
        }
        Value::Object(map) => {
            let mut params = Params::new(map, "compare_to.");
            let (other, other_output) = parse_indicator(&mut params)?;
            params.finish("indicator, its parameters and output")?;
            if other.scale() != spec.scale() {
                return Err(ValidationError::new(
                    "compare_to",
                    format!(
                        "{} is {} and {} is {}; they cannot be compared",
                        spec.name(),
                        spec.scale().describe(),
                        other.name(),
                        other.scale().describe()
                    ),
                ));
            }
            if other == spec && other_output == output {
                return Err(ValidationError::new(
                    "compare_to",
                    "compares the indicator with itself",
                ));
            }
            Ok(CompareTo::Indicator(
                IndicatorKey {
                    series: series.clone(),
                    spec: other,
                },
                other_output,
            ))
        }
        _ => Err(ValidationError::new(
            "compare_to",
            "must be a number, \"price\" or an indicator object",
        )),
    }
}
