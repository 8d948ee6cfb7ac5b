//! The HTTP interface of DESIGN.md §7: probes and metrics in the open, everything under
//! `/internal` behind the API key. Routes are registered through utoipa's
//! `OpenApiRouter`, so the OpenAPI document and the router cannot drift apart, and
//! tests can iterate every route from it.

pub mod alert_stream;
pub mod alertmanager;
pub mod alerts;
pub mod auth;
pub mod backtest;
pub mod engine_ticks;
pub mod error;
pub mod listener;
pub mod middleware;
pub mod monitors;
pub mod openapi;
pub mod platform_health;
pub mod probes;
pub mod reload;
pub mod run;
pub mod simulate;
mod state;
pub mod status;
pub mod strategy;
pub mod test_notification;
pub mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::auth::{API_KEY_HEADER, ApiKeys, require_api_key};
use self::error::ApiError;
pub use state::AppState;

/// Every route, with its OpenAPI description. `keys` guards `/internal`.
fn api_routes(keys: Arc<ApiKeys>) -> OpenApiRouter<AppState> {
    let internal = OpenApiRouter::new()
        .routes(routes!(status::status))
        .routes(routes!(run::run_batch))
        .routes(routes!(reload::reload_strategies))
        .routes(routes!(simulate::simulate_strategy))
        .routes(routes!(backtest::backtest))
        .routes(routes!(strategy::get_strategy))
        .routes(routes!(alerts::active_alerts))
        .routes(routes!(alert_stream::alert_stream))
        .routes(routes!(alerts::alert_history))
        .routes(routes!(alerts::clear_alert))
        .routes(routes!(alerts::acknowledge_alert))
        .routes(routes!(alerts::list_silences, alerts::add_silence))
        .routes(routes!(alerts::delete_silence))
        .routes(routes!(test_notification::notify_test))
        .routes(routes!(engine_ticks::post_tick))
        .routes(routes!(engine_ticks::engine_history))
        .routes(routes!(engine_ticks::list_engines))
        .routes(routes!(platform_health::health_system))
        .routes(routes!(platform_health::health_metrics))
        .routes(routes!(monitors::list_monitors))
        .routes(routes!(monitors::run_monitor))
        .routes(routes!(monitors::patch_monitor))
        .routes(routes!(workflows::get_workflow))
        .routes(routes!(openapi::openapi_json))
        // An unknown /internal path is refused like a known one, so the key guards the
        // whole namespace and a caller without it learns nothing about what exists.
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn_with_state(keys, require_api_key));
    OpenApiRouter::with_openapi(openapi::base_document())
        .routes(routes!(probes::health))
        .routes(routes!(probes::ready))
        .routes(routes!(probes::metrics))
        .nest("/internal", internal)
}

/// The OpenAPI document of every route.
pub fn openapi_document() -> OpenApi {
    api_routes(Arc::new(ApiKeys::new(&[]))).split_for_parts().1
}

/// The complete application: routes, auth, and the middleware stack.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes(state.api_keys.clone()).split_for_parts();
    // Alertmanager's API is described by Alertmanager's own document, not ours.
    let routes =
        routes.nest(
            "/api/v2",
            alertmanager::routes().fallback(unknown_route).layer(
                axum::middleware::from_fn_with_state(state.api_keys.clone(), require_api_key),
            ),
        );
    let config = &state.config;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            config
                .server
                .cors_allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            HeaderName::from_static(API_KEY_HEADER),
            HeaderName::from_static("last-event-id"),
        ]);
    let request_id = HeaderName::from_static(middleware::REQUEST_ID_HEADER);

    routes
        .fallback(unknown_outer_route)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(middleware::request_span)
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        .on_failure(DefaultOnFailure::new().level(Level::WARN)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(middleware::panic_response))
                .layer(axum::middleware::from_fn_with_state(
                    state.metrics.clone(),
                    middleware::record_metrics,
                ))
                .layer(axum::middleware::from_fn(middleware::json_errors))
                .layer(cors)
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    config.server.http_request_timeout,
                ))
                .layer(RequestBodyLimitLayer::new(
                    config.server.http_body_limit_bytes,
                )),
        )
}

/// A path outside every nest: `/internal` itself and `/internal/` (which the nest does
/// not reach), and the same of `/api/v2`, are refused without a key like every other
/// path under them.
async fn unknown_outer_route(
    State(state): State<AppState>,
    method: Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> ApiError {
    let path = uri.path();
    let internal = ["/internal", "/api/v2"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    let keyed = auth::presented_key(&headers).is_some_and(|key| state.api_keys.verify(key));
    if internal && !keyed {
        return ApiError::unauthorized();
    }
    unknown_route(method, uri).await
}

/// A path no route serves: 404 with the code `unknown_route` (unknown ids of known
/// routes answer `not_found`), so a client can tell "this server does not offer that"
/// from "that thing does not exist".
async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        format!("this server has no route {method} {path}"),
    )
}
