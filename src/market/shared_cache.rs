//! The L2 cache: Redis, shared by every replica, with a lock per datum so that only
//! one replica fetches it from upstream while the others wait for its result.
//!
//! For a set of keys: read them all (`MGET`); for the misses, take the locks we can
//! (`SET NX PX` in one script call); read again what we locked (another replica may
//! have just written it), fetch the rest upstream, write them and release our locks;
//! for keys locked by another replica, poll until its result appears, and fetch them
//! ourselves only if it does not within the wait. Redis errors degrade to fetching
//! directly: a cache outage must not become a data outage.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::sources::UpstreamError;
use crate::metrics::MarketMetrics;

/// Takes each lock whose key is free; answers 1 per key taken, 0 otherwise.
const LOCK_SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then out[i] = 1 else out[i] = 0 end
end
return out";

/// Releases the locks that are still ours.
const UNLOCK_SCRIPT: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0";

/// A fetched value to store: its bytes and how long Redis keeps it (real ms).
pub type Fetched = Result<(Vec<u8>, u64), UpstreamError>;

/// How long locks live and how long others wait for the lock holder.
#[derive(Debug, Clone)]
pub struct SharedCacheSettings {
    pub lock_ttl: Duration,
    pub lock_wait: Duration,
    pub poll: Duration,
}

impl Default for SharedCacheSettings {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(10),
            lock_wait: Duration::from_secs(3),
            poll: Duration::from_millis(20),
        }
    }
}

/// The Redis-backed shared cache.
#[derive(Clone)]
pub struct SharedCache {
    redis: ConnectionManager,
    settings: SharedCacheSettings,
    /// This replica's lock token.
    token: String,
    lock: redis::Script,
    unlock: redis::Script,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache").finish_non_exhaustive()
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Another replica (or an earlier batch) had stored it.
    Shared(Vec<u8>),
    /// This call fetched it upstream.
    Fetched(Vec<u8>),
}

impl SharedCache {
    pub fn new(redis: ConnectionManager, settings: SharedCacheSettings) -> Self {
        Self {
            redis,
            settings,
            token: uuid::Uuid::new_v4().to_string(),
            lock: redis::Script::new(LOCK_SCRIPT),
            unlock: redis::Script::new(UNLOCK_SCRIPT),
        }
    }

