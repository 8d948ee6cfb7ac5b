//! The resolved form of each strategy cached in Redis, keyed by id and version, so a
//! replica (or a restart) compiles changed strategies without reading their trees and
//! conditions from Postgres when another replica already read them. Channels are never
//! cached — their addresses, tokens and secrets stay in Postgres — and are read with the
//! version. A version is immutable, so entries never need invalidating; they expire
//! after a week unused.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::ResolvedStrategy;
use super::resolved::StrategyRow;

/// `v2`: entries without channels. Earlier entries (`monitoring:strategy:<id>:…`) held
/// them and are removed at start ([`purge_legacy`]).
const KEY_PREFIX: &str = "monitoring:strategy:v2:";
const LEGACY_PATTERN: &str = "monitoring:strategy:*";
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
        let values: Vec<Option<Vec<u8>>> =
            match redis::cmd("MGET").arg(&keys).query_async(redis).await {
                Ok(values) => values,
                Err(err) => {
                    tracing::warn!(error = %err, "strategy cache read failed");
                    vec![None; chunk.len()]
                }
            };
        found.extend(values.into_iter().map(|value| {
            value.and_then(|bytes| serde_json::from_slice::<ResolvedStrategy>(&bytes).ok())
        }));
    }
    found
}

/// Stores resolved strategies under their versions, without their channels. Failures
/// are logged, not fatal.
pub async fn put_many(redis: &mut ConnectionManager, strategies: &[ResolvedStrategy]) {
    for chunk in strategies.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for strategy in chunk {
            let without_channels = ResolvedStrategy {
                row: StrategyRow {
                    channels: None,
                    ..strategy.row.clone()
                },
                conditions: strategy.conditions.clone(),
            };
            let Ok(bytes) = serde_json::to_vec(&without_channels) else {
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
            tracing::warn!(error = %err, "strategy cache write failed");
        }
    }
}

/// Removes the entries of versions cached before channels were left out (they held
/// channel secrets). Runs at a replica's first load; failures are logged, not fatal.
pub async fn purge_legacy(redis: &mut ConnectionManager) {
    let mut cursor: u64 = 0;
    let mut removed = 0usize;
    loop {
        let scanned: Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(LEGACY_PATTERN)
            .arg("COUNT")
            .arg(CHUNK)
            .query_async(redis)
            .await;
        let (next, keys) = match scanned {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "strategy cache purge failed");
                return;
            }
        };
        let legacy: Vec<&String> = keys.iter().filter(|k| !k.starts_with(KEY_PREFIX)).collect();
        if !legacy.is_empty() {
            match redis::cmd("UNLINK")
                .arg(&legacy)
                .query_async::<usize>(redis)
                .await
            {
                Ok(count) => removed += count,
                Err(err) => {
                    tracing::warn!(error = %err, "strategy cache purge failed");
                    return;
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if removed > 0 {
        tracing::info!(removed, "cached strategies holding channels removed");
    }
}
