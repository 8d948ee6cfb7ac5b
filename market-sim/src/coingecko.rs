//! CoinGecko's public API, as documented at <https://docs.coingecko.com/reference>:
//! `/api/v3/ping`, `/api/v3/simple/price` (unknown ids are left out of the answer) and
//! `/api/v3/coins/{id}/market_chart/range` (5-minutely points).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::faults::Provider;
use crate::{SimState, admit};

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/v3/ping", get(ping))
        .route("/api/v3/simple/price", get(simple_price))
        .route(
            "/api/v3/coins/{id}/market_chart/range",
            get(market_chart_range),
        )
}

async fn ping(State(state): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    match admit(
        &state,
        Provider::Coingecko,
        "/api/v3/ping",
        &q.unwrap_or_default(),
        0,
    )
    .await
    {
        Ok(_) => crate::json(
            StatusCode::OK,
            json!({"gecko_says": "(V3) To the Moon!"}).to_string(),
        ),
        Err(response) => response,
    }
}

async fn simple_price(
    State(state): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(
        &state,
        Provider::Coingecko,
        "/api/v3/simple/price",
        &q.unwrap_or_default(),
        0,
    )
    .await
    {
        return response;
    }
    let Some(vs) = params.get("vs_currencies") else {
        return crate::json(
            StatusCode::BAD_REQUEST,
            json!({"error": "Missing parameter vs_currencies"}).to_string(),
        );
    };
    let with_time = params
        .get("include_last_updated_at")
        .is_some_and(|v| v == "true");
    let now = state.clock.now_ms();
    let market = state.market.read().expect("market lock");
    let mut out = Map::new();
    for id in params
        .get("ids")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        let Some(path) = market.coingecko.get(id.trim()) else {
            continue;
        };
        let mut prices = Map::new();
        for currency in vs.split(',').filter(|c| c.trim() == "usd") {
            prices.insert(currency.to_owned(), json!(round(path.price_at(now))));
        }
        if with_time {
            prices.insert("last_updated_at".into(), json!(now / 1000));
        }
        out.insert(id.trim().to_owned(), Value::Object(prices));
    }
    crate::json(StatusCode::OK, Value::Object(out).to_string())
}

async fn market_chart_range(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(
        &state,
        Provider::Coingecko,
        "/api/v3/coins/{id}/market_chart/range",
        &q.unwrap_or_default(),
        0,
    )
    .await
    {
        return response;
    }
    let seconds = |name: &str| params.get(name).and_then(|v| v.parse::<f64>().ok());
    let (Some(from), Some(to)) = (seconds("from"), seconds("to")) else {
        return crate::json(
            StatusCode::BAD_REQUEST,
            json!({"error": "Missing parameter from or to"}).to_string(),
        );
    };
    let market = state.market.read().expect("market lock");
    let Some(path) = market.coingecko.get(&id) else {
        return crate::json(
            StatusCode::NOT_FOUND,
            json!({"error": "coin not found"}).to_string(),
        );
    };
    const STEP: i64 = 300_000;
    let now = state.clock.now_ms();
    let (from, to) = ((from * 1000.0) as i64, ((to * 1000.0) as i64).min(now));
    let mut t = (from + STEP - 1).div_euclid(STEP) * STEP;
    let mut prices = Vec::new();
    while t <= to && prices.len() < 10_000 {
        prices.push(json!([t, round(path.price_at(t))]));
        t += STEP;
    }
    crate::json(
        StatusCode::OK,
        json!({"prices": prices, "market_caps": [], "total_volumes": []}).to_string(),
    )
}

/// CoinGecko answers with plain JSON numbers, not strings; a few significant digits.
fn round(price: f64) -> f64 {
    let digits = 8 - price.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits.clamp(0, 12));
    (price * scale).round() / scale
}
