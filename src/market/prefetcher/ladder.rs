//! The ladder every datum climbs: L1 (in-process), a flight another batch already
//! started, else a flight this call leads; the leader asks Redis (when configured) for
//! what another replica stored, else the source (under Redis's lock, so one replica
//! fetches). Each kind of datum supplies only its L1 lookup, its fetch and its codec.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use super::super::shared_cache::{Fetched, Origin};
use super::super::single_flight::SingleFlight;
use super::super::sources::UpstreamError;
use super::{PrefetchCore, abandoned};

/// The Redis key of one datum: `monitoring:md:<kind>:<part>:<part>…`.
pub(super) fn cache_key(kind: &str, parts: &[&dyn std::fmt::Display]) -> String {
    let mut key = format!("monitoring:md:{kind}");
    for part in parts {
        key.push(':');
        key.push_str(&part.to_string());
    }
    key
}

pub(super) fn decode<T>(
    origin: Origin,
    decoder: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, UpstreamError> {
    let (Origin::Shared(bytes) | Origin::Fetched(bytes)) = origin;
    decoder(&bytes).ok_or_else(|| UpstreamError::malformed("undecodable cache entry"))
}

impl PrefetchCore {
    /// The first rungs: each key from L1 when `l1` has it, else from the flight in
    /// progress for it, else from `lead`, which this call runs (once) for the keys
    /// nobody is fetching. L1 hits and misses are counted under `kind`.
    pub(super) async fn l1_or_flight<K, V, F, Fut>(
        &self,
        kind: &str,
        keys: impl IntoIterator<Item = K>,
        l1: impl Fn(&K) -> Option<V>,
        flights: &SingleFlight<K, Result<V, UpstreamError>>,
        lead: F,
    ) -> HashMap<K, Result<V, UpstreamError>>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, Result<V, UpstreamError>>> + Send + 'static,
    {
        let mut out = HashMap::new();
        let mut misses = Vec::new();
        for key in keys {
            match l1(&key) {
                Some(value) => {
                    out.insert(key, Ok(value));
                }
                None => misses.push(key),
            }
        }
        self.count_l1(kind, out.len(), misses.len());
        if !misses.is_empty() {
            out.extend(flights.run(misses, Err(abandoned()), lead).await);
        }
        out
    }

    /// The shared half of every datum's ladder (L1 → single flight → here): Redis,
    /// when configured, for what another replica stored and `usable` accepts, else the
    /// source through `fetch` (under Redis's lock, so one replica fetches); decoded
    /// with `decoder`.
    pub(super) async fn shared_or_source<K, T, F, Fut>(
        &self,
        kind: &'static str,
        items: Vec<(K, String)>,
        usable: impl Fn(&K, &[u8]) -> bool,
        fetch: F,
        decoder: fn(&[u8]) -> Option<T>,
    ) -> Vec<(K, Result<T, UpstreamError>)>
    where
        K: Eq + Hash + Clone,
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Vec<(K, Fetched)>>,
    {
        match &self.shared {
            Some(shared) => shared
                .get_or_fetch(kind, items, usable, fetch, &self.metrics)
                .await
                .into_iter()
                .map(|(k, r)| (k, r.and_then(|o| decode(o, decoder))))
                .collect(),
            None => fetch(items.into_iter().map(|(k, _)| k).collect())
                .await
                .into_iter()
                .map(|(k, r)| (k, r.and_then(|(b, _)| decode(Origin::Fetched(b), decoder))))
                .collect(),
        }
    }

    fn count_l1(&self, kind: &str, hits: usize, misses: usize) {
        let requests = &self.metrics.cache_requests;
        if hits > 0 {
            requests
                .with_label_values(&[kind, "l1", "hit"])
                .inc_by(hits as u64);
        }
        if misses > 0 {
            requests
                .with_label_values(&[kind, "l1", "miss"])
                .inc_by(misses as u64);
        }
    }
}
