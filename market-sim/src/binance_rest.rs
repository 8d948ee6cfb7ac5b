//! Binance Spot REST, as documented at
//! <https://developers.binance.com/docs/binance-spot-api-docs/rest-api>: prices as
//! strings, klines as 12-field arrays with the forming candle last, errors as
//! `{"code": -1121, "msg": "Invalid symbol."}`, and the used weight in
//! `X-MBX-USED-WEIGHT-1M`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::faults::Provider;
use crate::{SimState, admit, candle_open, interval_ms, with_weight};

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/v3/ping", get(ping))
        .route("/api/v3/time", get(time))
        .route("/api/v3/ticker/price", get(ticker_price))
        .route("/api/v3/klines", get(klines))
        .route("/api/v3/exchangeInfo", get(exchange_info))
}

type Params = Query<HashMap<String, String>>;

fn ok(body: Value, used: u32) -> Response {
    with_weight(
        crate::json(StatusCode::OK, body.to_string()),
        Provider::Binance,
        used,
    )
}

fn error(status: StatusCode, code: i64, msg: &str, used: u32) -> Response {
    with_weight(
        crate::json(status, json!({"code": code, "msg": msg}).to_string()),
        Provider::Binance,
        used,
    )
}

fn price_text(price: f64) -> String {
    format!("{price:.8}")
}

async fn ping(State(state): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    match admit(
        &state,
        Provider::Binance,
        "/api/v3/ping",
        &q.unwrap_or_default(),
        1,
    )
    .await
    {
        Ok(a) => ok(json!({}), a.used_weight),
        Err(response) => response,
    }
}

async fn time(State(state): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    match admit(
        &state,
        Provider::Binance,
        "/api/v3/time",
        &q.unwrap_or_default(),
        1,
    )
    .await
    {
        Ok(a) => ok(json!({"serverTime": state.clock.now_ms()}), a.used_weight),
        Err(response) => response,
    }
}

/// `symbol=` (weight 2) or `symbols=["A","B"]` / none (weight 4).
async fn ticker_price(
    State(state): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
    Query(params): Params,
) -> Response {
    let weight = if params.contains_key("symbol") { 2 } else { 4 };
    let admitted = match admit(
        &state,
        Provider::Binance,
        "/api/v3/ticker/price",
        &q.unwrap_or_default(),
        weight,
    )
    .await
    {
        Ok(a) => a,
        Err(response) => return response,
    };
    let used = admitted.used_weight;
    let now = state.clock.now_ms();
    let market = state.market.read().expect("market lock");
    let quote = |symbol: &str| {
        market
            .binance
            .get(symbol)
            .map(|path| json!({"symbol": symbol, "price": price_text(path.price_at(now))}))
    };
    match (params.get("symbol"), params.get("symbols")) {
        (Some(_), Some(_)) => error(
            StatusCode::BAD_REQUEST,
            -1128,
            "Combination of optional parameters invalid.",
            used,
        ),
        (Some(symbol), None) => match quote(symbol) {
            Some(body) => ok(body, used),
            None => error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.", used),
        },
        (None, Some(list)) => {
            let Ok(symbols) = serde_json::from_str::<Vec<String>>(list) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.",
                    used,
                );
            };
            let mut out = Vec::with_capacity(symbols.len());
            for symbol in &symbols {
                match quote(symbol) {
                    Some(body) => out.push(body),
                    None => {
                        return error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.", used);
                    }
                }
            }
            ok(Value::Array(out), used)
        }
        (None, None) => ok(
            Value::Array(market.binance.keys().filter_map(|s| quote(s)).collect()),
            used,
        ),
    }
}

/// Klines: `symbol`, `interval`, `limit` (default 500, at most 1000), `startTime`,
/// `endTime`; the forming candle is last.
async fn klines(
    State(state): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
    Query(params): Params,
) -> Response {
    let used = match admit(
        &state,
        Provider::Binance,
        "/api/v3/klines",
        &q.unwrap_or_default(),
        2,
    )
    .await
    {
        Ok(a) => a.used_weight,
        Err(response) => return response,
    };
    let bad = |code, msg: &str| error(StatusCode::BAD_REQUEST, code, msg, used);
    let Some(symbol) = params.get("symbol") else {
        return bad(
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        );
    };
    let Some(interval) = params.get("interval") else {
        return bad(
            -1102,
            "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        );
    };
    let Some(step) = interval_ms(interval) else {
        return bad(-1120, "Invalid interval.");
    };
    let number = |name: &str| params.get(name).map(|v| v.parse::<i64>());
    let limit = match number("limit") {
        None => 500,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return bad(-1130, "Data sent for parameter 'limit' is not valid."),
    };
    let (start, end) = match (number("startTime"), number("endTime")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            return bad(-1100, "Illegal characters found in a parameter.");
        }
        (s, e) => (s.map(Result::unwrap), e.map(Result::unwrap)),
    };
    let now = state.clock.now_ms();
    let market = state.market.read().expect("market lock");
    let Some(path) = market.binance.get(symbol) else {
        return bad(-1121, "Invalid symbol.");
    };
    let newest = candle_open(end.unwrap_or(now).min(now), step);
    let first = match start {
        Some(start) => {
            candle_open(start, step)
                + if candle_open(start, step) < start {
                    step
                } else {
                    0
                }
        }
        None => newest - (limit - 1) * step,
    };
    let mut rows = Vec::new();
    let mut open = first;
    while open <= newest && (rows.len() as i64) < limit {
        if market.in_gap(symbol, open) {
            open += step;
            continue;
        }
        let c = path.candle(open, step, now);
        rows.push(json!([
            c.open_time,
            price_text(c.open),
            price_text(c.high),
            price_text(c.low),
            price_text(c.close),
            format!("{:.8}", c.volume),
            c.open_time + step - 1,
            format!("{:.8}", c.volume * c.close),
            c.trades,
            format!("{:.8}", c.volume / 2.0),
            format!("{:.8}", c.volume * c.close / 2.0),
            "0"
        ]));
        open += step;
    }
    ok(Value::Array(rows), used)
}

async fn exchange_info(State(state): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    let used = match admit(
        &state,
        Provider::Binance,
        "/api/v3/exchangeInfo",
        &q.unwrap_or_default(),
        20,
    )
    .await
    {
        Ok(a) => a.used_weight,
        Err(response) => return response,
    };
    let market = state.market.read().expect("market lock");
    let symbols: Vec<Value> = market
        .binance
        .keys()
        .map(|symbol| {
            let (base, quote) = split_symbol(symbol);
            json!({
                "symbol": symbol, "status": "TRADING", "baseAsset": base,
                "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
                "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": true, "ocoAllowed": true, "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false, "filters": [], "permissions": [],
                "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
                "allowedSelfTradePreventionModes": ["NONE"]
            })
        })
        .collect();
    ok(
        json!({
            "timezone": "UTC",
            "serverTime": state.clock.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": crate::BINANCE_WEIGHT_LIMIT},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}
            ],
            "exchangeFilters": [],
            "symbols": symbols
        }),
        used,
    )
}

fn split_symbol(symbol: &str) -> (&str, &str) {
    for quote in ["USDT", "USDC", "BTC", "ETH", "BNB"] {
        if let Some(base) = symbol.strip_suffix(quote)
            && !base.is_empty()
        {
            return (base, quote);
        }
    }
    (symbol, "")
}
