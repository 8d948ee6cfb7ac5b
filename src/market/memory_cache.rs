//! The L1 cache of prices: in-process, each entry valid until a (market-clock) time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Values that expire at a given market time (Unix ms).
#[derive(Debug)]
pub struct MemoryCache<K, V> {
    entries: Mutex<HashMap<K, (V, i64)>>,
}

impl<K, V> Default for MemoryCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> MemoryCache<K, V> {
    /// The value, if it has not expired at `now_ms`.
    pub fn get(&self, key: &K, now_ms: i64) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(_, expires)| now_ms < *expires)
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: K, value: V, expires_ms: i64) {
        let mut entries = self.entries.lock().expect("cache lock");
        // Expired entries go when the map would otherwise grow.
        if entries.len() >= 4096 && entries.len().is_power_of_two() {
            entries.retain(|_, (_, expires)| *expires > expires_ms - 3_600_000);
        }
        entries.insert(key, (value, expires_ms));
    }
}
