//! `/api/v2/*`: Alertmanager 0.25's API over our alerts and silences (DESIGN §18), for
//! Prometheus, amtool, Grafana and Karma. Behind the same key as `/internal/*`
//! (`X-MONITORING-KEY` or `Authorization: Bearer`). Answers follow Alertmanager's
//! `api/v2/openapi.yaml`: its 400 and 404 bodies are JSON strings (here naming the
//! field); 401, 413, 429 and 503, which its document does not list, are ours.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::alertmanager::{self as am, GettableAlert, GettableSilence, ListQuery};
use crate::ops_alerts::silence_of;

/// The routes, relative to `/api/v2`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(get_alerts).post(post_alerts))
        .route("/alerts/groups", get(get_alert_groups))
        .route("/silences", get(get_silences).post(post_silence))
        .route("/silence/{id}", delete(delete_silence).get(get_silence))
        .route("/status", get(get_status))
        .route("/receivers", get(get_receivers))
}

/// An answer of Alertmanager's kind: a JSON string for 400 and 404, ours otherwise.
enum AmError {
    BadRequest(String),
    NotFound(String),
    Ours(ApiError),
}

impl From<sqlx::Error> for AmError {
    fn from(error: sqlx::Error) -> Self {
        Self::Ours(error.into())
    }
}

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, Json(message)).into_response(),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, Json(message)).into_response(),
            Self::Ours(error) => error.into_response(),
        }
    }
}

fn json_body(body: &Bytes) -> Result<Value, AmError> {
    serde_json::from_slice(body).map_err(|e| AmError::BadRequest(format!("body: not JSON ({e})")))
}

