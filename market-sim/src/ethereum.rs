//! An Ethereum JSON-RPC node (<https://ethereum.org/developers/docs/apis/json-rpc/>)
//! that knows the simulated Uniswap v3 pools: `eth_call` of `slot0()`, `token0()`,
//! `token1()` on a pool and `decimals()` on its tokens, single or batched requests,
//! plus `eth_chainId` and `eth_blockNumber`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::faults::Provider;
use crate::market::Market;
use crate::{SimState, admit};

const SLOT0: &str = "0x3850c7bd";
const TOKEN0: &str = "0x0dfe1681";
const TOKEN1: &str = "0xd21220a7";
const DECIMALS: &str = "0x313ce567";

pub fn router() -> Router<Arc<SimState>> {
    Router::new().route("/", post(rpc))
}

async fn rpc(State(state): State<Arc<SimState>>, body: String) -> Response {
    if let Err(response) = admit(&state, Provider::Ethereum, "/", "", 0).await {
        return response;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return reply(json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": -32700, "message": "parse error"}}));
    };
    let now = state.clock.now_ms();
    let market = state.market.read().expect("market lock");
    match request {
        Value::Array(calls) => reply(Value::Array(
            calls.iter().map(|c| answer(&market, c, now)).collect(),
        )),
        call => reply(answer(&market, &call, now)),
    }
}

fn reply(body: Value) -> Response {
    crate::json(StatusCode::OK, body.to_string())
}

fn answer(market: &Market, call: &Value, now: i64) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let result = |r: Value| json!({"jsonrpc": "2.0", "id": id, "result": r});
    let error = |code: i64, message: String| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    match method {
        "eth_chainId" => result(json!("0x1")),
        "eth_blockNumber" => result(json!(format!("{:#x}", now / 12_000))),
        "eth_call" => {
            let tx = call.get("params").and_then(|p| p.get(0));
            let to = tx
                .and_then(|t| t.get("to"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let data = tx
                .and_then(|t| t.get("data").or_else(|| t.get("input")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            match eth_call(market, &to, &data, now) {
                Some(hex) => result(json!(hex)),
                None if data == DECIMALS || market.pools.contains_key(&to) => {
                    error(-32000, "execution reverted".into())
                }
                // Calling an address without code returns empty data.
                None => result(json!("0x")),
            }
        }
        other => error(
            -32601,
            format!("the method {other} does not exist/is not available"),
        ),
    }
}

fn eth_call(market: &Market, to: &str, data: &str, now: i64) -> Option<String> {
    if let Some(pool) = market.pools.get(to) {
        return match data {
            SLOT0 => Some(slot0(pool, now)),
            TOKEN0 => Some(address_word(&pool.token0.address)),
            TOKEN1 => Some(address_word(&pool.token1.address)),
            _ => None,
        };
    }
    if data == DECIMALS {
        let token = market
            .pools
            .values()
            .flat_map(|p| [&p.token0, &p.token1])
            .find(|t| t.address == to)?;
        return Some(format!("0x{:064x}", token.decimals));
    }
    None
}

fn address_word(address: &str) -> String {
    format!("0x{:0>64}", address.trim_start_matches("0x"))
}

/// `slot0()` returns (uint160 sqrtPriceX96, int24 tick, uint16 observationIndex,
/// uint16 observationCardinality, uint16 observationCardinalityNext, uint8 feeProtocol,
/// bool unlocked), each ABI-encoded in a 32-byte word.
fn slot0(pool: &crate::market::Pool, now: i64) -> String {
    let human = pool.path.price_at(now);
    // Raw price: token1 base units per token0 base unit.
    let raw = human * 10f64.powi(i32::from(pool.token1.decimals) - i32::from(pool.token0.decimals));
    let sqrt_price_x96 = (raw.sqrt() * 2f64.powi(96)) as u128;
    let tick = (raw.ln() / 1.0001f64.ln()).floor() as i64;
    let tick_word = if tick < 0 {
        // Two's complement, sign-extended to 256 bits.
        format!("{}{:016x}", "f".repeat(48), tick as u64)
    } else {
        format!("{tick:064x}")
    };
    format!(
        "0x{sqrt_price_x96:064x}{tick_word}{:064x}{:064x}{:064x}{:064x}{:064x}",
        7u32, 722u32, 722u32, 0u32, 1u32
    )
}
