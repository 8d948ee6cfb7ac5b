//! Batch timing: the next boundary among the index's frequencies, and the candle-close
//! consumer. The batches themselves are fired by the monitors' schedule
//! (`batch:<frequency>` jobs on tokio-cron-scheduler).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::BatchRunner;
use crate::strategy::{Frequency, IndexSnapshot};

/// The earliest run after `now` among the index's frequencies, with every frequency
/// due then.
pub fn next_run(
    index: &IndexSnapshot,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Vec<Frequency>)> {
    let mut best: Option<(DateTime<Utc>, Vec<Frequency>)> = None;
    for frequency in index.by_frequency.keys() {
        let Some(at) = frequency.next_after(now) else {
            continue;
        };
        match &mut best {
            Some((earliest, due)) if at == *earliest => due.push(frequency.clone()),
            Some((earliest, _)) if at > *earliest => {}
            _ => best = Some((at, vec![frequency.clone()])),
        }
    }
    best
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_run_is_the_earliest_boundary_with_every_frequency_due_then() {
        let mut index = IndexSnapshot::default();
        for text in ["1m", "5m", "1h", "candle_close", "30 * * * * *"] {
            index
                .by_frequency
                .insert(Frequency::parse(text).unwrap(), Vec::new());
        }
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let (when, due) = next_run(&index, at("2026-11-23T09:59:40Z")).unwrap();
        assert_eq!(when, at("2026-11-23T10:00:00Z"));
        let names: Vec<String> = due.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["1m", "5m", "1h"]);
        let (when, due) = next_run(&index, at("2026-11-23T10:00:00Z")).unwrap();
        assert_eq!((when, due.len()), (at("2026-11-23T10:00:30Z"), 1));
        assert!(next_run(&IndexSnapshot::default(), at("2026-11-23T10:00:00Z")).is_none());
    }
}
