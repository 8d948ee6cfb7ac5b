//! Silences as Alertmanager 0.25 has them (`postableSilence`, `gettableSilence`), over
//! the one `ops_silences` table: a silence made with amtool is one our routes list and
//! our dispatcher obeys, and the other way round. Matchers keep their negation
//! (`isEqual`); ours are the same matchers, with `rule`, `severity` and `component`
//! as names our own alerts also answer to.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::posted::time;
use crate::ops_alerts::{SilenceFields, check_silence, parse_matchers};
use crate::storage::ops_silences::SilenceRow;

/// `matcher`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

/// `silenceStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: &'static str,
}

/// `gettableSilence`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    pub updated_at: DateTime<Utc>,
    pub matchers: Vec<WireMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// A silence's state at `now`.
pub fn state_of(row: &SilenceRow, now: DateTime<Utc>) -> &'static str {
    if row.ends_at <= now {
        "expired"
    } else if row.starts_at > now {
        "pending"
    } else {
        "active"
    }
}

/// A stored silence as a `gettableSilence`.
pub fn gettable(row: &SilenceRow, now: DateTime<Utc>) -> GettableSilence {
    let matchers = row
        .matchers
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| WireMatcher {
                    name: m["name"].as_str().unwrap_or_default().to_owned(),
                    value: m["value"].as_str().unwrap_or_default().to_owned(),
                    is_regex: m["is_regex"].as_bool().unwrap_or(false),
                    is_equal: m["is_equal"].as_bool().unwrap_or(true),
                })
                .collect()
        })
        .unwrap_or_default();
    GettableSilence {
        id: row.id.to_string(),
        status: SilenceStatus {
            state: state_of(row, now),
        },
        updated_at: row.updated_at,
        matchers,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        created_by: row.created_by.clone(),
        comment: row.comment.clone(),
    }
}

/// Alertmanager's rule for `GET /silences?filter=`: each filter matcher must match the
/// value the silence's matchers give its name (a matcher with an empty value asks
/// only that the name be absent, or for negative ones present).
pub fn matches_filter(silence: &GettableSilence, filter: &[crate::ops_alerts::Matcher]) -> bool {
    filter.iter().all(|m| {
        let value = silence
            .matchers
            .iter()
            .find(|s| s.name == m.name)
            .map(|s| s.value.clone());
        let present = value.is_some();
        let empty_value = m.value.is_empty();
        if empty_value && (present != m.equal) {
            return true;
        }
        let mut set = std::collections::BTreeMap::new();
        if let Some(value) = value {
            set.insert(m.name.clone(), value);
        }
        m.matches_labels(&set)
    })
}

/// A posted silence, checked: its id if it names one, and the row to store (with a
/// fresh id). Errors name the field (`matchers[0].value`, `endsAt`).
pub fn parse_postable(
    body: &Value,
    max_days: u32,
    now: DateTime<Utc>,
) -> Result<(Option<String>, SilenceRow), String> {
    let object = body.as_object().ok_or("silence: must be an object")?;
    let text = |name: &str| -> Result<String, String> {
        match object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            None => Err(format!("{name}: required")),
            Some(_) => Err(format!("{name}: must be text")),
        }
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.is_empty() => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err("id: must be text".to_owned()),
    };
    let list = match object.get("matchers") {
        Some(Value::Array(list)) => list,
        None => return Err("matchers: required".to_owned()),
        Some(_) => return Err("matchers: must be an array of matchers".to_owned()),
    };
    let mut stored = Vec::with_capacity(list.len());
    for (i, matcher) in list.iter().enumerate() {
        let field = |name: &str| matcher.get(name);
        let (Some(Value::String(name)), Some(Value::String(value))) =
            (field("name"), field("value"))
        else {
            return Err(format!("matchers[{i}]: needs text name and value"));
        };
        let Some(Value::Bool(is_regex)) = field("isRegex") else {
            return Err(format!("matchers[{i}].isRegex: required, true or false"));
        };
        let is_equal = match field("isEqual") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(equal)) => *equal,
            Some(_) => return Err(format!("matchers[{i}].isEqual: must be true or false")),
        };
        if name.contains('\0') || value.contains('\0') {
            return Err(format!("matchers[{i}]: must not contain a NUL character"));
        }
        stored.push(json!({"name": name, "value": value, "is_regex": is_regex,
                           "is_equal": is_equal}));
    }
    let matchers_json = Value::Array(stored);
    let matchers = parse_matchers(&matchers_json).map_err(|e| e.to_string())?;
    let starts_at = time(object.get("startsAt"))
        .map_err(|e| format!("startsAt{e}"))?
        .ok_or("startsAt: required")?;
    let ends_at = time(object.get("endsAt"))
        .map_err(|e| format!("endsAt{e}"))?
        .ok_or("endsAt: required")?;
    if ends_at <= now {
        return Err("endsAt: must not be in the past".to_owned());
    }
    // Alertmanager starts a silence whose start has passed now.
    let starts_at = starts_at.max(now);
    let created_by = text("createdBy")?;
    let comment = text("comment")?;
    check_silence(
        &matchers,
        (starts_at, ends_at),
        &[("createdBy", &created_by), ("comment", &comment)],
        max_days,
        SilenceFields {
            starts_at: "startsAt",
            ends_at: "endsAt",
        },
    )
    .map_err(|e| e.to_string())?;
    Ok((
        id,
        SilenceRow {
            id: uuid::Uuid::new_v4(),
            matchers: matchers_json,
            starts_at,
            ends_at,
            created_by,
            comment,
            updated_at: now,
        },
    ))
}
