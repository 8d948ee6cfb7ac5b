//! CoinGecko: USD prices of coin ids in one `simple/price` call per
//! [`MAX_IDS_PER_REQUEST`] ids, and a past price from `market_chart/range`.
//!
//! Wire format: <https://docs.coingecko.com/reference/simple-price> (prices are JSON
//! numbers; unknown ids are simply absent) and
//! <https://docs.coingecko.com/reference/coins-id-market-chart-range>.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::UpstreamError;
use super::upstream::{Upstream, UpstreamRequest};

/// Ids per `simple/price` request (keeps the URL short).
pub const MAX_IDS_PER_REQUEST: usize = 250;

/// Parses a `simple/price` answer into the USD price of each id it contains.
pub fn parse_simple_price(body: &[u8]) -> Result<HashMap<String, f64>, UpstreamError> {
    #[derive(Deserialize)]
    struct Prices {
        usd: Option<serde_json::Value>,
    }
    let answer: HashMap<String, Prices> =
        serde_json::from_slice(body).map_err(UpstreamError::malformed)?;
    let mut out = HashMap::with_capacity(answer.len());
    for (id, prices) in answer {
        match prices.usd.as_ref().and_then(serde_json::Value::as_f64) {
            Some(price) if price.is_finite() && price > 0.0 => {
                out.insert(id, price);
            }
            Some(_) => return Err(UpstreamError::malformed("usd price is not positive")),
            // A coin without a USD price is as good as unknown.
            None => {}
        }
    }
    Ok(out)
}

/// Parses a `market_chart/range` answer into (time ms, price) points.
pub fn parse_market_chart(body: &[u8]) -> Result<Vec<(i64, f64)>, UpstreamError> {
    #[derive(Deserialize)]
    struct Chart {
        prices: Vec<(f64, f64)>,
    }
    let chart: Chart = serde_json::from_slice(body).map_err(UpstreamError::malformed)?;
    Ok(chart
        .prices
        .into_iter()
        .filter(|(t, p)| t.is_finite() && p.is_finite() && *p > 0.0)
        .map(|(t, p)| (t as i64, p))
        .collect())
}

/// The CoinGecko client.
#[derive(Debug)]
pub struct CoinGecko {
    upstream: Upstream,
}

impl CoinGecko {
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The USD price of each id.
    pub async fn prices(&self, ids: &[Arc<str>]) -> HashMap<Arc<str>, Result<f64, UpstreamError>> {
        const ENDPOINT: &str = "/api/v3/simple/price";
        let chunks = ids.chunks(MAX_IDS_PER_REQUEST).map(|chunk| async move {
            let joined = chunk.iter().map(|s| &**s).collect::<Vec<_>>().join(",");
            let request = UpstreamRequest::get(ENDPOINT)
                .query("ids", joined)
                .query("vs_currencies", "usd")
                .query("include_last_updated_at", "true");
            let answer = match self.upstream.send(&request).await {
                Ok(body) => parse_simple_price(&body)
                    .inspect_err(|e| self.upstream.record_error(ENDPOINT, e)),
                Err(error) => Err(error),
            };
            chunk
                .iter()
                .map(|id| {
                    let price = match &answer {
                        Ok(prices) => prices
                            .get(&**id)
                            .copied()
                            .ok_or(UpstreamError::UnknownSymbol),
                        Err(error) => Err(error.clone()),
                    };
                    (id.clone(), price)
                })
                .collect::<Vec<_>>()
        });
        futures_util::future::join_all(chunks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The price of `id` at `at_ms`: the chart point at or before it within ten
    /// minutes (CoinGecko's charts are 5-minutely for short ranges).
    pub async fn price_at(&self, id: &str, at_ms: i64) -> Result<f64, UpstreamError> {
        const ENDPOINT: &str = "/api/v3/coins/{id}/market_chart/range";
        const SLACK_MS: i64 = 600_000;
        let mut request = UpstreamRequest::get(ENDPOINT)
            .query("vs_currency", "usd")
            .query("from", (at_ms - SLACK_MS) / 1000)
            .query("to", (at_ms + SLACK_MS) / 1000);
        request.path = format!("/api/v3/coins/{id}/market_chart/range");
        let body = self.upstream.send(&request).await?;
        let points =
            parse_market_chart(&body).inspect_err(|e| self.upstream.record_error(ENDPOINT, e))?;
        points
            .iter()
            .rev()
            .find(|(t, _)| *t <= at_ms)
            .or_else(|| points.first())
            .map(|(_, p)| *p)
            .ok_or(UpstreamError::UnknownSymbol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples_parse() {
        let prices =
            parse_simple_price(include_bytes!("fixtures/coingecko_simple_price.json")).unwrap();
        assert_eq!(
            prices,
            HashMap::from([("bitcoin".to_owned(), 67_187.335_8)])
        );
        let chart =
            parse_market_chart(include_bytes!("fixtures/coingecko_market_chart_range.json"))
                .unwrap();
        assert_eq!(chart[0], (1_704_067_241_331, 42_261.040_617_566_9));
        assert_eq!(chart.len(), 3);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for body in ["", "[]", r#"{"bitcoin":{"usd":-1}}"#, r#"{"bitcoin":3}"#] {
            assert!(
                matches!(
                    parse_simple_price(body.as_bytes()),
                    Err(UpstreamError::Malformed(_))
                ),
                "{body}"
            );
        }
        // An id CoinGecko does not price in USD is absent, not an error.
        assert!(
            parse_simple_price(br#"{"bitcoin":{"eur":1}}"#)
                .unwrap()
                .is_empty()
        );
    }
}
