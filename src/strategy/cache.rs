//! The resolved form of each strategy cached in Redis, keyed by id and version, so a
//! replica (or a restart) compiles changed strategies without reading Postgres for the
//! ones another replica already read. A version is immutable, so entries never need
//! invalidating; they expire after a week unused.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::ResolvedStrategy;

const KEY_PREFIX: &str = "monitoring:strategy:";
const TTL_SECONDS: u64 = 7 * 86_400;
/// Keys per MGET / pipeline round trip.
const CHUNK: usize = 1000;

/// The cache key of one version of a strategy.
pub fn key(id: Uuid, version: DateTime<Utc>) -> String {
    format!("{KEY_PREFIX}{id}:{}", version.timestamp_micros())
}

/// Reads the cached versions that exist; the others come back `None`. A Redis failure
/// is logged and treated as all misses: Postgres still answers.
pub async fn get_many(
    redis: &mut ConnectionManager,
    wanted: &[(Uuid, DateTime<Utc>)],
) -> Vec<Option<ResolvedStrategy>> {
    let mut found = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(CHUNK) {
        let keys: Vec<String> = chunk.iter().map(|(id, v)| key(*id, *v)).collect();
        let values: Vec<Option<Vec<u8>>> = match redis::cmd("MGET")
            .arg(&keys)
            .query_async(redis)
            .await
        {
            Ok(values) => values,
            Err(err) => {
                tracing::warn!(component = "strategy", error = %err, "strategy cache read failed");
                vec![None; chunk.len()]
            }
        };
        found.extend(values.into_iter().map(|value| {
            value.and_then(|bytes| serde_json::from_slice::<ResolvedStrategy>(&bytes).ok())
        }));
    }
    found
}

/// Stores resolved strategies under their versions. Failures are logged, not fatal.
pub async fn put_many(redis: &mut ConnectionManager, strategies: &[ResolvedStrategy]) {
    for chunk in strategies.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for strategy in chunk {
            let Ok(bytes) = serde_json::to_vec(strategy) else {
                continue;
            };
            pipe.cmd("SET")
                .arg(key(strategy.row.id, strategy.row.updated_at))
                .arg(bytes)
                .arg("EX")
                .arg(TTL_SECONDS)
                .ignore();
        }
        if let Err(err) = pipe.query_async::<()>(redis).await {
            tracing::warn!(component = "strategy", error = %err, "strategy cache write failed");
        }
    }
}
