//! A backtest's answer (DESIGN §15): the fires with what each condition saw, the
//! suppressed counts, the series read and their gaps, and for an edit the fires it adds
//! and removes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tape::{SeriesGap, SeriesUsed};
use super::walk::{Fired, MAX_FIRES_KEPT, Walked};

/// How a backtest prices a Binance `price_alert`: the close of the last closed minute.
pub const PRICE_MODEL: &str = "last_1m_close";

/// One condition at a fire.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FiredCondition {
    pub id: Uuid,
    /// true, false, or null (its data unavailable: an `or` fired without it).
    pub result: Option<bool>,
    pub value: Option<f64>,
    /// The value before: the previous candle's (indicators), the previous evaluation's
    /// price (crosses), the price a window ago (percent changes).
    pub previous: Option<f64>,
    /// What the value was compared with.
    pub compare_to: Option<f64>,
}

/// One moment the live service would have triggered the strategy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Fire {
    pub at: DateTime<Utc>,
    /// The open time of the strategy's bar (null without one).
    pub bar_open_time: Option<DateTime<Utc>>,
    pub conditions: Vec<FiredCondition>,
}

/// An edit's preview: the fires the draft adds to and removes from the stored version.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Compare {
    pub added: Vec<DateTime<Utc>>,
    pub removed: Vec<DateTime<Utc>>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BacktestReport {
    /// The stored strategy (null for a draft alone).
    pub strategy_id: Option<Uuid>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// How many moments were evaluated.
    pub moments: u64,
    /// Of those, how many evaluated unknown (data missing: warm-up or a gap).
    pub unknown: u64,
    /// `last_1m_close`.
    pub price_model: &'static str,
    /// In time order; at most 10,000 (see `fires_total`).
    pub fires: Vec<Fire>,
    pub fires_total: usize,
    /// True evaluations that did not fire, by reason.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub suppressed: BTreeMap<&'static str, u64>,
    pub series: Vec<SeriesUsed>,
    pub gaps: Vec<SeriesGap>,
    /// With both `strategy_id` and `strategy`: the draft against the stored version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    pub duration_ms: f64,
}

/// A fire as answered.
pub fn fire(fired: &Fired) -> Fire {
    Fire {
        at: fired.at,
        bar_open_time: fired.bar_open_time,
        conditions: fired
            .conditions
            .iter()
            .map(|(id, evaluation)| FiredCondition {
                id: *id,
                result: evaluation.result.known(),
                value: evaluation.observed.value,
                previous: evaluation.observed.previous,
                compare_to: evaluation.observed.compare_to,
            })
            .collect(),
    }
}

/// The fires of `draft` that `stored` lacks, and the reverse.
pub fn compare(stored: &Walked, draft: &Walked) -> Compare {
    let times = |walked: &Walked| -> BTreeSet<DateTime<Utc>> {
        walked.fire_times.iter().copied().collect()
    };
    let (before, after) = (times(stored), times(draft));
    let listed = |set: BTreeSet<DateTime<Utc>>| set.into_iter().take(MAX_FIRES_KEPT).collect();
    Compare {
        added: listed(after.difference(&before).copied().collect()),
        removed: listed(before.difference(&after).copied().collect()),
    }
}
