//! One condition's evaluation as reported: where its data came from and what it
//! observed. The one shape of a condition observation — the simulate snapshot lists
//! these, and trigger messages and snapshots are built from them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Condition, Evaluation, Observed};

/// One condition as an evaluation saw it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConditionReport {
    pub id: Uuid,
    pub kind: String,
    /// true, false, or null when its data was unavailable.
    pub result: Option<bool>,
    /// The source that answered (a fallback may have).
    pub source: String,
    pub symbol: String,
    /// The candle interval, for indicators.
    pub interval: Option<String>,
    /// Open time of the last closed candle the indicator was computed on.
    pub bar_open_time: Option<DateTime<Utc>>,
    pub observed: Observed,
    /// How a message names it: `BTCUSDT 1h RSI(14)`.
    pub subject: String,
    /// `above`, `below`, `crossed above`, `crossed below`.
    pub relation: String,
    /// What the value was compared with when not a plain number (`EMA(50)`, `the
    /// close`).
    pub compare_label: Option<String>,
    /// The values are percentages (a price change).
    pub percent: bool,
}

impl Condition {
    /// The report of this condition (`id`) for `evaluation`.
    pub fn report(&self, id: Uuid, evaluation: &Evaluation) -> ConditionReport {
        let observed = evaluation.observed;
        let wording = self.wording();
        ConditionReport {
            subject: wording.subject,
            relation: wording.relation.to_owned(),
            compare_label: wording.compare_label,
            percent: wording.percent,
            id,
            kind: self.kind().to_owned(),
            result: evaluation.result.known(),
            // A fallback may have answered instead of the source asked.
            source: observed.answered_by.unwrap_or(self.source()).to_string(),
            symbol: self.symbol().to_string(),
            interval: self.interval().map(|i| i.to_string()),
            bar_open_time: observed
                .bar_open_time_ms
                .and_then(DateTime::from_timestamp_millis),
            observed,
        }
    }
}
