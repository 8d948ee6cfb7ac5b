//! Following the shards held (`SHARD_COUNT=auto`): when the set changes, the index is
//! reloaded for it, then the strategies just taken over are evaluated for the current
//! period of their frequency and for the last candle close of their series — only those
//! not evaluated for it yet, so a hand-over between two boundaries neither loses nor
//! repeats a period or a close.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::BatchRunner;
use crate::sharding::Ownership;
use crate::strategy::{Frequency, StrategyLoader};

/// Reloads and catches up whenever `ownership` changes, until `shutdown`.
pub async fn follow_shards(
    ownership: Arc<Ownership>,
    loader: Arc<StrategyLoader>,
    batches: Arc<BatchRunner>,
    shutdown: CancellationToken,
) {
    let mut changes = ownership.subscribe();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        changes.mark_unchanged();
        if let Err(error) = loader.reload_all().await {
            tracing::warn!(component = "sharding", %error,
                "reload after a shard change failed; the next change or reload retries");
            continue;
        }
        catch_up(&loader, &batches).await;
    }
}

/// Evaluates what the strategies of the shards just taken over have not been
/// evaluated for yet: the current period of each timer frequency, the last close.
pub async fn catch_up(loader: &StrategyLoader, batches: &BatchRunner) {
    let frequencies: Vec<Frequency> = loader
        .index()
        .snapshot()
        .by_frequency
        .keys()
        .filter(|f| **f != Frequency::CandleClose)
        .cloned()
        .collect();
    for frequency in frequencies {
        match batches.catch_up(&frequency).await {
            Ok(report) if report.evaluated > 0 => tracing::info!(component = "sharding",
                frequency = %report.frequency, evaluated = report.evaluated,
                triggered = report.triggered, "caught up the current period after a shard change"),
            Ok(_) => {}
            Err(error) => tracing::warn!(component = "sharding", %error, "catch-up failed"),
        }
    }
    let closes = batches.last_closes();
    if let Err(error) = batches.run_closes(&closes).await {
        tracing::warn!(component = "sharding", %error, "catch-up of the last closes failed");
    }
}
