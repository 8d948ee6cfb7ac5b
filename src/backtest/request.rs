//! What a backtest is asked: a stored strategy, a draft, or both (an edit's preview),
//! over a span. A draft is validated exactly as the loader validates a stored row
//! ([`CompiledStrategy::compile`]); every problem is named by its JSON path.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::conditions::SymbolInterner;
use crate::strategy::{CompiledStrategy, ConditionRow, ResolvedStrategy, StrategyRow};
use crate::validation::ValidationError;

/// The span when none is given: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest span.
pub const MAX_DAYS: i64 = 366;

/// `POST /internal/backtest`'s body (DESIGN §15).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// A stored strategy; with `strategy` too, the draft is compared with it.
    pub strategy_id: Option<Uuid>,
    /// A draft strategy, validated as the loader validates a stored one.
    pub strategy: Option<Draft>,
    /// RFC 3339; default 30 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive; default now (a later time is taken as now).
    pub to: Option<DateTime<Utc>>,
}

/// A strategy not (or not yet) stored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// `1m`, `1h`, `candle_close`, or a 6-field cron expression.
    pub frequency: String,
    pub trigger_mode: String,
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: i32,
    /// The logic tree (DESIGN §4) over the conditions' ids.
    #[schema(value_type = Object)]
    pub logic_tree: Value,
    pub conditions: Vec<DraftCondition>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One condition of a draft.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftCondition {
    pub id: Uuid,
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: Value,
}

/// The stored default.
fn default_cooldown() -> i32 {
    300
}

impl BacktestRequest {
    /// Reads the body; a wrong field is named by its path.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| ValidationError::new("body", format!("not valid JSON: {error}")))?;
        if !value.is_object() {
            return Err(ValidationError::new("body", "must be a JSON object"));
        }
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            ValidationError::new(path, error.into_inner().to_string())
        })
    }

    /// The span `[from, to)`, as of `now`: defaults applied, `to` no later than now.
    pub fn span(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), SpanError> {
        let to = self.to.unwrap_or(now).min(now);
        let from = self.from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
        if from >= to {
            return Err(SpanError::Empty);
        }
        if to - from > Duration::days(MAX_DAYS) {
            return Err(SpanError::TooLarge);
        }
        Ok((from, to))
    }
}

/// A span that cannot be backtested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanError {
    /// `from` is not before `to` (or after now).
    Empty,
    /// Longer than [`MAX_DAYS`].
    TooLarge,
}

impl Draft {
    /// Validates and compiles the draft as strategy `id`: the loader's own checks on the
    /// row it would be, its errors under `strategy.`.
    pub fn compile(&self, id: Uuid) -> Result<CompiledStrategy, ValidationError> {
        let mut seen = std::collections::HashSet::new();
        for (i, condition) in self.conditions.iter().enumerate() {
            if !seen.insert(condition.id) {
                return Err(ValidationError::new(
                    format!("strategy.conditions[{i}].id"),
                    format!("{} appears twice", condition.id),
                ));
            }
        }
        // The loader reads conditions ordered by id.
        let mut conditions: Vec<ConditionRow> = self
            .conditions
            .iter()
            .map(|c| ConditionRow {
                id: c.id,
                strategy_id: id,
                kind: c.kind.clone(),
                params: Some(c.params.to_string()),
            })
            .collect();
        conditions.sort_by_key(|c| c.id);
        let resolved = ResolvedStrategy {
            row: StrategyRow {
                id,
                user_id: Uuid::nil(),
                name: "backtest draft".to_owned(),
                status: "active".to_owned(),
                logic_tree: Some(self.logic_tree.to_string()),
                frequency: self.frequency.clone(),
                trigger_mode: self.trigger_mode.clone(),
                cooldown_seconds: self.cooldown_seconds,
                channels: Some("[]".to_owned()),
                message_template: None,
                expires_at: self.expires_at,
                error: None,
                updated_at: Utc::now(),
            },
            conditions,
        };
        CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).map_err(|error| {
            let error = error.under("strategy");
            // The row's conditions are sorted; name them as the draft listed them.
            match draft_index(&error.path, &resolved.conditions, &self.conditions) {
                Some(path) => ValidationError::new(path, error.message),
                None => error,
            }
        })
    }
}

/// `strategy.conditions[i]…` of the sorted rows, renamed to the draft's own index.
fn draft_index(path: &str, sorted: &[ConditionRow], draft: &[DraftCondition]) -> Option<String> {
    let rest = path.strip_prefix("strategy.conditions[")?;
    let (index, tail) = rest.split_once(']')?;
    let id = sorted.get(index.parse::<usize>().ok()?)?.id;
    let original = draft.iter().position(|c| c.id == id)?;
    Some(format!("strategy.conditions[{original}]{tail}"))
}
