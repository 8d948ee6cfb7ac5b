//! Following the shards held (`SHARD_COUNT=auto`): when the set changes (the first
//! shards a replica takes at its start included), the index is reloaded for it, then the
//! strategies just taken over are evaluated for the current period of their frequency
//! and for the last candle close of their series — only those not evaluated for it yet —
//! so a hand-over between two boundaries neither loses nor repeats a period or a close.
//! The next boundary after a change is checked the same way: a bucket that just appeared
//! may have its batch monitor scheduled too late to fire at it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::BatchRunner;
use crate::frequency::Frequency;
use crate::strategy::StrategyLoader;

/// How long after the next boundary its catch-up runs: past the scheduled batch's own
/// start, so it finds that batch's strategies evaluated.
const AFTER_THE_BOUNDARY: Duration = Duration::from_secs(2);

/// Boundaries further than this are not checked again (a new hourly or daily bucket's
/// monitor has long been scheduled by then).
const MAX_RECHECK: Duration = Duration::from_secs(300);

/// Reloads and catches up whenever the shards held change (`changes`, from
/// [`crate::sharding::Ownership::subscribe`], taken before the first shards are: the first ones are
/// caught up too), until `shutdown`.
pub async fn follow_shards(
    mut changes: watch::Receiver<u64>,
    loader: Arc<StrategyLoader>,
    batches: Arc<BatchRunner>,
    shutdown: CancellationToken,
) {
    // After a change, the next boundary is checked too: the batch monitor of a bucket
    // that just appeared may not be scheduled in time to fire at it.
    let mut recheck: Option<tokio::time::Instant> = None;
    loop {
        let at = recheck.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                changes.mark_unchanged();
                if let Err(error) = loader.reload_all().await {
                    tracing::warn!(%error,
                        "reload after a shard change failed; the next change or reload retries");
                    continue;
                }
                catch_up(&loader, &batches).await;
                recheck = until_next_boundary(&batches)
                    .map(|wait| tokio::time::Instant::now() + wait);
            }
            () = tokio::time::sleep_until(at), if recheck.is_some() => {
                recheck = None;
                catch_up(&loader, &batches).await;
            }
        }
    }
}

/// How long until just after the next boundary of the loaded strategies (by the market
/// clock); `None` when there is none, it is far, or the clock is frozen.
fn until_next_boundary(batches: &BatchRunner) -> Option<Duration> {
    let clock = batches.clock();
    let speed = clock.speed();
    if speed <= 0.0 {
        return None;
    }
    let now = chrono::DateTime::from_timestamp_millis(clock.now_ms())?;
    let next = batches.next_boundary()?;
    let market_ms = (next - now).num_milliseconds().max(0) as f64;
    let wait = Duration::from_secs_f64(market_ms / speed / 1000.0) + AFTER_THE_BOUNDARY;
    (wait <= MAX_RECHECK).then_some(wait)
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
            Ok(report) if report.evaluated > 0 => {
                tracing::info!(frequency = %report.frequency, evaluated = report.evaluated,
                triggered = report.triggered, "caught up the current period after a shard change")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "catch-up failed"),
        }
    }
    if let Err(error) = batches.catch_up_closes().await {
        tracing::warn!(%error, "catch-up of the last closes failed");
    }
}
