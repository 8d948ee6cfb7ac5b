//! Trading-engine routes (DESIGN §12): `POST /internal/engine/ticks` takes one tick
//! (strictly parsed: a bad field is a 400 naming its JSON path) and answers once it is
//! committed, with the alerts it raised; `GET /internal/engine/metrics` answers an
//! engine's history, min / max / avg / last of every numeric field per step;
//! `GET /internal/engines` answers each engine at a glance.

use sqlx::PgPool;
use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::metrics::Metrics;
use crate::ops_rules::EngineTicks;
use crate::ops_rules::{EngineOverview, IntakeError, NUMERIC_FIELDS, Received, tick};
use crate::storage::{engine_metrics, engine_state};
use std::sync::Arc;

/// The answer to a tick.
#[derive(Debug, Serialize, ToSchema)]
pub struct TickAccepted {
    pub accepted: bool,
    /// The ids of the alerts this tick's holding rules raised (opened or still firing).
    pub alerts: Vec<String>,
}

/// Takes one engine tick.
#[utoipa::path(post, path = "/engine/ticks", tag = "engine",
    security(("api_key" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "A tick: engine_id, timestamp, heartbeat, positions, pnl, risk, sentiment, connectivity, artifacts (every section optional)"),
    responses(
        (status = 202, description = "Stored and judged", body = TickAccepted),
        (status = 400, description = "A bad field, named by its JSON path", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's tick rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "The tick could not be stored (queue full or database down)", body = crate::http::error::ErrorBody)))]
pub async fn post_tick(
    State(engine): State<EngineTicks>,
    State(metrics): State<Arc<Metrics>>,
    body: Bytes,
) -> Result<(StatusCode, Json<TickAccepted>), ApiError> {
    let received_at = Utc::now();
    let tick = tick::parse(&body)
        .and_then(|tick| tick::check_clock(&tick, received_at, engine.max_skew).map(|()| tick))
        .map_err(|error| ApiError::bad_request("invalid_tick", error.to_string()))?;
    let label = engine.labels.label(&tick.engine_id).to_owned();
    let alerts = engine
        .intake
        .submit(Received { tick, received_at })
        .await
        .map_err(|error| match error {
            IntakeError::Full | IntakeError::ShuttingDown | IntakeError::Database => {
                ApiError::unavailable("the tick store", error)
            }
        })?;
    let metrics = &metrics.engine;
    metrics.ticks.with_label_values(&[&label]).inc();
    metrics
        .last_tick
        .with_label_values(&[&label])
        .set(received_at.timestamp_millis() as f64 / 1000.0);
    Ok((
        StatusCode::ACCEPTED,
        Json(TickAccepted {
            accepted: true,
            alerts,
        }),
    ))
}

/// Which history to answer.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub engine_id: String,
    /// RFC 3339; default: `until` minus an hour.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339; default: now.
    pub until: Option<DateTime<Utc>>,
    /// The step: seconds (`60`) or with a unit (`30s`, `5m`, `1h`, `1d`); default `1m`.
    pub step: Option<String>,
}

/// One field over one step.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldStats {
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub last: f64,
    pub count: i64,
}

/// One step of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct Step {
    /// The step's start.
    pub at: DateTime<Utc>,
    /// By dotted path, e.g. `pnl.daily`.
    pub fields: BTreeMap<String, FieldStats>,
}

/// An engine's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub engine_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step_seconds: u64,
    pub steps: Vec<Step>,
}

/// Most steps one answer covers.
const MAX_STEPS: i64 = 10_000;

/// Answers an engine's history per step.
#[utoipa::path(get, path = "/engine/metrics", tag = "engine",
    security(("api_key" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Min, max, avg and last of each numeric field per step (steps without ticks left out)", body = History),
        (status = 400, description = "A bad parameter, named", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "The database is unreachable", body = crate::http::error::ErrorBody)))]
pub async fn engine_history(
    State(db): State<PgPool>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    tick::check_engine_id(&query.engine_id)
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let step_seconds = parse_step(query.step.as_deref().unwrap_or("1m")).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            "step: a number of seconds from 1, optionally with s, m, h or d",
        )
    })?;
    let until = query.until.unwrap_or_else(Utc::now);
    let since = query.since.unwrap_or(until - chrono::Duration::hours(1));
    if since >= until {
        return Err(ApiError::bad_request(
            "invalid_query",
            "since: must be before until",
        ));
    }
    let steps = (until - since).num_seconds() / step_seconds as i64;
    if steps > MAX_STEPS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("step: {steps} steps asked, at most {MAX_STEPS}; widen the step"),
        ));
    }
    let rows = engine_metrics::series(
        &db,
        &query.engine_id,
        since,
        until,
        step_seconds as f64,
        NUMERIC_FIELDS,
    )
    .await?;
    let mut steps: Vec<Step> = Vec::new();
    for row in rows {
        if steps.last().is_none_or(|step| step.at != row.at) {
            steps.push(Step {
                at: row.at,
                fields: BTreeMap::new(),
            });
        }
        let stats = FieldStats {
            min: row.min,
            max: row.max,
            avg: row.avg,
            last: row.last,
            count: row.count,
        };
        if let Some(step) = steps.last_mut() {
            step.fields.insert(row.field, stats);
        }
    }
    Ok(Json(History {
        engine_id: query.engine_id,
        since,
        until,
        step_seconds,
        steps,
    }))
}

/// Every engine known, each at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct EngineList {
    pub engines: Vec<EngineOverview>,
}

/// Each engine (those that ticked and those expected): its last tick's time, heartbeat,
/// circuit breaker, connectivity and models' freshness, and the rules holding for it.
#[utoipa::path(get, path = "/engines", tag = "engine",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The engines, by id", body = EngineList),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "The database is unreachable", body = crate::http::error::ErrorBody)))]
pub async fn list_engines(State(db): State<PgPool>) -> Result<Json<EngineList>, ApiError> {
    let rows = engine_state::all(&db).await?;
    Ok(Json(EngineList {
        engines: rows.iter().map(EngineOverview::of).collect(),
    }))
}

/// `60`, `30s`, `5m`, `1h`, `1d` → seconds (at least 1, at most a year).
fn parse_step(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (at, 's') => (&text[..at], 1),
        (at, 'm') => (&text[..at], 60),
        (at, 'h') => (&text[..at], 3600),
        (at, 'd') => (&text[..at], 86_400),
        _ => (text, 1),
    };
    let seconds = number.parse::<u64>().ok()?.checked_mul(unit)?;
    (1..=365 * 86_400).contains(&seconds).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::parse_step;

    #[test]
    fn steps_with_and_without_units() {
        assert_eq!(parse_step("60"), Some(60));
        assert_eq!(parse_step("30s"), Some(30));
        assert_eq!(parse_step("5m"), Some(300));
        assert_eq!(parse_step("1h"), Some(3600));
        assert_eq!(parse_step("1d"), Some(86_400));
        for bad in ["0", "", "m", "-5m", "1.5h", "1w", "999999999999999999d"] {
            assert_eq!(parse_step(bad), None, "{bad}");
        }
    }
}
