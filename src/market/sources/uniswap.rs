//! Uniswap v3 pool prices read over Ethereum JSON-RPC: `eth_call` of the pool's
//! `slot0()` gives `sqrtPriceX96`; the price of token0 in token1 is
//! `(sqrtPriceX96 / 2^96)^2 * 10^(decimals0 - decimals1)`. The token decimals are read
//! once per pool (`token0()`, `token1()`, then `decimals()`), then every batch costs
//! one batched JSON-RPC request for all its pools.
//!
//! Wire format: <https://ethereum.org/developers/docs/apis/json-rpc/#eth_call>,
//! ABI-encoded 32-byte words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};

use super::UpstreamError;
use super::upstream::{Upstream, UpstreamRequest};

const SLOT0: &str = "0x3850c7bd";
const TOKEN0: &str = "0x0dfe1681";
const TOKEN1: &str = "0xd21220a7";
const DECIMALS: &str = "0x313ce567";

/// One JSON-RPC answer.
#[derive(Debug, Deserialize)]
pub struct RpcAnswer {
    pub id: Option<Value>,
    pub result: Option<String>,
    pub error: Option<RpcError>,
}

/// A JSON-RPC error object.
#[derive(Debug, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// Parses a batched JSON-RPC answer into results by numeric id.
pub fn parse_batch(
    body: &[u8],
) -> Result<HashMap<u64, Result<String, UpstreamError>>, UpstreamError> {
    let answers: Vec<RpcAnswer> = serde_json::from_slice(body).map_err(UpstreamError::malformed)?;
    let mut out = HashMap::with_capacity(answers.len());
    for answer in answers {
        let Some(id) = answer.id.as_ref().and_then(Value::as_u64) else {
            continue;
        };
        let result = match (answer.result, answer.error) {
            (Some(hex), None) => Ok(hex),
            (_, Some(error)) => Err(UpstreamError::Status {
                status: 200,
                code: Some(error.code),
                message: super::error::truncate(&error.message),
            }),
            (None, None) => Err(UpstreamError::malformed("neither result nor error")),
        };
        out.insert(id, result);
    }
    Ok(out)
}

/// The 32-byte words of an ABI-encoded result.
fn words(hex: &str) -> Result<Vec<&str>, UpstreamError> {
    let digits = hex
        .strip_prefix("0x")
        .ok_or_else(|| UpstreamError::malformed("result is not 0x-prefixed"))?;
    if digits.is_empty() {
        // Empty data: the address has no contract.
        return Err(UpstreamError::UnknownSymbol);
    }
    if digits.len() % 64 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(UpstreamError::malformed(
            "result is not whole 32-byte words",
        ));
    }
    Ok((0..digits.len() / 64)
        .map(|i| &digits[i * 64..(i + 1) * 64])
        .collect())
}

/// An unsigned 256-bit word as f64 (sqrtPriceX96 is 160 bits: beyond u128).
fn word_to_f64(word: &str) -> f64 {
    word.bytes().fold(0.0, |acc, b| {
        acc * 16.0 + f64::from((b as char).to_digit(16).unwrap_or(0))
    })
}

/// The price of token0 in token1 from a `slot0()` result and the tokens' decimals.
pub fn price_from_slot0(hex: &str, decimals0: u8, decimals1: u8) -> Result<f64, UpstreamError> {
    let words = words(hex)?;
    if words.len() < 7 {
        return Err(UpstreamError::malformed("slot0 has fewer than 7 words"));
    }
    let sqrt_price = word_to_f64(words[0]) / 2f64.powi(96);
    let price = sqrt_price * sqrt_price * 10f64.powi(i32::from(decimals0) - i32::from(decimals1));
    if price.is_finite() && price > 0.0 {
        Ok(price)
    } else {
        Err(UpstreamError::malformed("slot0 price is zero"))
    }
}

fn address_from_word(hex: &str) -> Result<String, UpstreamError> {
    let words = words(hex)?;
    Ok(format!("0x{}", &words[0][24..]))
}

fn decimals_from_word(hex: &str) -> Result<u8, UpstreamError> {
    let words = words(hex)?;
    let value = word_to_f64(words[0]);
    if (0.0..=77.0).contains(&value) {
        Ok(value as u8)
    } else {
        Err(UpstreamError::malformed("decimals out of range"))
    }
}

/// The Uniswap v3 client.
#[derive(Debug)]
pub struct Uniswap {
    upstream: Upstream,
    /// (decimals of token0, decimals of token1) per pool, read once.
    decimals: Mutex<HashMap<Arc<str>, (u8, u8)>>,
}

