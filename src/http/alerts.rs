//! Operational alerts for operators (DESIGN §10): the active alerts, the history, clear
//! and acknowledge, and silences.

use crate::config::Config;
use crate::ops_alerts::OpsAlerts;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use crate::ops_alerts::{Severity, SilenceFields, check_silence, parse_matchers};
use crate::storage::ops_alerts::{AlertRow, HistoryFilter, Refused};
use crate::storage::ops_silences::SilenceRow;

/// Most episodes one history page returns.
const MAX_HISTORY: i64 = 1000;

/// One alert as the routes show it: the row plus the seed's names (`level`,
/// `timestamp`, `details`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: AlertRow,
    /// The severity.
    pub level: String,
    /// When the episode started.
    pub timestamp: DateTime<Utc>,
    /// The context.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AlertRow> for AlertView {
    fn from(alert: AlertRow) -> Self {
        Self {
            level: alert.severity.clone(),
            timestamp: alert.started_at,
            details: alert.context.clone(),
            alert,
        }
    }
}

/// A list of alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
    pub count: usize,
    /// History only: pass as `before` for the next (older) page; null on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// The firing alerts, most recent first.
#[utoipa::path(get, path = "/alerts/active", tag = "alerts",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Firing alerts", body = AlertList),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn active_alerts(
    State(ops_alerts): State<OpsAlerts>,
) -> Result<Json<AlertList>, ApiError> {
    let alerts: Vec<AlertView> = ops_alerts
        .active()
        .await?
        .into_iter()
        .map(AlertView::from)
        .collect();
    Ok(Json(AlertList {
        count: alerts.len(),
        alerts,
        next_before: None,
    }))
}

/// History filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// 1–1000 (default 100).
    pub limit: Option<i64>,
    pub rule: Option<String>,
    /// `INFO`, `WARNING` or `CRITICAL`.
    pub severity: Option<String>,
    pub component: Option<String>,
    /// Episodes started at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// The previous page's `next_before`.
    pub before: Option<String>,
}

/// Every episode, newest first, in pages.
#[utoipa::path(get, path = "/alerts/history", tag = "alerts",
    security(("api_key" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Episodes, newest first", body = AlertList),
        (status = 400, description = "A bad filter, named", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn alert_history(
    State(ops_alerts): State<OpsAlerts>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    for (field, text) in [
        ("rule", &query.rule),
        ("severity", &query.severity),
        ("component", &query.component),
    ] {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{field}: must not contain a NUL character"),
            ));
        }
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_HISTORY).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit: must be between 1 and {MAX_HISTORY}"),
        ));
    }
    if let Some(severity) = &query.severity
        && Severity::parse(severity).is_none()
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "severity: must be INFO, WARNING or CRITICAL",
        ));
    }
    let before = match &query.before {
        None => None,
        Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "before: not a cursor this route gave")
        })?),
    };
    let alerts = ops_alerts
        .history(&HistoryFilter {
            rule: query.rule,
            severity: query.severity,
            component: query.component,
            since: query.since,
            before,
            limit,
        })
        .await?;
    let next_before = (alerts.len() as i64 == limit)
        .then(|| alerts.last().map(cursor))
        .flatten();
    let alerts: Vec<AlertView> = alerts.into_iter().map(AlertView::from).collect();
    Ok(Json(AlertList {
        count: alerts.len(),
        alerts,
        next_before,
    }))
}

/// A page cursor: the last episode's start (µs) and id.
fn cursor(alert: &AlertRow) -> String {
    format!("{}_{}", alert.started_at.timestamp_micros(), alert.alert_id)
}

fn parse_cursor(text: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = text.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.to_owned(),
    ))
}

/// An operator's change to one alert: the alert, or 404 / 409.
fn changed(
    alert_id: &str,
    outcome: Result<AlertRow, Refused>,
) -> Result<Json<AlertView>, ApiError> {
    match outcome {
        Ok(alert) => Ok(Json(alert.into())),
        Err(Refused::Unknown) => Err(ApiError::not_found(format!("no alert {alert_id}"))),
        Err(Refused::Closed(state)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "alert_closed",
            format!("alert {alert_id} is {state}, not firing"),
        )),
    }
}

