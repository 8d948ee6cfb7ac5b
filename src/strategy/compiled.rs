//! A strategy in its runtime form: validated once at load, then evaluated many times.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::TriggerMode;
use super::resolved::{
    MAX_CHANNELS_BYTES, MAX_PARAMS_DB_BYTES, MAX_TEMPLATE_BYTES, MAX_TREE_BYTES, ResolvedStrategy,
};
use crate::conditions::{Condition, SymbolInterner};
use crate::frequency::Frequency;
use crate::logic_tree::{BatchContext, IndicatorKey, LogicTree, Tri};
use crate::market::{DataNeeds, Interval};
use crate::notify::{Channel, parse_channels};
use crate::validation::ValidationError;

/// Most conditions one strategy may have (every leaf refers to one).
pub const MAX_CONDITIONS: usize = 256;

/// A validated strategy, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledStrategy {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `updated_at`: a new value is a new version.
    pub version: DateTime<Utc>,
    pub name: Box<str>,
    pub frequency: Frequency,
    pub trigger_mode: TriggerMode,
    pub cooldown_seconds: u32,
    /// Where alerts go, parsed and checked once here.
    pub channels: Box<[Channel]>,
    pub message_template: Option<Box<str>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The smallest indicator interval, else the fixed frequency as an interval.
    pub bar_interval: Option<Interval>,
    pub tree: LogicTree,
    pub condition_ids: Box<[Uuid]>,
    pub conditions: Box<[Condition]>,
}

impl CompiledStrategy {
    /// Validates `resolved` and compiles it. The error names the JSON path of the first
    /// problem found.
    pub fn compile(
        resolved: &ResolvedStrategy,
        interner: &mut SymbolInterner,
    ) -> Result<Self, ValidationError> {
        let row = &resolved.row;
        if resolved.conditions.len() > MAX_CONDITIONS {
            return Err(ValidationError::new(
                "conditions",
                format!("more than {MAX_CONDITIONS} conditions"),
            ));
        }
        let mut conditions = Vec::with_capacity(resolved.conditions.len());
        for (i, condition) in resolved.conditions.iter().enumerate() {
            let path = format!("conditions[{i}]");
            let params = condition.params.as_deref().ok_or_else(|| {
                ValidationError::new(
                    format!("{path}.params"),
                    format!("larger than {MAX_PARAMS_DB_BYTES} bytes"),
                )
            })?;
            let compiled = Condition::parse(&condition.kind, params, interner)
                .map_err(|err| err.under(&path))?;
            conditions.push(compiled);
        }

        let tree_text = row.logic_tree.as_deref().ok_or_else(|| {
            ValidationError::new(
                "logic_tree",
                format!("the document is larger than {MAX_TREE_BYTES} bytes"),
            )
        })?;
        // serde_json refuses nesting past 128 levels before building anything, which is
        // what keeps a hostile tree off the stack.
        let tree_json: serde_json::Value = serde_json::from_str(tree_text).map_err(|err| {
            let message = if err.to_string().contains("recursion limit") {
                format!(
                    "the tree is nested deeper than {} levels",
                    crate::logic_tree::MAX_DEPTH
                )
            } else {
                format!("not valid JSON: {err}")
            };
            ValidationError::new("logic_tree", message)
        })?;
        let ids: Vec<Uuid> = resolved.conditions.iter().map(|c| c.id).collect();
        let resolve = |text: &str| -> Result<u16, String> {
            let id = Uuid::parse_str(text)
                .map_err(|_| format!("`{text}` is not a condition id (UUID)"))?;
            ids.iter()
                .position(|candidate| *candidate == id)
                .map(|i| i as u16)
                .ok_or_else(|| format!("no condition {id} in this strategy"))
        };
        let tree = LogicTree::parse(&tree_json, &resolve)?;

        let frequency = Frequency::parse(&row.frequency)
            .map_err(|message| ValidationError::new("frequency", message))?;
        let trigger_mode = TriggerMode::parse(&row.trigger_mode).ok_or_else(|| {
            ValidationError::new(
                "trigger_mode",
                "must be every_time, once, once_per_bar, once_per_bar_close or on_rising_edge",
            )
        })?;
        let cooldown_seconds = u32::try_from(row.cooldown_seconds)
            .map_err(|_| ValidationError::new("cooldown_seconds", "must not be negative"))?;

        let indicator_interval = tree
            .leaves()
            .filter_map(|i| conditions[usize::from(i)].interval())
            .min_by_key(|interval| interval.seconds());
        let bar_interval = indicator_interval.or_else(|| {
            frequency
                .period_seconds()
                .and_then(|s| Interval::from_seconds(u64::from(s)))
        });
        if bar_interval.is_none() {
            if frequency == Frequency::CandleClose {
                return Err(ValidationError::new(
                    "frequency",
                    "candle_close needs a bar interval: add a technical_indicator condition",
                ));
            }
            if trigger_mode.needs_bar_interval() {
                return Err(ValidationError::new(
                    "trigger_mode",
                    format!(
                        "{} needs a bar interval: add a technical_indicator condition or use a frequency of at least 1m",
                        trigger_mode.as_str()
                    ),
                ));
            }
        }

        let channels = row.channels.as_deref().ok_or_else(|| {
            ValidationError::new(
                "channels",
                format!("larger than {MAX_CHANNELS_BYTES} bytes"),
            )
        })?;
        let channels = parse_channels(channels).map_err(|error| {
            ValidationError::new(format!("channels[{}]", error.index), error.message)
        })?;
        if row
            .message_template
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TEMPLATE_BYTES as usize)
        {
            return Err(ValidationError::new(
                "message_template",
                format!("larger than {MAX_TEMPLATE_BYTES} bytes"),
            ));
        }

        if let Some(template) = &row.message_template {
            crate::message::check_template(template)
                .map_err(|error| ValidationError::new("message_template", error))?;
        }

        Ok(Self {
            id: row.id,
            user_id: row.user_id,
            version: row.updated_at,
            name: row.name.clone().into_boxed_str(),
            frequency,
            trigger_mode,
            cooldown_seconds,
            channels: channels.into_boxed_slice(),
            message_template: row.message_template.as_deref().map(Into::into),
            expires_at: row.expires_at,
            bar_interval,
            tree,
            condition_ids: ids.into_boxed_slice(),
            conditions: conditions.into_boxed_slice(),
        })
    }

    /// Adds what this strategy's conditions need to `needs`.
    pub fn needs(&self, needs: &mut DataNeeds) {
        for condition in self.conditions.iter() {
            condition.needs(needs);
        }
    }

    /// The indicators this strategy's conditions read.
    pub fn indicator_keys(&self) -> impl Iterator<Item = &IndicatorKey> {
        self.conditions.iter().flat_map(Condition::indicator_keys)
    }

    /// The tree's value in `ctx`, short-circuiting: `memory(i)` is condition `i`'s
    /// remembered value from the previous evaluation. (Batches and simulate go through
    /// `scheduler::evaluate`, which also reports each condition.)
    pub fn evaluate(&self, ctx: &BatchContext, memory: &dyn Fn(usize) -> Option<f64>) -> Tri {
        self.tree.evaluate(&mut |i| {
            let i = usize::from(i);
            self.conditions[i].evaluate(ctx, memory(i)).result
        })
    }
}
