//! Each engine at a glance, from its last tick and the rules holding for it: the
//! heartbeat, the circuit breaker, connectivity and the models' freshness — what
//! `GET /internal/engines` answers and the operator CLI's `health` shows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::rules::{HEARTBEAT_LAPSED, circuit_breaker, connectivity, stale_models};
use crate::storage::engine_state::EngineStateRow;

/// One engine's state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EngineOverview {
    pub engine_id: String,
    /// When its last tick arrived (server clock); null: never ticked.
    pub last_tick_at: Option<DateTime<Utc>>,
    /// `ok`, `lapsed` (the heartbeat rule holds) or `never` (expected, never ticked).
    pub heartbeat: &'static str,
    /// `ok`, `tripped` (active in the last tick) or `unreported`.
    pub circuit_breaker: &'static str,
    pub connectivity: Connectivity,
    pub teacher_model: ModelFreshness,
    pub student_model: ModelFreshness,
    /// `{"<rule>": "<severity>"}`: the rules holding for it now.
    #[schema(value_type = Object)]
    pub holding: Value,
}

/// The broker connection in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Connectivity {
    /// `ok`, `lost` (the rule holds) or `unreported`.
    pub state: &'static str,
    pub authenticated: Option<bool>,
    pub last_api_call: Option<DateTime<Utc>>,
}

/// One model artifact's age in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelFreshness {
    /// `fresh`, `stale` (the rule holds), `missing` (reported null) or `unreported`.
    pub state: &'static str,
    pub age_hours: Option<f64>,
}

impl EngineOverview {
    /// The overview of one stored engine.
    pub fn of(row: &EngineStateRow) -> Self {
        let metrics = row.last_metrics.as_ref().unwrap_or(&Value::Null);
        let holds = |rule: &str| row.holding.get(rule).is_some();
        let heartbeat = if holds(HEARTBEAT_LAPSED) {
            "lapsed"
        } else if row.last_received_at.is_none() {
            "never"
        } else {
            "ok"
        };
        let breaker = metrics.pointer("/risk/circuit_breaker_active");
        let circuit_breaker = if holds(circuit_breaker::RULE.name) {
            "tripped"
        } else if breaker.is_some_and(Value::is_boolean) {
            "ok"
        } else {
            "unreported"
        };
        let authenticated = metrics
            .pointer("/connectivity/breeze_authenticated")
            .and_then(Value::as_bool);
        let last_api_call = metrics
            .pointer("/connectivity/last_api_call")
            .and_then(Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc));
        let connectivity = Connectivity {
            state: if holds(connectivity::RULE.name) {
                "lost"
            } else if authenticated.is_some() || last_api_call.is_some() {
                "ok"
            } else {
                "unreported"
            },
            authenticated,
            last_api_call,
        };
        Self {
            engine_id: row.engine_id.clone(),
            last_tick_at: row.last_received_at,
            heartbeat,
            circuit_breaker,
            connectivity,
            teacher_model: freshness(
                metrics.pointer("/artifacts/teacher_model_age_hours"),
                holds(stale_models::TEACHER.name),
            ),
            student_model: freshness(
                metrics.pointer("/artifacts/student_model_age_hours"),
                holds(stale_models::STUDENT.name),
            ),
            holding: row.holding.clone(),
        }
    }
}

fn freshness(reported: Option<&Value>, stale: bool) -> ModelFreshness {
    let age_hours = reported.and_then(Value::as_f64);
    let state = match reported {
        None => "unreported",
        Some(Value::Null) => "missing",
        Some(_) if stale => "stale",
        Some(_) => "fresh",
    };
    ModelFreshness { state, age_hours }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(metrics: Option<Value>, holding: Value) -> EngineStateRow {
        EngineStateRow {
            engine_id: "live-1".into(),
            last_recorded_at: None,
            last_received_at: metrics.as_ref().map(|_| Utc::now()),
            last_metrics: metrics,
            holding,
        }
    }

    #[test]
    fn a_healthy_tick_reads_ok_and_fresh() {
        let overview = EngineOverview::of(&row(
            Some(json!({"risk": {"circuit_breaker_active": false},
                        "connectivity": {"breeze_authenticated": true,
                                         "last_api_call": "2026-12-02T12:34:50Z"},
                        "artifacts": {"teacher_model_age_hours": 12, "student_model_age_hours": 6}})),
            json!({}),
        ));
        assert_eq!(overview.heartbeat, "ok");
        assert_eq!(overview.circuit_breaker, "ok");
        assert_eq!(overview.connectivity.state, "ok");
        assert_eq!(overview.connectivity.authenticated, Some(true));
        assert_eq!(
            overview.connectivity.last_api_call.map(|t| t.to_rfc3339()),
            Some("2026-12-02T12:34:50+00:00".into())
        );
        assert_eq!(overview.teacher_model.state, "fresh");
        assert_eq!(overview.teacher_model.age_hours, Some(12.0));
        assert_eq!(overview.student_model.age_hours, Some(6.0));
    }

    #[test]
    fn holding_rules_and_missing_sections_are_named() {
        let overview = EngineOverview::of(&row(
            Some(json!({"risk": {"circuit_breaker_active": true},
                        "connectivity": {"breeze_authenticated": false},
                        "artifacts": {"teacher_model_age_hours": 30, "student_model_age_hours": null}})),
            json!({"circuit_breaker_triggered": "CRITICAL", "connectivity_lost": "CRITICAL",
                   "stale_teacher_model": "WARNING", "stale_student_model": "WARNING",
                   "heartbeat_lapsed": "CRITICAL"}),
        ));
        assert_eq!(overview.heartbeat, "lapsed");
        assert_eq!(overview.circuit_breaker, "tripped");
        assert_eq!(overview.connectivity.state, "lost");
        assert_eq!(overview.teacher_model.state, "stale");
        assert_eq!(overview.student_model.state, "missing");
        assert_eq!(overview.student_model.age_hours, None);

        let silent = EngineOverview::of(&row(Some(json!({"pnl": {"daily": 1.0}})), json!({})));
        assert_eq!(silent.circuit_breaker, "unreported");
        assert_eq!(silent.connectivity.state, "unreported");
        assert_eq!(silent.teacher_model.state, "unreported");
        let never = EngineOverview::of(&row(None, json!({})));
        assert_eq!(never.heartbeat, "never");
        assert_eq!(never.last_tick_at, None);
    }
}
