//! The middleware every request passes through: request ids, the request span, metrics
//! by route template, panics turned into JSON 500s, and plain-text error answers from
//! lower layers (body limit, timeout, method not allowed) rewritten as JSON errors.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;

use super::error::ApiError;
use crate::metrics::Metrics;

/// The request id header, set when the client did not send one and echoed back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Route label for requests no route matched: keeps label cardinality bounded.
const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template of a request (`/internal/simulate/{strategy_id}`), never its raw
/// path.
pub fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

/// The span each request's log lines carry.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http_request",
        request_id,
        method = %request.method(),
        route = route_of(request),
    )
}

/// Counts requests and observes latency by method, route template and status.
pub async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let method = method_label(request.method());
    let route = route_of(&request).to_owned();
    let started = Instant::now();
    metrics.http_in_flight.inc();
    let response = next.run(request).await;
    metrics.http_in_flight.dec();
    metrics
        .http_request_duration
        .with_label_values(&[method, &route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[method, &route, response.status().as_str()])
        .inc();
    response
}

/// The method as a metric label: the standard ones by name, any other as `other`, so a
/// client inventing methods cannot add series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The stable error code for a status that a lower layer produced.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// The most of a plain-text error body kept as the JSON message.
const MAX_MESSAGE_BYTES: usize = 512;

/// Rewrites a non-JSON error answer (from axum's extractors or tower-http's layers) as
/// `{"error", "message"}`, keeping its status and headers such as `Allow` and
/// `Retry-After`.
pub async fn json_errors(request: Request, next: Next) -> axum::response::Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        truncate(text, MAX_MESSAGE_BYTES)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let rewritten = ApiError::new(status, code_for(status), message).into_response();
    let (rewritten_parts, body) = rewritten.into_parts();
    for (name, value) in rewritten_parts.headers {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    axum::response::Response::from_parts(parts, body)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// A panicking handler answers a JSON 500 instead of dropping the connection; the panic
/// is logged, its text is not sent.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    tracing::error!(panic = detail, "handler panicked");
    let mut response = ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; it has been logged",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé".to_owned(), 3), "é…");
        assert_eq!(truncate("short".to_owned(), 10), "short");
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "payload_too_large");
        assert_eq!(code_for(StatusCode::BAD_GATEWAY), "internal");
    }

    #[tokio::test]
    async fn a_panic_answers_a_json_500_without_its_text() {
        for panic in [
            Box::new("token=hunter2 leaked") as Box<dyn Any + Send>,
            Box::new(String::from("token=hunter2 leaked")),
            Box::new(42_u8),
        ] {
            let response = panic_response(panic);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "internal");
            assert_eq!(body["message"], "internal error; it has been logged");
            assert!(!body.to_string().contains("hunter2"));
        }
    }
}
