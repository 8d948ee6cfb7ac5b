//! The L1 cache of prices: in-process, each entry valid until a (market-clock) time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Values that expire at a given market time (Unix ms). Expired entries are swept
/// whenever the map has doubled since the last sweep, so it stays proportional to
/// what is live.
#[derive(Debug)]
pub struct MemoryCache<K, V> {
    inner: Mutex<Entries<K, V>>,
}

#[derive(Debug)]
struct Entries<K, V> {
    map: HashMap<K, (V, i64)>,
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 1024;

impl<K, V> Default for MemoryCache<K, V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> MemoryCache<K, V> {
    /// The value, if it has not expired at `now_ms`.
    pub fn get(&self, key: &K, now_ms: i64) -> Option<V> {
        let inner = self.inner.lock().expect("cache lock");
        inner
            .map
            .get(key)
            .filter(|(_, expires)| now_ms < *expires)
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` until `expires_ms`.
    pub fn insert(&self, key: K, value: V, expires_ms: i64, now_ms: i64) {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.map.len() >= inner.sweep_at {
            inner.map.retain(|_, (_, expires)| *expires > now_ms);
            inner.sweep_at = (inner.map.len() * 2).max(FIRST_SWEEP);
        }
        inner.map.insert(key, (value, expires_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_swept() {
        let cache = MemoryCache::default();
        cache.insert(0u32, "a", 100, 0);
        assert_eq!(cache.get(&0, 99), Some("a"));
        assert_eq!(cache.get(&0, 100), None);
        for i in 1..=2048u32 {
            cache.insert(i, "b", 1_000 + i64::from(i), 1_000);
        }
        let inner = cache.inner.lock().unwrap();
        // The first sweep (at 1,024 entries) dropped the expired one.
        assert!(!inner.map.contains_key(&0));
        assert_eq!(inner.map.len(), 2048);
    }
}
