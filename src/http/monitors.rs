//! The monitors for operators (DESIGN §13): the list with health badges, a run by
//! name (or `all`), and live settings — interval, enabled, snooze — that every replica
//! applies from the next cycle.

use crate::monitors::Registry;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::monitors::{MonitorView, RunError, Trigger};
use crate::storage::monitor_heartbeat::{self, SettingsChange};

/// The monitors this replica runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorList {
    #[schema(value_type = Vec<Object>)]
    pub monitors: Vec<MonitorView>,
}

fn unknown(name: &str) -> ApiError {
    let shown: String = name.chars().take(200).collect();
    ApiError::not_found(format!("no monitor is named {shown}"))
}

/// Every monitor: interval, enabled, snooze, last run and status, next run, health
/// (`ok`, `stale`, `error`, `snoozed`, `disabled`).
#[utoipa::path(get, path = "/monitors", tag = "monitors",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The monitors", body = MonitorList),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn list_monitors(
    State(registry): State<Arc<Registry>>,
) -> Result<Json<MonitorList>, ApiError> {
    let monitors = registry.list().await?;
    Ok(Json(MonitorList { monitors }))
}

/// Runs the monitor now (on this replica; a singleton never on two at once) and
/// answers its ledger row; `all` runs every monitor and answers each one's row or why
/// it did not run.
#[utoipa::path(post, path = "/monitors/{name}/run", tag = "monitors",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "A monitor's name, or `all`")),
    responses(
        (status = 200, description = "The run's ledger row (`all`: {\"runs\": [{\"name\", \"ledger\", \"code\", \"error\"}]}, code `running` or `unavailable` when it did not run)", body = Object),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No monitor has that name", body = crate::http::error::ErrorBody),
        (status = 409, description = "It is running", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn run_monitor(
    State(monitors): State<Arc<Registry>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if name == "all" {
        let mut runs = Vec::new();
        for name in monitors.names() {
            let (ledger, code, error) = match monitors.run(&name, Trigger::Manual).await {
                Ok(ledger) => (ledger, None, None),
                Err(RunError::Storage(cause)) => {
                    tracing::warn!(monitor = %name, error = %cause, "run not started");
                    (
                        None,
                        Some("unavailable"),
                        Some("the database is unavailable".to_owned()),
                    )
                }
                Err(error) => (None, Some("running"), Some(error.to_string())),
            };
            runs.push(json!({"name": name, "ledger": ledger, "code": code, "error": error}));
        }
        return Ok(Json(json!({"runs": runs})));
    }
    match monitors.run(&name, Trigger::Manual).await {
        Ok(ledger) => Ok(Json(ledger.unwrap_or_else(|| {
            json!({"name": name, "status": "skipped",
                   "details": {"reason": "nothing to do on this replica"}})
        }))),
        Err(RunError::Unknown(_)) => Err(unknown(&name)),
        Err(RunError::Running(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "running",
            format!("{name} is running; try when this run ends"),
        )),
        Err(RunError::Storage(error)) => Err(error.into()),
    }
}

/// Reads the PATCH body: each field checked and named when wrong.
fn settings_change(body: &[u8], takes_interval: bool) -> Result<SettingsChange, ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_monitor_settings", message);
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(bad("the body must be a JSON object".to_owned())),
        Err(error) => return Err(ApiError::bad_request("invalid_body", format!("{error}"))),
    };
    let mut change = SettingsChange::default();
    for (field, value) in fields {
        match field.as_str() {
            "interval_seconds" => {
                if !takes_interval {
                    return Err(bad(
                        "interval_seconds: this monitor's cadence is its strategies' frequency (or the candle closes); only enabled and snoozed_until apply".to_owned(),
                    ));
                }
                let seconds = value
                    .as_i64()
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or_else(|| {
                        bad(
                            "interval_seconds: must be a whole number of seconds from 1 to 86400"
                                .to_owned(),
                        )
                    })?;
                change.interval_seconds = i32::try_from(seconds).ok();
            }
            "enabled" => {
                change.enabled = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| bad("enabled: must be true or false".to_owned()))?,
                );
            }
            "snoozed_until" => {
                change.snoozed_until = Some(match value {
                    Value::Null => None,
                    Value::String(text) => Some(
                        DateTime::parse_from_rfc3339(&text)
                            .map_err(|_| {
                                bad("snoozed_until: must be an RFC 3339 time or null".to_owned())
                            })?
                            .with_timezone(&Utc),
                    ),
                    _ => {
                        return Err(bad(
                            "snoozed_until: must be an RFC 3339 time or null".to_owned()
                        ));
                    }
                });
            }
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(bad(format!(
                    "{shown}: unknown field (interval_seconds, enabled, snoozed_until)"
                )));
            }
        }
    }
    Ok(change)
}

/// Changes a monitor's interval (interval monitors only), enabled, or snooze (`null`
/// lifts it); every replica applies it from the monitor's next cycle.
#[utoipa::path(patch, path = "/monitors/{name}", tag = "monitors",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "A monitor's name")),
    request_body(content = Object, description = "{\"interval_seconds\": 1-86400, \"enabled\": bool, \"snoozed_until\": RFC 3339 or null}, each optional", content_type = "application/json"),
    responses(
        (status = 200, description = "The monitor after the change", body = Object),
        (status = 400, description = "A field of the wrong type or out of range, an unknown field, or an interval for a monitor that takes none — the field is named", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No monitor has that name", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn patch_monitor(
    State(db): State<PgPool>,
    State(monitors): State<Arc<Registry>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let monitor = monitors.get(&name).ok_or_else(|| unknown(&name))?;
    let change = settings_change(&body, monitor.cadence().takes_interval())?;
    let updated = monitor_heartbeat::update_settings(&db, &name, &change).await?;
    if updated.is_none() {
        return Err(unknown(&name));
    }
    let view = monitors
        .list()
        .await?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| unknown(&name))?;
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}
