//! Run-time control under `/__sim/` (on every listener): the clock, scripted paths,
//! faults, WebSocket drops and the request log.
//!
//! ```text
//! GET  /__sim/clock                      {"now_ms", "anchor_sim_ms", "anchor_real_ms", "speed"}
//! POST /__sim/clock   {"now_ms"?, "speed"?}
//! POST /__sim/script  {"paths": [{"source", "symbol", "start_ms", "step_ms", "points"}]}
//! GET  /__sim/faults  | POST /__sim/faults {fault} | DELETE /__sim/faults
//! POST /__sim/websockets/drop {"reject_ms"?}  | POST /__sim/websockets/shutdown
//! GET  /__sim/requests[?log=true]        | DELETE /__sim/requests
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::SimState;
use crate::faults::Fault;
use crate::paths::Script;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/clock", get(clock).post(set_clock))
        .route("/__sim/script", post(script))
        .route(
            "/__sim/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/__sim/websockets/drop", post(drop_websockets))
        .route("/__sim/websockets/shutdown", post(shutdown_websockets))
        .route("/__sim/requests", get(requests).delete(clear_requests))
}

fn ok(body: serde_json::Value) -> Response {
    crate::json(StatusCode::OK, body.to_string())
}

async fn clock(State(state): State<Arc<SimState>>) -> Response {
    let anchor = state.clock.anchor();
    ok(
        json!({"now_ms": state.clock.now_ms(), "anchor_sim_ms": anchor.anchor_sim_ms,
              "anchor_real_ms": anchor.anchor_real_ms, "speed": anchor.speed}),
    )
}

#[derive(Deserialize)]
struct ClockChange {
    now_ms: Option<i64>,
    speed: Option<f64>,
}

async fn set_clock(
    State(state): State<Arc<SimState>>,
    Json(change): Json<ClockChange>,
) -> Response {
    if let Some(speed) = change.speed {
        state.clock.set_speed(speed.max(0.0));
    }
    if let Some(now) = change.now_ms {
        state.clock.set(now);
    }
    clock(State(state)).await
}

async fn script(State(state): State<Arc<SimState>>, Json(script): Json<Script>) -> Response {
    let result = state.market.write().expect("market lock").apply(&script);
    match result {
        Ok(()) => ok(json!({"applied": script.paths.len()})),
        Err(message) => crate::json(
            StatusCode::BAD_REQUEST,
            json!({"error": message}).to_string(),
        ),
    }
}

async fn faults(State(state): State<Arc<SimState>>) -> Response {
    ok(json!(state.faults.list()))
}

async fn add_fault(State(state): State<Arc<SimState>>, Json(fault): Json<Fault>) -> Response {
    state.faults.push(fault);
    ok(json!(state.faults.list()))
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> Response {
    state.faults.clear();
    ok(json!([]))
}

#[derive(Deserialize, Default)]
struct Drop {
    #[serde(default)]
    reject_ms: u64,
}

async fn drop_websockets(State(state): State<Arc<SimState>>, body: Option<Json<Drop>>) -> Response {
    let reject = body.map(|Json(d)| d.reject_ms).unwrap_or_default();
    state.drop_websockets(Duration::from_millis(reject));
    ok(json!({"dropped": true}))
}

async fn shutdown_websockets(State(state): State<Arc<SimState>>) -> Response {
    state.shutdown_websockets();
    ok(json!({"shutdown": true}))
}

async fn requests(
    State(state): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if params.get("log").is_some_and(|v| v == "true") {
        ok(json!(state.requests.records()))
    } else {
        ok(json!(state.requests.counts()))
    }
}

async fn clear_requests(State(state): State<Arc<SimState>>) -> Response {
    state.requests.clear();
    ok(json!({}))
}
