//! One tick of a trading engine (DESIGN §12): the seed's metrics schema with an
//! `engine_id`, every section optional. Parsing is strict — an unknown section or
//! field, a wrong type, a number out of range or a timestamp that is not RFC 3339 is
//! refused with the JSON path of the field — so what the rules see is what the engine
//! meant. Every value must also survive its trip through Postgres and back: numbers
//! within ±[`MAX_MAGNITUDE`] (Postgres prints a jsonb number in full, and a 309-digit
//! integer is past what serde_json reads back), strings and lists bounded, and no
//! timestamp further ahead of the server's clock than `OPS_TICK_MAX_SKEW_SECONDS` (an
//! engine state stamped 2099 would leave every later tick "older", stored but never
//! judged).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The engine id when a tick names none.
pub const DEFAULT_ENGINE: &str = "default";
/// The largest magnitude a number may have (DESIGN §12).
pub const MAX_MAGNITUDE: f64 = 1e300;
/// The most characters a string may have.
pub const MAX_STRING_CHARS: usize = 256;
/// The most items a list may have.
pub const MAX_LIST_ITEMS: usize = 1000;

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
    // What the rules see is what was parsed: walk that, not the raw body.
    let value = serde_json::to_value(&tick).map_err(|error| TickError {
        path: "body".to_owned(),
        message: error.to_string(),
    })?;
    check_values(&value, &mut String::new())?;
    Ok(tick)
}

/// Refuses a tick stamped further ahead of `now` than `max_skew`: its `timestamp`, and
/// the engine's own `heartbeat.last_tick` and `connectivity.last_api_call`.
pub fn check_clock(
    tick: &Tick,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<(), TickError> {
    let stamps = [
        ("timestamp", tick.timestamp),
        (
            "heartbeat.last_tick",
            tick.heartbeat.as_ref().and_then(|h| h.last_tick),
        ),
        (
            "connectivity.last_api_call",
            tick.connectivity.as_ref().and_then(|c| c.last_api_call),
        ),
    ];
    for (path, stamp) in stamps {
        let limit = now.checked_add_signed(max_skew).unwrap_or(now);
        if stamp.is_some_and(|at| at > limit) {
            return Err(TickError {
                path: path.to_owned(),
                message: format!(
                    "is more than {} s ahead of the server's clock",
                    max_skew.num_seconds()
                ),
            });
        }
    }
    Ok(())
}

/// Numbers within ±[`MAX_MAGNITUDE`], strings of at most [`MAX_STRING_CHARS`] without
/// NUL (Postgres stores none in jsonb), lists of at most [`MAX_LIST_ITEMS`].
fn check_values(value: &serde_json::Value, path: &mut String) -> Result<(), TickError> {
    use serde_json::Value;
    let refuse = |path: &str, message: String| TickError {
        path: path.to_owned(),
        message,
    };
    match value {
        Value::Number(n) => {
            if n.as_f64().is_none_or(|x| x.abs() > MAX_MAGNITUDE) {
                return Err(refuse(path, format!("must be within ±{MAX_MAGNITUDE:e}")));
            }
        }
        Value::String(s) => {
            if s.chars().count() > MAX_STRING_CHARS {
                return Err(refuse(
                    path,
                    format!("must be at most {MAX_STRING_CHARS} characters"),
                ));
            }
            if s.contains('\0') {
                return Err(refuse(path, "must not contain a NUL character".to_owned()));
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_LIST_ITEMS {
                return Err(refuse(
                    path,
                    format!("must have at most {MAX_LIST_ITEMS} items"),
                ));
            }
            for (at, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{at}]"));
                check_values(item, path)?;
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                check_values(field, path)?;
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
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
        // Past what round-trips through Postgres' jsonb and serde_json.
        for body in [
            r#"{"risk": {"daily_loss_pct": -1.7976931348623157e308}}"#,
            r#"{"pnl": {"daily": 1e301}}"#,
            r#"{"artifacts": {"teacher_model_age_hours": -2e300}}"#,
        ] {
            let error = refused(body);
            assert!(error.message.contains("within"), "{body}: {error}");
        }
        assert_eq!(
            refused(r#"{"risk": {"daily_loss_pct": -1.7976931348623157e308}}"#).path,
            "risk.daily_loss_pct"
        );
        assert!(parse(br#"{"pnl": {"daily": -1e300}}"#).is_ok());
        let long = format!(
            r#"{{"positions": {{"symbols": ["A", "{}"]}}}}"#,
            "x".repeat(257)
        );
        assert_eq!(refused(&long).path, "positions.symbols[1]");
        let many = format!(
            r#"{{"positions": {{"symbols": [{}]}}}}"#,
            vec![r#""A""#; 1001].join(",")
        );
        assert_eq!(refused(&many).path, "positions.symbols");
        let most = format!(
            r#"{{"positions": {{"symbols": [{}]}}}}"#,
            vec![r#""A""#; 1000].join(",")
        );
        assert!(parse(most.as_bytes()).is_ok());
        assert!(refused(r#"{"pnl": {"daily": NaN}}"#).path == "pnl.daily");
        assert_eq!(
            refused(&format!(r#"{{"engine_id": "{}"}}"#, "e".repeat(65))).path,
            "engine_id"
        );
    }

    #[test]
    fn a_timestamp_ahead_of_the_server_clock_is_refused() {
        let now = "2026-12-02T12:00:00Z".parse().unwrap();
        let skew = chrono::Duration::seconds(300);
        let at = |body: &str| check_clock(&parse(body.as_bytes()).unwrap(), now, skew);
        assert!(at(r#"{"timestamp": "2026-12-02T12:05:00Z"}"#).is_ok());
        assert!(at(r#"{"timestamp": "2026-11-02T12:05:00Z"}"#).is_ok());
        assert_eq!(
            at(r#"{"timestamp": "2099-01-01T00:00:00Z"}"#)
                .unwrap_err()
                .path,
            "timestamp"
        );
        assert_eq!(
            at(r#"{"heartbeat": {"last_tick": "2026-12-02T12:05:01Z"}}"#)
                .unwrap_err()
                .path,
            "heartbeat.last_tick"
        );
        assert_eq!(
            at(r#"{"connectivity": {"last_api_call": "2030-01-01T00:00:00Z"}}"#)
                .unwrap_err()
                .path,
            "connectivity.last_api_call"
        );
    }
}