/// Clears a firing alert: closed now, re-armed once its rule is seen not holding.
#[utoipa::path(post, path = "/alerts/{alert_id}/clear", tag = "alerts",
    security(("api_key" = [])),
    params(("alert_id" = String, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "Cleared", body = AlertView),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such alert", body = crate::http::error::ErrorBody),
        (status = 409, description = "Not firing (already resolved or cleared)", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn clear_alert(
    State(ops_alerts): State<OpsAlerts>,
    Path(alert_id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let outcome = ops_alerts.clear(&alert_id).await?;
    changed(&alert_id, outcome)
}

/// Acknowledges a firing alert: it stays active and is not notified again.
#[utoipa::path(post, path = "/alerts/{alert_id}/ack", tag = "alerts",
    security(("api_key" = [])),
    params(("alert_id" = String, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "Acknowledged", body = AlertView),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such alert", body = crate::http::error::ErrorBody),
        (status = 409, description = "Not firing (already resolved or cleared)", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn acknowledge_alert(
    State(ops_alerts): State<OpsAlerts>,
    Path(alert_id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let outcome = ops_alerts.acknowledge(&alert_id, "operator").await?;
    changed(&alert_id, outcome)
}

/// The silences not yet ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceList {
    pub silences: Vec<SilenceRow>,
}

/// Lists silences (current and future).
#[utoipa::path(get, path = "/silences", tag = "alerts",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Silences not yet ended", body = SilenceList),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn list_silences(
    State(ops_alerts): State<OpsAlerts>,
) -> Result<Json<SilenceList>, ApiError> {
    let silences = ops_alerts.silences().await?;
    Ok(Json(SilenceList { silences }))
}

/// A new silence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `[{"name": "rule" | "alertname" | "severity" | "component" | <label>, "value": text, "is_regex": bool, "is_equal": bool}]` (`is_regex` false and `is_equal` true when left out).
    #[schema(value_type = Vec<Object>)]
    pub matchers: Value,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// Adds a silence.
#[utoipa::path(post, path = "/silences", tag = "alerts",
    security(("api_key" = [])),
    request_body(content = NewSilence, content_type = "application/json"),
    responses(
        (status = 201, description = "Added", body = SilenceRow),
        (status = 400, description = "Malformed body, no matcher, matchers that match every alert, a bad regular expression, an end before the start or more than SILENCE_MAX_DAYS after it — the field is named", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn add_silence(
    State(config): State<Arc<Config>>,
    State(ops_alerts): State<OpsAlerts>,
    body: Bytes,
) -> Result<(StatusCode, Json<SilenceRow>), ApiError> {
    let request: NewSilence = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("{e}")))?;
    if request.matchers.to_string().contains("\\u0000") {
        return Err(ApiError::bad_request(
            "invalid_silence",
            "matchers: must not contain a NUL character",
        ));
    }
    let starts_at = request.starts_at.unwrap_or_else(Utc::now);
    let matchers = parse_matchers(&request.matchers)
        .and_then(|matchers| {
            check_silence(
                &matchers,
                (starts_at, request.ends_at),
                &[
                    ("created_by", &request.created_by),
                    ("comment", &request.comment),
                ],
                config.alerts.silence_max_days,
                SilenceFields {
                    starts_at: "starts_at",
                    ends_at: "ends_at",
                },
            )
            .map(|()| matchers)
        })
        .map_err(|e| ApiError::bad_request("invalid_silence", e.to_string()))?;
    let silence = SilenceRow {
        id: Uuid::new_v4(),
        matchers: Value::Array(matchers.iter().map(|m| m.to_json()).collect()),
        starts_at,
        ends_at: request.ends_at,
        created_by: request.created_by,
        comment: request.comment,
        updated_at: Utc::now(),
    };
    ops_alerts.add_silence(&silence).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// Deletes a silence.
#[utoipa::path(delete, path = "/silences/{id}", tag = "alerts",
    security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The silence's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such silence", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn delete_silence(
    State(ops_alerts): State<OpsAlerts>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if ops_alerts.delete_silence(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no silence {id}")))
    }
}
