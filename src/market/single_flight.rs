//! In-process single flight: concurrent batches that need the same datum share one
//! fetch. A caller asking for several keys leads the fetch of those nobody is fetching
//! and joins the flights of the others.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};

type Flight<V> = Shared<BoxFuture<'static, V>>;

/// The fetches in flight, by key.
#[derive(Debug)]
pub struct SingleFlight<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value of every key: joined from a flight in progress, or fetched by `lead`
    /// (spawned, so a caller that goes away does not cancel the others) for the keys
    /// nobody is fetching. Keys `lead` leaves out get `missing`.
    pub async fn run<F, Fut>(&self, keys: Vec<K>, missing: V, lead: F) -> HashMap<K, V>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, V>> + Send + 'static,
    {
        let mut waits = Vec::with_capacity(keys.len());
        {
            let mut inflight = self.inflight.lock().expect("single-flight lock");
            let mut mine = Vec::new();
            for key in keys {
                match inflight.get(&key) {
                    Some(flight) => waits.push((key, flight.clone())),
                    None => mine.push(key),
                }
            }
            if !mine.is_empty() {
                let task = tokio::spawn(lead(mine.clone()));
                let registry = self.inflight.clone();
                let done = mine.clone();
                let group = async move {
                    let result = task.await.unwrap_or_default();
                    let mut inflight = registry.lock().expect("single-flight lock");
                    for key in &done {
                        inflight.remove(key);
                    }
                    Arc::new(result)
                }
                .boxed()
                .shared();
                for key in mine {
                    let group = group.clone();
                    let lookup = key.clone();
                    let missing = missing.clone();
                    let flight =
                        async move { group.await.get(&lookup).cloned().unwrap_or(missing) }
                            .boxed()
                            .shared();
                    inflight.insert(key.clone(), flight.clone());
                    waits.push((key, flight));
                }
            }
        }
        join_all(
            waits
                .into_iter()
                .map(|(key, flight)| async move { (key, flight.await) }),
        )
        .await
        .into_iter()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_per_key() {
        let flights: Arc<SingleFlight<u32, u32>> = Arc::default();
        let fetched = Arc::new(AtomicUsize::new(0));
        // Fetches wait for a permit, so both callers are in flight together.
        let release = Arc::new(Semaphore::new(0));
        let call = |keys: Vec<u32>| {
            let (flights, fetched, release) = (flights.clone(), fetched.clone(), release.clone());
            tokio::spawn(async move {
                flights
                    .run(keys, 0, move |keys: Vec<u32>| async move {
                        fetched.fetch_add(keys.len(), Ordering::SeqCst);
                        release.acquire().await.unwrap().forget();
                        keys.into_iter().map(|k| (k, k * 10)).collect()
                    })
                    .await
            })
        };
        let registered = |n: usize| {
            let flights = flights.clone();
            async move {
                while flights.inflight.lock().unwrap().len() < n {
                    tokio::task::yield_now().await;
                }
            }
        };
        let first = call(vec![1, 2]);
        registered(2).await;
        let second = call(vec![2, 3]);
        registered(3).await;
        release.add_permits(2);
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert_eq!(first, HashMap::from([(1, 10), (2, 20)]));
        assert_eq!(second, HashMap::from([(2, 20), (3, 30)]));
        // Keys 1, 2 and 3 were each fetched once.
        assert_eq!(fetched.load(Ordering::SeqCst), 3);
        assert!(flights.inflight.lock().unwrap().is_empty());
    }
}
