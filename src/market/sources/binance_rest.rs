//! Binance Spot REST: spot prices (all symbols of a batch in one `ticker/price` call,
//! chunked only past [`MAX_SYMBOLS_PER_REQUEST`]) and klines.
//!
//! Wire format: <https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints>.
//! Prices and kline values are decimal strings; a kline is a 12-element array.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::UpstreamError;
use super::upstream::{Upstream, UpstreamRequest};
use crate::market::Interval;

/// The most symbols sent in one `symbols=[...]` request (the URL stays under 8 KiB).
pub const MAX_SYMBOLS_PER_REQUEST: usize = 500;
/// Binance's largest `limit` for klines.
pub const MAX_KLINES: usize = 1000;
/// How long a symbol Binance called invalid is left out of batches.
const INVALID_SYMBOL_MEMORY: Duration = Duration::from_secs(600);
/// Binance's "Invalid symbol." error code.
const INVALID_SYMBOL: i64 = -1121;

/// One `ticker/price` entry.
#[derive(Debug, Deserialize)]
pub struct TickerPrice<'a> {
    #[serde(borrow)]
    pub symbol: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub price: std::borrow::Cow<'a, str>,
}

/// One kline row: the fields the engine uses (open time and OHLCV); the rest of the
/// documented 12 (and any Binance adds later) are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kline {
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl<'de> Deserialize<'de> for Kline {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Row;
        impl<'de> Visitor<'de> for Row {
            type Value = Kline;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a kline array [openTime, open, high, low, close, volume, ...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kline, A::Error> {
                use serde::de::Error;
                let open_time: i64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let mut values = [0.0; 5];
                for (i, value) in values.iter_mut().enumerate() {
                    let text: std::borrow::Cow<'de, str> = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i + 1, &self))?;
                    *value = parse_decimal(&text).map_err(A::Error::custom)?;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                let [open, high, low, close, volume] = values;
                Ok(Kline {
                    open_time,
                    open,
                    high,
                    low,
                    close,
                    volume,
                })
            }
        }
        deserializer.deserialize_seq(Row)
    }
}

/// A Binance decimal string; finite and not negative.
pub fn parse_decimal(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("not a decimal: {}", super::error::truncate(text))),
    }
}

/// Parses a `ticker/price` answer (one object or an array of them).
pub fn parse_prices(body: &[u8]) -> Result<Vec<(String, f64)>, UpstreamError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Answer<'a> {
        #[serde(borrow)]
        Many(Vec<TickerPrice<'a>>),
        #[serde(borrow)]
        One(TickerPrice<'a>),
    }
    let answer: Answer = serde_json::from_slice(body).map_err(UpstreamError::malformed)?;
    let entries = match answer {
        Answer::Many(entries) => entries,
        Answer::One(entry) => vec![entry],
    };
    entries
        .into_iter()
        .map(|e| {
            let price = parse_decimal(&e.price).map_err(UpstreamError::malformed)?;
            if price <= 0.0 {
                return Err(UpstreamError::malformed("price is not positive"));
            }
            Ok((e.symbol.into_owned(), price))
        })
        .collect()
}

/// Parses a `klines` answer.
pub fn parse_klines(body: &[u8]) -> Result<Vec<Kline>, UpstreamError> {
    serde_json::from_slice(body).map_err(UpstreamError::malformed)
}

/// The Binance REST client.
#[derive(Debug)]
pub struct BinanceRest {
    upstream: Upstream,
    /// Symbols Binance called invalid, left out of batches for a while.
    invalid: Mutex<HashMap<Arc<str>, Instant>>,
}

