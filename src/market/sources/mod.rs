//! The market-data sources: one client per provider (Binance REST and WebSocket,
//! CoinGecko, Uniswap over Ethereum JSON-RPC), each on its configured base URL, and
//! [`Sources`], which fetches a batch of spot prices from the right client and falls
//! back from Binance to CoinGecko when Binance fails.

pub mod binance_rest;
pub mod binance_ws;
pub mod coingecko;
mod error;
pub mod host_gate;
mod source_health;
pub mod uniswap;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;

pub use binance_rest::{BinanceRest, Kline};
pub use coingecko::CoinGecko;
pub use error::UpstreamError;
pub use source_health::{SourceHealth, SourceHealthRecord};
pub use uniswap::Uniswap;
pub use upstream::{Upstream, UpstreamSettings};

use super::{Quote, Source};
use crate::metrics::MarketMetrics;

/// Where each source lives and how to call it.
#[derive(Debug, Clone)]
pub struct SourcesConfig {
    pub binance_base_url: String,
    pub coingecko_base_url: String,
    /// Unset: Uniswap conditions are `unknown` with `not_configured`. A secret: the
    /// URL carries the provider key.
    pub eth_rpc_url: Option<secrecy::SecretString>,
    /// Our share of Binance's 6,000 weight per minute.
    pub binance_weight_budget: u32,
    /// Binance symbol → CoinGecko id, for the fallback.
    pub fallback_coingecko_ids: HashMap<String, String>,
    pub upstream: UpstreamSettings,
}

/// The per-symbol answer of a price batch.
pub type PriceResults = HashMap<Arc<str>, Result<Quote, UpstreamError>>;

/// Every market-data client, built once.
#[derive(Debug)]
pub struct Sources {
    pub binance: BinanceRest,
    pub coingecko: CoinGecko,
    pub uniswap: Option<Uniswap>,
    fallback: HashMap<Arc<str>, Arc<str>>,
    metrics: Arc<MarketMetrics>,
}

impl Sources {
    pub fn new(config: &SourcesConfig, metrics: Arc<MarketMetrics>) -> Self {
        let http = Upstream::client(config.upstream.timeout);
        let upstream = |name, url: &str, weight| {
            Upstream::new(
                name,
                url,
                http.clone(),
                weight,
                config.upstream.clone(),
                metrics.clone(),
            )
        };
        Self {
            binance: BinanceRest::new(upstream(
                "binance",
                &config.binance_base_url,
                Some(host_gate::WeightBudget::new(config.binance_weight_budget)),
            )),
            coingecko: CoinGecko::new(upstream("coingecko", &config.coingecko_base_url, None)),
            uniswap: config.eth_rpc_url.as_ref().map(|url| {
                Uniswap::new(upstream(
                    "uniswap",
                    secrecy::ExposeSecret::expose_secret(url),
                    None,
                ))
            }),
            fallback: config
                .fallback_coingecko_ids
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
                .collect(),
            metrics,
        }
    }

    /// Each configured source's health, by name.
    pub fn health(&self) -> std::collections::BTreeMap<&'static str, SourceHealthRecord> {
        let mut upstreams = vec![self.binance.upstream(), self.coingecko.upstream()];
        upstreams.extend(self.uniswap.as_ref().map(Uniswap::upstream));
        upstreams
            .into_iter()
            .map(|u| (u.source(), u.health()))
            .collect()
    }

    /// The spot price of each symbol of `source`, stamped `at_ms`. Binance symbols
    /// whose request failed are asked of CoinGecko when the fallback map names them;
    /// the quote then says CoinGecko answered.
    pub async fn prices(&self, source: Source, symbols: &[Arc<str>], at_ms: i64) -> PriceResults {
        let quote = |price: f64, answered_by| Quote {
            price,
            answered_by,
            at_ms,
        };
        let raw = match source {
            Source::Binance => self.binance.prices(symbols).await,
            Source::Coingecko => self.coingecko.prices(symbols).await,
            Source::Uniswap => match &self.uniswap {
                Some(uniswap) => uniswap.prices(symbols).await,
                None => symbols
                    .iter()
                    .map(|s| (s.clone(), Err(UpstreamError::NotConfigured)))
                    .collect(),
            },
        };
        let mut out: PriceResults = raw
            .into_iter()
            .map(|(symbol, result)| (symbol, result.map(|p| quote(p, source))))
            .collect();
        if source != Source::Binance {
            return out;
        }
        let fallbacks: Vec<(Arc<str>, Arc<str>)> = out
            .iter()
            .filter(|(_, r)| r.as_ref().is_err_and(UpstreamError::source_failed))
            .filter_map(|(symbol, _)| Some((symbol.clone(), self.fallback.get(symbol)?.clone())))
            .collect();
        if fallbacks.is_empty() {
            return out;
        }
        let ids: Vec<Arc<str>> = fallbacks.iter().map(|(_, id)| id.clone()).collect();
        let answers = self.coingecko.prices(&ids).await;
        let mut answered = 0;
        for (symbol, id) in fallbacks {
            if let Some(Ok(price)) = answers.get(&id) {
                answered += 1;
                out.insert(symbol, Ok(quote(*price, Source::Coingecko)));
            }
        }
        if answered > 0 {
            self.metrics
                .fallbacks
                .with_label_values(&["binance", "coingecko"])
                .inc_by(answered);
            // One line per batch, not per symbol: a Binance outage touches them all.
            tracing::info!(symbols = answered, "binance failed; prices from coingecko");
        }
        out
    }
}
