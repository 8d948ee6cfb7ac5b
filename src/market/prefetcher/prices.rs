//! Spot prices and past prices on the ladder. Spot prices of one source go out in one
//! batched request and live `price_ttl`; past prices (CoinGecko's history, read at
//! minute resolution) live a minute. Binance's past prices are read from candles
//! instead ([`super::series`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::codec;
use super::super::shared_cache::Fetched;
use super::super::sources::UpstreamError;
use super::super::{PriceKey, Source};
use super::ladder::cache_key;
use super::{PastPriceKey, PrefetchCore, Prefetcher, PriceResult};

impl Prefetcher {
    /// Spot prices: one lane per source, each lane's misses in one batched request.
    pub(super) async fn prices(
        &self,
        keys: &BTreeSet<PriceKey>,
        now: i64,
    ) -> HashMap<PriceKey, PriceResult> {
        let mut by_source: BTreeMap<Source, Vec<PriceKey>> = BTreeMap::new();
        for key in keys {
            by_source.entry(key.source).or_default().push(key.clone());
        }
        let inner = &self.inner;
        let lanes = by_source.into_iter().map(|(source, keys)| {
            let leader = inner.clone();
            inner.l1_or_flight(
                "price",
                keys,
                |key| inner.prices.get(key, now),
                &inner.price_flights,
                move |keys| async move { leader.lead_prices(source, keys, now).await },
            )
        });
        let mut out = HashMap::with_capacity(keys.len());
        for lane in futures_util::future::join_all(lanes).await {
            out.extend(lane);
        }
        out
    }

    /// Past prices from a source's history (CoinGecko), at minute resolution.
    pub(super) async fn prices_ago_direct(
        &self,
        keys: &[(PriceKey, u32)],
        now: i64,
    ) -> HashMap<(PriceKey, u32), Result<f64, UpstreamError>> {
        let inner = &self.inner;
        // Past prices are read at minute resolution.
        let minute = |window: u32| (now - i64::from(window) * 1000).div_euclid(60_000) * 60_000;
        let wanted = keys
            .iter()
            .map(|(key, window)| (key.clone(), *window, minute(*window)));
        let leader = inner.clone();
        inner
            .l1_or_flight(
                "price_ago",
                wanted,
                |key| inner.prices_ago.get(key, now),
                &inner.ago_flights,
                move |keys| async move { leader.lead_prices_ago(keys, now).await },
            )
            .await
            .into_iter()
            .map(|((key, window, _), result)| ((key, window), result))
            .collect()
    }
}

impl PrefetchCore {
    fn price_ttl_ms(&self) -> i64 {
        self.settings.price_ttl.as_millis() as i64
    }

    /// Leads the fetch of `keys` (all of `source`): L1 again, then L2 / the source.
    pub(super) async fn lead_prices(
        &self,
        source: Source,
        keys: Vec<PriceKey>,
        now: i64,
    ) -> HashMap<PriceKey, PriceResult> {
        let ttl = self.price_ttl_ms();
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.prices.get(&key, now) {
                Some(quote) => {
                    out.insert(key, Ok(quote));
                }
                None => missing.push(key),
            }
        }
        if missing.is_empty() {
            return out;
        }
        let fetch = |keys: Vec<PriceKey>| async move {
            let symbols: Vec<Arc<str>> = keys.iter().map(|k| k.symbol.clone()).collect();
            let mut answers = self.sources.prices(source, &symbols, now).await;
            self.fetched.fetch_add(symbols.len(), Ordering::Relaxed);
            keys.into_iter()
                .map(|key| {
                    let answer = answers.remove(&key.symbol).unwrap_or_else(|| {
                        Err(UpstreamError::malformed("symbol missing from answer"))
                    });
                    let stored: Fetched = answer.map(|q| (codec::encode_quote(&q), ttl as u64));
                    (key, stored)
                })
                .collect::<Vec<_>>()
        };
        let items = missing
            .iter()
            .map(|k| (k.clone(), cache_key("price", &[&k.source, &k.symbol])))
            .collect();
        let usable = |_: &PriceKey, bytes: &[u8]| {
            codec::decode_quote(bytes).is_some_and(|q| q.at_ms <= now && now - q.at_ms < ttl)
        };
        let results: Vec<(PriceKey, PriceResult)> = self
            .shared_or_source("price", items, usable, fetch, codec::decode_quote)
            .await;
        for (key, result) in results {
            if let Ok(quote) = &result {
                self.prices
                    .insert(key.clone(), *quote, quote.at_ms + ttl, now);
            }
            out.insert(key, result);
        }
        out
    }

    /// Leads the fetch of past prices: Redis, else the source's history.
    async fn lead_prices_ago(
        self: Arc<Self>,
        keys: Vec<PastPriceKey>,
        now: i64,
    ) -> HashMap<PastPriceKey, Result<f64, UpstreamError>> {
        let inner = &*self;
        let fetch = |keys: Vec<PastPriceKey>| async move {
            let calls = keys.into_iter().map(|(key, window, at)| async move {
                let result = match key.source {
                    Source::Coingecko => inner.sources.coingecko.price_at(&key.symbol, at).await,
                    _ => Err(UpstreamError::Unsupported("past prices of uniswap pools")),
                };
                if result.is_ok() {
                    inner.fetched.fetch_add(1, Ordering::Relaxed);
                }
                let stored: Fetched = result.map(|p| (codec::encode_f64(p), 120_000));
                ((key, window, at), stored)
            });
            futures_util::future::join_all(calls).await
        };
        let items = keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    cache_key("ago", &[&k.0.source, &k.0.symbol, &k.2]),
                )
            })
            .collect();
        let results = inner
            .shared_or_source(
                "price_ago",
                items,
                |_, b| codec::decode_f64(b).is_some(),
                fetch,
                codec::decode_f64,
            )
            .await;
        let mut out = HashMap::with_capacity(results.len());
        for (key, result) in results {
            if let Ok(price) = &result {
                inner
                    .prices_ago
                    .insert(key.clone(), *price, now + 60_000, now);
            }
            out.insert(key, result);
        }
        out
    }
}
