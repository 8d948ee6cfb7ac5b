//! The registry of condition kinds (DESIGN.md §4). A condition kind is one module with
//! a parser (`params` JSON → validated runtime condition), the data it needs, and its
//! three-valued evaluation; adding a kind is one module and one variant of
//! [`Condition`] with its arm in [`Condition::parse`].

mod comparison;
mod params;
pub mod price_alert;
mod report;
pub mod technical_indicator;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

pub use comparison::Comparison;
pub use price_alert::PriceAlert;
pub use report::ConditionReport;
pub use technical_indicator::{CompareTo, TechnicalIndicator};

use self::params::Params;
use crate::logic_tree::{BatchContext, IndicatorKey, Tri};
use crate::market::{DataNeeds, Interval, Source};
use crate::validation::ValidationError;

/// The kinds this service knows, for error messages.
pub const KINDS: &str = "price_alert, technical_indicator";

/// A compiled condition of one of the known kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    PriceAlert(PriceAlert),
    TechnicalIndicator(TechnicalIndicator),
}

/// What an evaluation observed, for the simulate snapshot and trigger messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Observed {
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub compare_to: Option<f64>,
    #[serde(skip)]
    pub bar_open_time_ms: Option<i64>,
    /// The source that really answered (a fallback may have).
    #[serde(skip)]
    pub answered_by: Option<Source>,
}

/// How a message names a condition: `{subject} {value} {relation} {compare}`, where the
/// compared-to side is a number, or `compare_label` followed by its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    /// `BTCUSDT 1h RSI(14)`, `BTCUSDT`, `bitcoin change over 1h`.
    pub subject: String,
    /// `above`, `below`, `crossed above`, `crossed below`.
    pub relation: &'static str,
    /// What the value is compared with when it is not a plain number: `EMA(50)`,
    /// `the close`.
    pub compare_label: Option<String>,
    /// The values are percentages.
    pub percent: bool,
}

/// The outcome of evaluating one condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub result: Tri,
    pub observed: Observed,
}

impl Evaluation {
    fn unknown(observed: Observed) -> Self {
        Self {
            result: Tri::Unknown,
            observed,
        }
    }
}

/// Shares one allocation per distinct symbol across all loaded strategies.
#[derive(Debug, Default)]
pub struct SymbolInterner {
    symbols: HashSet<Arc<str>>,
}

impl SymbolInterner {
    pub fn intern(&mut self, symbol: &str) -> Arc<str> {
        if let Some(existing) = self.symbols.get(symbol) {
            return existing.clone();
        }
        let symbol: Arc<str> = Arc::from(symbol);
        self.symbols.insert(symbol.clone());
        symbol
    }
}

/// The most bytes a condition's `params` may have.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;

impl Condition {
    /// Parses `params` (JSON text) as a condition of `kind`. Error paths are relative:
    /// `kind`, or `params.<field>`.
    pub fn parse(
        kind: &str,
        params: &str,
        interner: &mut SymbolInterner,
    ) -> Result<Self, ValidationError> {
        if params.len() > MAX_PARAMS_BYTES {
            return Err(ValidationError::new(
                "params",
                format!("larger than {MAX_PARAMS_BYTES} bytes"),
            ));
        }
        let map: Map<String, Value> = match serde_json::from_str(params) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(ValidationError::new("params", "must be a JSON object")),
            Err(err) => {
                return Err(ValidationError::new(
                    "params",
                    format!("not valid JSON: {err}"),
                ));
            }
        };
        let parsed = match kind {
            "price_alert" => PriceAlert::parse(&map, interner).map(Condition::PriceAlert),
            "technical_indicator" => {
                TechnicalIndicator::parse(&map, interner).map(Condition::TechnicalIndicator)
            }
            other => {
                return Err(ValidationError::new(
                    "kind",
                    format!("unknown kind `{other}`; one of {KINDS}"),
                ));
            }
        };
        parsed.map_err(|err| err.under("params"))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Condition::PriceAlert(_) => "price_alert",
            Condition::TechnicalIndicator(_) => "technical_indicator",
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Condition::PriceAlert(c) => c.key.source,
            Condition::TechnicalIndicator(c) => c.key.series.source,
        }
    }

    pub fn symbol(&self) -> &Arc<str> {
        match self {
            Condition::PriceAlert(c) => &c.key.symbol,
            Condition::TechnicalIndicator(c) => &c.key.series.symbol,
        }
    }

    /// How a message names this condition.
    pub fn wording(&self) -> Wording {
        match self {
            Condition::PriceAlert(c) => c.wording(),
            Condition::TechnicalIndicator(c) => c.wording(),
        }
    }

    /// The candle interval, for conditions on candles.
    pub fn interval(&self) -> Option<Interval> {
        match self {
            Condition::PriceAlert(_) => None,
            Condition::TechnicalIndicator(c) => Some(c.interval()),
        }
    }

    /// Adds the data this condition needs to `needs`.
    pub fn needs(&self, needs: &mut DataNeeds) {
        match self {
            Condition::PriceAlert(c) => c.needs(needs),
            Condition::TechnicalIndicator(c) => c.needs(needs),
        }
    }

    /// The indicators to compute for this condition.
    pub fn indicator_keys(&self) -> Box<dyn Iterator<Item = &IndicatorKey> + '_> {
        match self {
            Condition::PriceAlert(_) => Box::new(std::iter::empty()),
            Condition::TechnicalIndicator(c) => Box::new(c.indicator_keys()),
        }
    }

    /// Evaluates against the batch; `memory` is what [`Condition::memory`] returned at
    /// the previous evaluation.
    pub fn evaluate(&self, ctx: &BatchContext, memory: Option<f64>) -> Evaluation {
        match self {
            Condition::PriceAlert(c) => c.evaluate(ctx, memory),
            Condition::TechnicalIndicator(c) => c.evaluate(ctx),
        }
    }

    /// What to remember for the next evaluation (the price, for price crosses).
    pub fn memory(&self, ctx: &BatchContext) -> Option<f64> {
        match self {
            Condition::PriceAlert(c) => c.memory(ctx),
            Condition::TechnicalIndicator(_) => None,
        }
    }
}

/// Reads and checks `source` and `symbol`, shared by every kind. `only` restricts the
/// sources, with the reason to give for the others.
fn parse_source_and_symbol(
    params: &mut Params<'_>,
    interner: &mut SymbolInterner,
    only: Option<(Source, &'static str)>,
) -> Result<(Source, Arc<str>), ValidationError> {
    let source_text = params.required_str("source")?;
    let source = Source::parse(source_text).ok_or_else(|| {
        ValidationError::new(
            "source",
            format!("unknown source `{source_text}`; one of binance, coingecko, uniswap"),
        )
    })?;
    if let Some((allowed, reason)) = only
        && source != allowed
    {
        return Err(ValidationError::new("source", reason));
    }
    let symbol = params.required_str("symbol")?;
    source
        .check_symbol(symbol)
        .map_err(|message| ValidationError::new("symbol", message))?;
    Ok((source, interner.intern(symbol)))
}

#[cfg(test)]
mod evaluation_tests;
