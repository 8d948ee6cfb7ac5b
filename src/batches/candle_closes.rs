//! The candle-close consumer: `candle_close` and `once_per_bar_close` strategies are
//! evaluated as their candles close. Timer frequencies are fired by their bucket
//! monitors (`batch:<frequency>` jobs on tokio-cron-scheduler).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::BatchRunner;

/// Evaluates `candle_close` and `once_per_bar_close` strategies as their candles close.
/// Closes that arrive together (a minute boundary closes every 1m series at once) are
/// evaluated as one batch.
pub async fn run_candle_closes(
    runner: Arc<BatchRunner>,
    mut closes: tokio::sync::broadcast::Receiver<crate::market::CandleClosed>,
    shutdown: CancellationToken,
) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            received = closes.recv() => received,
        };
        let mut lagged = false;
        let mut batch = match first {
            Ok(close) => vec![close],
            Err(RecvError::Lagged(missed)) => {
                lag(missed);
                lagged = true;
                Vec::new()
            }
            Err(RecvError::Closed) => return,
        };
        loop {
            match closes.try_recv() {
                Ok(close) => batch.push(close),
                Err(TryRecvError::Lagged(missed)) => {
                    lag(missed);
                    lagged = true;
                }
                Err(_) => break,
            }
        }
        if lagged {
            // The dropped events' closes are in the kline cache: evaluate the last
            // close of every followed series (those already evaluated are skipped).
            batch.extend(runner.last_closes());
        }
        if let Err(error) = runner.run_closes(&batch).await {
            tracing::error!(%error, "candle-close batch failed");
        }
    }
}

/// Logs dropped close events (recovered from the kline cache).
fn lag(missed: u64) {
    tracing::error!(
        missed,
        "candle-close events were dropped: evaluation fell behind; re-evaluating the last close of every series from the kline cache"
    );
}