    async fn mget(&self, keys: &[&str]) -> Vec<Option<Vec<u8>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut redis = self.redis.clone();
        let result: redis::RedisResult<Vec<Option<Vec<u8>>>> =
            redis::cmd("MGET").arg(keys).query_async(&mut redis).await;
        result.unwrap_or_else(|error| {
            tracing::warn!(%error, "shared market cache read failed; fetching directly");
            vec![None; keys.len()]
        })
    }

    async fn store(&self, items: &[(&str, &[u8], u64)]) {
        if items.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (key, value, ttl_ms) in items {
            pipe.cmd("SET")
                .arg(*key)
                .arg(*value)
                .arg("PX")
                .arg((*ttl_ms).max(1))
                .ignore();
        }
        let mut redis = self.redis.clone();
        if let Err(error) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(%error, "shared market cache write failed");
        }
    }

    async fn try_lock(&self, keys: &[String]) -> Vec<bool> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut invocation = self.lock.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation
            .arg(&self.token)
            .arg(self.settings.lock_ttl.as_millis() as u64);
        let mut redis = self.redis.clone();
        match invocation.invoke_async::<Vec<i64>>(&mut redis).await {
            Ok(taken) => taken.into_iter().map(|t| t == 1).collect(),
            // Without Redis every replica fetches for itself.
            Err(error) => {
                tracing::warn!(%error, "shared market cache lock failed; fetching directly");
                vec![true; keys.len()]
            }
        }
    }

    async fn unlock(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let mut invocation = self.unlock.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(&self.token);
        let mut redis = self.redis.clone();
        if let Err(error) = invocation.invoke_async::<i64>(&mut redis).await {
            tracing::warn!(%error, "shared market cache unlock failed (locks expire)");
        }
    }

    /// The value of each `(key, redis key)`: from Redis when `usable` accepts what is
    /// stored, else from `fetch`, which this replica runs only for keys it holds the
    /// lock of (or whose holder did not deliver in time).
    pub async fn get_or_fetch<K, F, Fut>(
        &self,
        kind: &'static str,
        items: Vec<(K, String)>,
        usable: impl Fn(&K, &[u8]) -> bool,
        fetch: F,
        metrics: &MarketMetrics,
    ) -> HashMap<K, Result<Origin, UpstreamError>>
    where
        K: Eq + Hash + Clone,
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Vec<(K, Fetched)>>,
    {
        let mut out = HashMap::with_capacity(items.len());
        let names: Vec<&str> = items.iter().map(|(_, name)| name.as_str()).collect();
        let mut missing = Vec::new();
        for ((key, name), value) in items.iter().zip(self.mget(&names).await) {
            match value {
                Some(bytes) if usable(key, &bytes) => {
                    out.insert(key.clone(), Ok(Origin::Shared(bytes)));
                }
                _ => missing.push((key.clone(), name.clone())),
            }
        }
        count(metrics, kind, "hit", out.len());
        count(metrics, kind, "miss", missing.len());
        if missing.is_empty() {
            return out;
        }
        let locks: Vec<String> = missing
            .iter()
            .map(|(_, name)| format!("{name}:lock"))
            .collect();
        let taken = self.try_lock(&locks).await;
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for ((item, lock), taken) in missing.into_iter().zip(locks).zip(taken) {
            if taken {
                mine.push((item, lock));
            } else {
                theirs.push(item);
            }
        }
        let lead = async {
            // Someone may have stored it between our read and our lock.
            let names: Vec<&str> = mine.iter().map(|((_, name), _)| name.as_str()).collect();
            let mut results = Vec::new();
            let mut to_fetch = Vec::new();
            for (((key, name), _), value) in mine.iter().zip(self.mget(&names).await) {
                match value {
                    Some(bytes) if usable(key, &bytes) => {
                        results.push((key.clone(), Ok(Origin::Shared(bytes))))
                    }
                    _ => to_fetch.push((key.clone(), name.clone())),
                }
            }
            results.extend(self.fetch_and_store(to_fetch, &fetch).await);
            let locks: Vec<String> = mine.iter().map(|(_, lock)| lock.clone()).collect();
            self.unlock(&locks).await;
            results
        };
        let follow = async {
            let mut results = Vec::new();
            let mut waiting = theirs.clone();
            let deadline = tokio::time::Instant::now() + self.settings.lock_wait;
            while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(self.settings.poll).await;
                let names: Vec<&str> = waiting.iter().map(|(_, name)| name.as_str()).collect();
                let values = self.mget(&names).await;
                let mut still = Vec::new();
                for ((key, name), value) in waiting.into_iter().zip(values) {
                    match value {
                        Some(bytes) if usable(&key, &bytes) => {
                            results.push((key, Ok(Origin::Shared(bytes))))
                        }
                        _ => still.push((key, name)),
                    }
                }
                waiting = still;
            }
            // The holder did not deliver in time: fetch ourselves.
            results.extend(self.fetch_and_store(waiting, &fetch).await);
            results
        };
        let (led, followed) = tokio::join!(lead, follow);
        out.extend(led);
        out.extend(followed);
        out
    }

    async fn fetch_and_store<K, F, Fut>(
        &self,
        items: Vec<(K, String)>,
        fetch: &F,
    ) -> Vec<(K, Result<Origin, UpstreamError>)>
    where
        K: Eq + Hash + Clone,
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Vec<(K, Fetched)>>,
    {
        if items.is_empty() {
            return Vec::new();
        }
        let names: HashMap<K, String> = items.iter().cloned().collect();
        let fetched = fetch(items.into_iter().map(|(k, _)| k).collect()).await;
        let writes: Vec<(&str, &[u8], u64)> = fetched
            .iter()
            .filter_map(|(key, result)| {
                let (bytes, ttl) = result.as_ref().ok()?;
                Some((names.get(key)?.as_str(), bytes.as_slice(), *ttl))
            })
            .collect();
        self.store(&writes).await;
        fetched
            .into_iter()
            .map(|(key, result)| (key, result.map(|(bytes, _)| Origin::Fetched(bytes))))
            .collect()
    }
}

fn count(metrics: &MarketMetrics, kind: &str, result: &str, n: usize) {
    if n > 0 {
        metrics
            .cache_requests
            .with_label_values(&[kind, "l2", result])
            .inc_by(n as u64);
    }
}
