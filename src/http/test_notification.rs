//! `POST /internal/notify/test`: sends a test message to one channel, or to every
//! channel of a severity's operational-alert route, through the real notifiers (address
//! guard, retries, flood control) and answers each delivery's outcome — the provider
//! check operators run after rotating a token or editing a route.

use crate::config::Config;
use crate::notify::Notifier;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::notify::{Channel, Delivery, OutgoingAlert, parse_channels};
use crate::ops_alerts::Severity;

/// What to test: one channel (as in a strategy), or a severity's route.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// One channel, e.g. `{"type": "telegram", "chat_id": "123"}`.
    #[schema(value_type = Option<Object>)]
    pub channel: Option<Value>,
    /// `INFO`, `WARNING` or `CRITICAL`: every channel of that route.
    pub route: Option<String>,
}

/// Each channel's outcome, in order (kinds only: no address is echoed).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestOutcome {
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<Delivery>,
    /// True when every channel delivered.
    pub ok: bool,
}

/// Sends a test message and answers the outcome.
#[utoipa::path(post, path = "/notify/test", tag = "alerts",
    security(("api_key" = [])),
    request_body(content = TestRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Sent (or not): each delivery's status, attempts and error", body = TestOutcome),
        (status = 400, description = "Malformed body, an invalid channel (named), or not exactly one of channel and route", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No channel configured for that route", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody)))]
pub async fn notify_test(
    State(config): State<Arc<Config>>,
    State(notifier): State<Notifier>,
    body: Bytes,
) -> Result<Json<TestOutcome>, ApiError> {
    let request: TestRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            "expected {\"channel\": {…}} or {\"route\": \"INFO\" | \"WARNING\" | \"CRITICAL\"}",
        )
    })?;
    let channels: Vec<Channel> = match (request.channel, request.route) {
        (Some(channel), None) => {
            parse_channels(&Value::Array(vec![channel]).to_string()).map_err(|e| {
                let detail = e.to_string();
                let detail = detail.strip_prefix("channels[0]: ").unwrap_or(&detail);
                ApiError::bad_request("invalid_channel", format!("channel: {detail}"))
            })?
        }
        (None, Some(route)) => {
            let severity = Severity::parse(&route).ok_or_else(|| {
                ApiError::bad_request("invalid_route", "route: must be INFO, WARNING or CRITICAL")
            })?;
            let channels = config
                .alerts
                .routes
                .get(&severity)
                .cloned()
                .unwrap_or_default();
            if channels.is_empty() {
                return Err(ApiError::not_found(format!(
                    "no channel configured for route {route} (OPS_ALERT_ROUTES)"
                )));
            }
            channels
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give exactly one of channel and route",
            ));
        }
    };
    let key = format!("notify-test-{}", uuid::Uuid::new_v4());
    let text = "monitoring-service: test message. If you can read this, this channel works.";
    let event = json!({"event": "notify_test", "id": key, "message": text});
    let alert = OutgoingAlert {
        dedup_key: &key,
        text,
        event: &event,
        owner: None,
        place: None,
    };
    let mut deliveries = Vec::with_capacity(channels.len());
    for channel in &channels {
        let mut delivery = notifier.deliver(channel, &alert).await;
        delivery.fingerprint = None;
        deliveries.push(delivery);
    }
    let ok = deliveries
        .iter()
        .all(|d| d.status == crate::notify::DeliveryStatus::Delivered);
    tracing::info!(ok, channels = deliveries.len(), "notification test");
    Ok(Json(TestOutcome { deliveries, ok }))
}
