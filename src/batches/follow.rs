//! The candle feed follows what is evaluated: the (symbol, interval) series of the
//! loaded strategies, kept current as the index changes.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::market::MarketData;
use crate::strategy::StrategyIndex;

/// Keeps the series `market` follows equal to those of the loaded strategies, from
/// now until `shutdown`.
pub fn follow_index(
    market: &MarketData,
    index: Arc<StrategyIndex>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let market = market.clone();
    let mut generations = index.subscribe();
    tasks.spawn(async move {
        loop {
            market.set_streams(index.snapshot().series.clone());
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = generations.changed() => if changed.is_err() { return },
            }
        }
    });
}
