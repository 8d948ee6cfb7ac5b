//! One tick of a trading engine (DESIGN §12): the seed's metrics schema with an
//! `engine_id`, every section optional. Parsing is strict — an unknown section or
//! field, a wrong type, a number out of range or a timestamp that is not RFC 3339 is
//! refused with the JSON path of the field — so what the rules see is what the engine
//! meant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The engine id when a tick names none.
pub const DEFAULT_ENGINE: &str = "default";

/// A tick as received.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tick {
    #[serde(default = "default_engine")]
    pub engine_id: String,
    /// The engine's clock; absent: when we received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Positions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pnl: Option<Pnl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Connectivity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
}

fn default_engine() -> String {
    DEFAULT_ENGINE.to_owned()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub last_tick: Option<DateTime<Utc>>,
    pub uptime_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Positions {
    pub count: Option<u32>,
    pub total_value: Option<f64>,
    pub symbols: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pnl {
    pub daily: Option<f64>,
    pub unrealized: Option<f64>,
    pub realized: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub circuit_breaker_active: Option<bool>,
    pub daily_loss_pct: Option<f64>,
    pub max_position_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sentiment {
    pub last_score: Option<f64>,
    pub provider_errors_1h: Option<u32>,
    pub cache_hit_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Connectivity {
    pub breeze_authenticated: Option<bool>,
    pub last_api_call: Option<DateTime<Utc>>,
}

/// Model artifacts' ages. A field present as `null` means the artifact is missing
/// (`Some(None)`); an absent field is not reported (`None`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub teacher_model_age_hours: Option<Option<f64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub student_model_age_hours: Option<Option<f64>>,
}

/// A field that is present, perhaps as `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// Why a tick was refused: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for TickError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Parses and checks a tick's body.
pub fn parse(body: &[u8]) -> Result<Tick, TickError> {
    // serde would also take a struct from an array, by position: only objects are ticks.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(TickError {
            path: "body".to_owned(),
            message: "must be a JSON object".to_owned(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let tick: Tick = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        TickError {
            path: if path == "." { "body".to_owned() } else { path },
            message: without_position(&inner.to_string()),
        }
    })?;
    deserializer.end().map_err(|error| TickError {
        path: "body".to_owned(),
        message: without_position(&error.to_string()),
    })?;
    check_engine_id(&tick.engine_id)?;
    // Postgres stores no NUL character in jsonb.
    let symbols = tick.positions.as_ref().and_then(|p| p.symbols.as_deref());
    if let Some(at) = symbols
        .unwrap_or_default()
        .iter()
        .position(|s| s.contains('\0'))
    {
        return Err(TickError {
            path: format!("positions.symbols[{at}]"),
            message: "must not contain a NUL character".to_owned(),
        });
    }
    Ok(tick)
}

/// `engine_id`: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn check_engine_id(engine_id: &str) -> Result<(), TickError> {
    let valid = (1..=64).contains(&engine_id.len())
        && engine_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TickError {
            path: "engine_id".to_owned(),
            message: "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".to_owned(),
        })
    }
}

/// serde_json's message without its " at line 1 column 42" tail.
fn without_position(message: &str) -> String {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> TickError {
        parse(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn the_seed_tick_parses_and_absent_sections_stay_absent() {
        let tick = parse(br#"{"engine_id": "live-1", "timestamp": "2026-12-02T12:34:56Z",
            "risk": {"circuit_breaker_active": true, "daily_loss_pct": -0.25, "max_position_value": 50000.0},
            "artifacts": {"teacher_model_age_hours": null}}"#)
        .unwrap();
        assert_eq!(tick.engine_id, "live-1");
        assert_eq!(
            tick.risk.as_ref().unwrap().circuit_breaker_active,
            Some(true)
        );
        let artifacts = tick.artifacts.unwrap();
        assert_eq!(
            artifacts.teacher_model_age_hours,
            Some(None),
            "null: missing"
        );
        assert_eq!(
            artifacts.student_model_age_hours, None,
            "absent: not reported"
        );
        assert!(tick.positions.is_none());
        assert_eq!(parse(b"{}").unwrap().engine_id, DEFAULT_ENGINE);
    }

    #[test]
    fn bad_fields_are_named_by_their_path() {
        let cases = [
            (
                r#"{"risk": {"daily_loss_pct": "a lot"}}"#,
                "risk.daily_loss_pct",
            ),
            (r#"{"positions": {"count": -1}}"#, "positions.count"),
            (r#"{"positions": {"count": 2.5}}"#, "positions.count"),
            (
                r#"{"positions": {"symbols": ["A", 3]}}"#,
                "positions.symbols[1]",
            ),
            (r#"{"timestamp": "yesterday"}"#, "timestamp"),
            (
                r#"{"connectivity": {"last_api_call": "2026-12-02 12:00"}}"#,
                "connectivity.last_api_call",
            ),
            (r#"{"weather": {}}"#, "weather"),
            (r#"{"risk": {"leverage": 3}}"#, "risk.leverage"),
            (r#"{"pnl": {"daily": 1e999}}"#, "pnl.daily"),
            (r#"{"engine_id": "has space"}"#, "engine_id"),
            (r#"{"engine_id": ""}"#, "engine_id"),
            (r#"{} {}"#, "body"),
            (r#"[1]"#, "body"),
            (
                r#"{"positions": {"symbols": ["A", "B\u0000"]}}"#,
                "positions.symbols[1]",
            ),
        ];
        for (body, path) in cases {
            let error = refused(body);
            assert_eq!(error.path, path, "{body}: {error}");
            assert!(!error.message.contains("line"), "{error}");
        }
        assert!(refused(r#"{"weather": {}}"#).message.contains("weather"));
        assert!(refused(r#"{"pnl": {"daily": NaN}}"#).path == "pnl.daily");
        assert_eq!(
            refused(&format!(r#"{{"engine_id": "{}"}}"#, "e".repeat(65))).path,
            "engine_id"
        );
    }
}
