//! The OpenAPI document: its fixed parts here, its paths collected from the routes.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{self, OpenApi as OpenApiDocument};
use utoipa::{Modify, OpenApi};

use super::auth::API_KEY_HEADER;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "monitoring-service",
        description = "Watches trading strategies and alerts their owners. `/internal/*` needs the X-MONITORING-KEY header."
    ),
    modifiers(&ApiKeySecurity),
    tags(
        (name = "probes", description = "Liveness, readiness and metrics"),
        (name = "internal", description = "Operator and synapse-api routes (API key)"),
        (name = "alerts", description = "Operational alerts and silences (API key)"),
        (name = "engine", description = "Trading-engine ticks, history and overview (API key)"),
        (name = "health", description = "Platform health (API key)"),
        (name = "monitors", description = "The periodic jobs (API key)"),
        (name = "analysis", description = "Candle-close analysis of monitored signals (API key)")
    )
)]
struct BaseDocument;

struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, document: &mut openapi::OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(API_KEY_HEADER))),
        );
    }
}

/// The fixed parts of the document, before the routes add their paths.
pub fn base_document() -> OpenApiDocument {
    let mut document = BaseDocument::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}

static DOCUMENT: LazyLock<OpenApiDocument> = LazyLock::new(super::openapi_document);

/// The OpenAPI document of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "internal",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit; `Retry-After` says when to retry", body = crate::http::error::ErrorBody)))]
pub async fn openapi_json() -> Json<OpenApiDocument> {
    Json(DOCUMENT.clone())
}