impl BinanceRest {
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            invalid: Mutex::new(HashMap::new()),
        }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// `GET /api/v3/ping` (weight 1): whether Binance answers.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        self.upstream
            .send(&UpstreamRequest::get("/api/v3/ping").weight(1))
            .await
            .map(|_| ())
    }

    /// The spot price of each symbol: one request per [`MAX_SYMBOLS_PER_REQUEST`]
    /// symbols. A batch refused for an invalid symbol is bisected to find it, and that
    /// symbol is left out of later batches for a while.
    pub async fn prices(
        &self,
        symbols: &[Arc<str>],
    ) -> HashMap<Arc<str>, Result<f64, UpstreamError>> {
        let mut out = HashMap::with_capacity(symbols.len());
        let mut wanted = Vec::with_capacity(symbols.len());
        {
            let mut invalid = self.invalid.lock().expect("invalid-symbol lock");
            invalid.retain(|_, at| at.elapsed() < INVALID_SYMBOL_MEMORY);
            for symbol in symbols {
                if invalid.contains_key(symbol) {
                    out.insert(symbol.clone(), Err(UpstreamError::UnknownSymbol));
                } else {
                    wanted.push(symbol.clone());
                }
            }
        }
        let chunks = wanted
            .chunks(MAX_SYMBOLS_PER_REQUEST)
            .map(|c| self.prices_chunk(c.to_vec()));
        for results in futures_util::future::join_all(chunks).await {
            out.extend(results);
        }
        out
    }

    async fn prices_chunk(
        &self,
        chunk: Vec<Arc<str>>,
    ) -> Vec<(Arc<str>, Result<f64, UpstreamError>)> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut queue = vec![chunk];
        while let Some(part) = queue.pop() {
            match self.request_prices(&part).await {
                Ok(prices) => {
                    let by_symbol: HashMap<String, f64> = prices.into_iter().collect();
                    for symbol in part {
                        let price = by_symbol
                            .get(&*symbol)
                            .copied()
                            .ok_or_else(|| UpstreamError::malformed("symbol missing from answer"));
                        out.push((symbol, price));
                    }
                }
                Err(UpstreamError::Status {
                    code: Some(INVALID_SYMBOL),
                    ..
                }) if part.len() > 1 => {
                    let (left, right) = part.split_at(part.len() / 2);
                    queue.push(left.to_vec());
                    queue.push(right.to_vec());
                }
                Err(UpstreamError::Status {
                    code: Some(INVALID_SYMBOL),
                    ..
                }) => {
                    let symbol = part.into_iter().next().expect("one symbol");
                    self.invalid
                        .lock()
                        .expect("invalid-symbol lock")
                        .insert(symbol.clone(), Instant::now());
                    out.push((symbol, Err(UpstreamError::UnknownSymbol)));
                }
                Err(error) => out.extend(part.into_iter().map(|s| (s, Err(error.clone())))),
            }
        }
        out
    }

    async fn request_prices(
        &self,
        symbols: &[Arc<str>],
    ) -> Result<Vec<(String, f64)>, UpstreamError> {
        const ENDPOINT: &str = "/api/v3/ticker/price";
        // Documented weights: 2 for one symbol, 4 for a list.
        let request = match symbols {
            [one] => UpstreamRequest::get(ENDPOINT)
                .query("symbol", one)
                .weight(2),
            many => {
                let list = serde_json::to_string(many).expect("strings serialize");
                UpstreamRequest::get(ENDPOINT)
                    .query("symbols", list)
                    .weight(4)
            }
        };
        let body = self.upstream.send(&request).await?;
        parse_prices(&body).inspect_err(|e| self.upstream.record_error(ENDPOINT, e))
    }

    /// Up to `limit` klines of `symbol` at `interval`, from `start_ms` when given
    /// (else the latest), the forming candle last.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Kline>, UpstreamError> {
        const ENDPOINT: &str = "/api/v3/klines";
        let mut request = UpstreamRequest::get(ENDPOINT)
            .query("symbol", symbol)
            .query("interval", interval.as_str())
            .query("limit", limit.clamp(1, MAX_KLINES))
            .weight(2);
        if let Some(start) = start_ms {
            request = request.query("startTime", start);
        }
        let body = self.upstream.send(&request).await?;
        parse_klines(&body).inspect_err(|e| self.upstream.record_error(ENDPOINT, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of Binance's documentation, byte for byte.
    const TICKER_ONE: &str = include_str!("fixtures/binance_ticker_price_one.json");
    const TICKER_MANY: &str = include_str!("fixtures/binance_ticker_price_many.json");
    const KLINES: &str = include_str!("fixtures/binance_klines.json");
    const ERROR: &str = include_str!("fixtures/binance_error.json");

    #[test]
    fn documented_ticker_examples_parse() {
        assert_eq!(
            parse_prices(TICKER_ONE.as_bytes()).unwrap(),
            vec![("LTCBTC".to_owned(), 4.000_002)]
        );
        assert_eq!(
            parse_prices(TICKER_MANY.as_bytes()).unwrap(),
            vec![
                ("LTCBTC".to_owned(), 4.000_002),
                ("ETHBTC".to_owned(), 0.079_466)
            ]
        );
    }

    #[test]
    fn the_documented_kline_example_parses() {
        let klines = parse_klines(KLINES.as_bytes()).unwrap();
        assert_eq!(
            klines,
            vec![Kline {
                open_time: 1_499_040_000_000,
                open: 0.016_347_9,
                high: 0.8,
                low: 0.015_758,
                close: 0.015_771,
                volume: 148_976.114_278_15,
            }]
        );
    }

    #[test]
    fn the_documented_error_keeps_its_code() {
        let error = super::super::upstream::status_error(
            reqwest::StatusCode::BAD_REQUEST,
            ERROR.as_bytes(),
        );
        assert_eq!(
            error,
            UpstreamError::Status {
                status: 400,
                code: Some(-1121),
                message: "Invalid symbol.".into()
            }
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            "",
            "{",
            "[]]",
            r#"{"symbol":"BTCUSDT","price":12}"#,
            r#"{"symbol":"BTCUSDT","price":"NaN"}"#,
            r#"{"symbol":"BTCUSDT","price":"-1"}"#,
            r#"{"symbol":"BTCUSDT","price":"0"}"#,
            r#"{"symbol":"BTC"#,
        ] {
            assert!(
                matches!(
                    parse_prices(body.as_bytes()),
                    Err(UpstreamError::Malformed(_))
                ),
                "{body}"
            );
        }
        for body in [
            "[[1]]",
            r#"[["x","1","1","1","1","1"]]"#,
            r#"[[1,"1","1","1","1",2]]"#,
            "{}",
        ] {
            assert!(
                matches!(
                    parse_klines(body.as_bytes()),
                    Err(UpstreamError::Malformed(_))
                ),
                "{body}"
            );
        }
    }
}