impl Uniswap {
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            decimals: Mutex::new(HashMap::new()),
        }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    async fn calls(
        &self,
        calls: &[(String, &str)],
    ) -> Result<HashMap<u64, Result<String, UpstreamError>>, UpstreamError> {
        const ENDPOINT: &str = "eth_call";
        let batch: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (to, data))| {
                json!({"jsonrpc": "2.0", "id": i, "method": "eth_call",
                       "params": [{"to": to, "data": data}, "latest"]})
            })
            .collect();
        let mut request = UpstreamRequest::get(ENDPOINT);
        request.path = String::new();
        request.body = Some(Value::Array(batch));
        let body = self.upstream.send(&request).await?;
        parse_batch(&body).inspect_err(|e| self.upstream.record_error(ENDPOINT, e))
    }

    /// Reads and remembers the token decimals of pools not seen before.
    async fn learn_decimals(&self, pools: &[Arc<str>]) -> Result<(), UpstreamError> {
        let unknown: Vec<Arc<str>> = {
            let known = self.decimals.lock().expect("decimals lock");
            pools
                .iter()
                .filter(|p| !known.contains_key(*p))
                .cloned()
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let token_calls: Vec<(String, &str)> = unknown
            .iter()
            .flat_map(|p| [(p.to_string(), TOKEN0), (p.to_string(), TOKEN1)])
            .collect();
        let tokens = self.calls(&token_calls).await?;
        let mut addresses = Vec::new();
        for (i, _) in unknown.iter().enumerate() {
            let pair = [2 * i as u64, 2 * i as u64 + 1].map(|id| match tokens.get(&id) {
                Some(Ok(hex)) => address_from_word(hex).ok(),
                _ => None,
            });
            addresses.push(pair);
        }
        let decimal_calls: Vec<(String, &str)> = addresses
            .iter()
            .flat_map(|pair| pair.iter().flatten().map(|a| (a.clone(), DECIMALS)))
            .collect();
        if decimal_calls.is_empty() {
            return Ok(());
        }
        let answers = self.calls(&decimal_calls).await?;
        let by_token: HashMap<&str, u8> = decimal_calls
            .iter()
            .enumerate()
            .filter_map(|(i, (token, _))| match answers.get(&(i as u64)) {
                Some(Ok(hex)) => decimals_from_word(hex).ok().map(|d| (token.as_str(), d)),
                _ => None,
            })
            .collect();
        let mut known = self.decimals.lock().expect("decimals lock");
        for (pool, pair) in unknown.iter().zip(&addresses) {
            if let [Some(a), Some(b)] = pair
                && let (Some(&d0), Some(&d1)) = (by_token.get(a.as_str()), by_token.get(b.as_str()))
            {
                known.insert(pool.clone(), (d0, d1));
            }
        }
        Ok(())
    }

    /// The price of token0 in token1 of each pool: one batched `eth_call` request
    /// (plus two the first time a pool is seen).
    pub async fn prices(
        &self,
        pools: &[Arc<str>],
    ) -> HashMap<Arc<str>, Result<f64, UpstreamError>> {
        let fail_all =
            |e: UpstreamError| pools.iter().map(|p| (p.clone(), Err(e.clone()))).collect();
        if let Err(error) = self.learn_decimals(pools).await {
            return fail_all(error);
        }
        let known = self.decimals.lock().expect("decimals lock").clone();
        let priced: Vec<&Arc<str>> = pools.iter().filter(|p| known.contains_key(*p)).collect();
        let mut out: HashMap<Arc<str>, Result<f64, UpstreamError>> = pools
            .iter()
            .filter(|p| !known.contains_key(*p))
            .map(|p| (p.clone(), Err(UpstreamError::UnknownSymbol)))
            .collect();
        if priced.is_empty() {
            return out;
        }
        let calls: Vec<(String, &str)> = priced.iter().map(|p| (p.to_string(), SLOT0)).collect();
        match self.calls(&calls).await {
            Ok(answers) => {
                for (i, pool) in priced.into_iter().enumerate() {
                    let (d0, d1) = known[pool];
                    let price = match answers.get(&(i as u64)) {
                        Some(Ok(hex)) => price_from_slot0(hex, d0, d1),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err(UpstreamError::malformed("answer missing from batch")),
                    };
                    out.insert(pool.clone(), price);
                }
            }
            Err(error) => out.extend(priced.into_iter().map(|p| (p.clone(), Err(error.clone())))),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot0_of_the_usdc_weth_pool_gives_the_usdc_price_in_weth() {
        // A slot0() answer of the USDC/WETH 0.05% pool as encoded on chain, with the
        // sqrtPriceX96 of ETH at about 3,382 USD.
        let hex = concat!(
            "0x",
            "000000000000000000000000000000000000432a6ad1a8b9a1b1b0da6a5d0b12",
            "000000000000000000000000000000000000000000000000000000000002f5a5",
            "0000000000000000000000000000000000000000000000000000000000000007",
            "00000000000000000000000000000000000000000000000000000000000002d2",
            "00000000000000000000000000000000000000000000000000000000000002d2",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000001"
        );
        let price = price_from_slot0(hex, 6, 18).unwrap();
        assert!(
            (1.0 / price - 3_382.4).abs() < 0.01,
            "1/price = {}",
            1.0 / price
        );
    }

    #[test]
    fn the_documented_batch_shape_parses_by_id() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"result":"0x"},{"jsonrpc":"2.0","id":0,"error":{"code":-32000,"message":"execution reverted"}}]"#;
        let answers = parse_batch(body).unwrap();
        assert_eq!(answers[&1], Ok("0x".to_owned()));
        assert!(matches!(
            answers[&0],
            Err(UpstreamError::Status {
                code: Some(-32000),
                ..
            })
        ));
        assert_eq!(
            price_from_slot0("0x", 6, 18),
            Err(UpstreamError::UnknownSymbol)
        );
        assert!(matches!(
            price_from_slot0("0x12", 6, 18),
            Err(UpstreamError::Malformed(_))
        ));
    }
}