/// `POST /alerts`: stores the valid alerts of the batch; any invalid one makes the
/// answer a 400 naming each (Alertmanager's behaviour: the rest are kept).
async fn post_alerts(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, AmError> {
    let (alerts, errors) = am::parse_alerts(&json_body(&body)?);
    if !alerts.is_empty() {
        state
            .ops_alerts
            .ingest(alerts, state.config.alerts.resolve_timeout)
            .await?;
    }
    if errors.is_empty() {
        Ok(StatusCode::OK)
    } else {
        Err(AmError::BadRequest(errors.join("; ")))
    }
}

/// Every firing episode as Alertmanager shows it, filtered by `query`.
async fn listed_alerts(state: &AppState, query: &ListQuery) -> Result<Vec<GettableAlert>, AmError> {
    let now = Utc::now();
    let silences: Vec<(String, crate::ops_alerts::Silence)> = state
        .ops_alerts
        .silences()
        .await?
        .iter()
        .filter_map(|row| Some((row.id.to_string(), silence_of(row)?)))
        .collect();
    let timeout =
        chrono::Duration::from_std(state.config.alerts.resolve_timeout).unwrap_or_default();
    Ok(state
        .ops_alerts
        .active()
        .await?
        .iter()
        .map(|row| am::gettable(row, &silences, timeout, now))
        .filter(|alert| am::wanted(alert, query))
        .collect())
}

fn list_query(raw: Option<String>) -> Result<ListQuery, AmError> {
    am::parse_query(raw.as_deref()).map_err(AmError::BadRequest)
}

/// `GET /alerts`.
async fn get_alerts(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<GettableAlert>>, AmError> {
    let query = list_query(raw)?;
    let mut alerts = listed_alerts(&state, &query).await?;
    alerts.sort_by(|a, b| (a.starts_at, &a.fingerprint).cmp(&(b.starts_at, &b.fingerprint)));
    Ok(Json(alerts))
}

/// `GET /alerts/groups`.
async fn get_alert_groups(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<am::AlertGroup>>, AmError> {
    let query = list_query(raw)?;
    Ok(Json(am::groups(listed_alerts(&state, &query).await?)))
}

/// `GET /silences`: every silence, expired ones included, active first.
async fn get_silences(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<GettableSilence>>, AmError> {
    let query = list_query(raw)?;
    let now = Utc::now();
    let mut silences: Vec<GettableSilence> = state
        .ops_alerts
        .all_silences()
        .await?
        .iter()
        .map(|row| am::silences::gettable(row, now))
        .filter(|silence| am::matches_filter(silence, &query.filter))
        .collect();
    let rank = |s: &GettableSilence| match s.status.state {
        "active" => (0, s.ends_at.timestamp_millis()),
        "pending" => (1, s.starts_at.timestamp_millis()),
        _ => (2, -s.ends_at.timestamp_millis()),
    };
    silences.sort_by_key(rank);
    Ok(Json(silences))
}

fn silence_id(text: &str) -> Result<Uuid, AmError> {
    Uuid::parse_str(text).map_err(|_| AmError::BadRequest("silenceID: must be a UUID".to_owned()))
}

/// `POST /silences`: a new silence, or (with the `id` of one not ended) a change to
/// it; a change to an ended one makes a new silence, as in Alertmanager.
async fn post_silence(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, AmError> {
    let now = Utc::now();
    let (id, mut row) = am::parse_postable(
        &json_body(&body)?,
        state.config.alerts.silence_max_days,
        now,
    )
    .map_err(AmError::BadRequest)?;
    let alerts = &state.ops_alerts;
    if let Some(id) = id {
        let not_found = || AmError::NotFound(format!("silence {id} not found"));
        let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
        if alerts.silence(id).await?.is_none() {
            return Err(not_found());
        }
        row.id = id;
        if !alerts.update_silence(&row).await? {
            row.id = Uuid::new_v4();
            alerts.add_silence(&row).await?;
        }
    } else {
        alerts.add_silence(&row).await?;
    }
    Ok(Json(json!({"silenceID": row.id.to_string()})))
}

/// `GET /silence/{id}`.
async fn get_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GettableSilence>, AmError> {
    let id = silence_id(&id)?;
    match state.ops_alerts.silence(id).await? {
        Some(row) => Ok(Json(am::silences::gettable(&row, Utc::now()))),
        None => Err(AmError::NotFound(format!("silence {id} not found"))),
    }
}

/// `DELETE /silence/{id}`: expires it (it stays listed, `expired`); expiring an
/// expired one changes nothing.
async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AmError> {
    let id = silence_id(&id)?;
    if state.ops_alerts.expire_silence(id).await? {
        Ok(StatusCode::OK)
    } else {
        Err(AmError::NotFound(format!("silence {id} not found")))
    }
}

/// `GET /status`.
async fn get_status(
    State(state): State<AppState>,
) -> Result<Json<am::AlertmanagerStatus>, AmError> {
    let settings = &state.config.alerts;
    let own_address = state.config.bind_address().to_string();
    let ttl = state
        .config
        .auto_shard
        .map_or(std::time::Duration::from_secs(30), |s| s.lease_ttl);
    let mut peers: BTreeMap<String, String> = crate::storage::replicas::live(&state.db, ttl)
        .await?
        .into_iter()
        .map(|replica| (replica.id, String::new()))
        .collect();
    peers.insert(state.replica.clone(), own_address);
    let routing = am::Routing {
        severities_with_channels: settings
            .routes
            .iter()
            .filter(|(_, channels)| !channels.is_empty())
            .map(|(severity, _)| severity.as_str())
            .collect(),
        group_wait: settings.timing.group_wait,
        repeat: settings.timing.repeat,
        resolve_timeout: settings.resolve_timeout,
    };
    let started =
        Utc::now() - chrono::Duration::from_std(state.started_at.elapsed()).unwrap_or_default();
    Ok(Json(am::AlertmanagerStatus {
        cluster: am::status::ClusterStatus {
            name: state.replica.clone(),
            status: "ready",
            peers: peers
                .into_iter()
                .map(|(name, address)| am::status::Peer { name, address })
                .collect(),
        },
        version_info: am::status::VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: option_env!("GIT_REVISION").unwrap_or("unknown").to_owned(),
            branch: "main".to_owned(),
            build_user: "monitoring-service".to_owned(),
            build_date: "unknown".to_owned(),
            go_version: "none (Rust)".to_owned(),
        },
        config: am::status::AlertmanagerConfig {
            original: am::render_config(&routing),
        },
        uptime: started,
    }))
}

/// `GET /receivers`: one per severity route.
async fn get_receivers() -> Json<Vec<am::Receiver>> {
    Json(
        ["CRITICAL", "INFO", "WARNING"]
            .into_iter()
            .map(|name| am::Receiver {
                name: name.to_owned(),
            })
            .collect(),
    )
}
