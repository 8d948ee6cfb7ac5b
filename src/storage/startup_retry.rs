//! Exponential backoff with jitter for connecting to a dependency at startup, bounded by
//! the configured startup timeout.

use std::future::Future;
use std::time::Duration;

use backon::Retryable;

use crate::outbound::Backoff;

/// A dependency could not be reached (or prepared) within the startup timeout.
#[derive(Debug, thiserror::Error)]
#[error("{dependency}: {message}")]
pub struct StartupError {
    /// `postgres`, `redis`, `migrations`, `listener`.
    pub dependency: &'static str,
    /// The last cause, without credentials.
    pub message: String,
}

/// Runs `connect` until it succeeds or `timeout` has been spent waiting, logging each
/// failed attempt with the delay before the next.
pub async fn retry_startup<T, E, F, Fut>(
    dependency: &'static str,
    timeout: Duration,
    connect: F,
) -> Result<T, StartupError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
        .jittered()
        .with_total_delay(timeout);
    connect
        .retry(backoff)
        .notify(|err: &E, delay: Duration| {
            tracing::warn!(
                dependency,
                error = %err,
                retry_in_ms = delay.as_millis() as u64,
                "dependency not reachable yet"
            );
        })
        .await
        .map_err(|err| StartupError {
            dependency,
            message: format!("not reachable within {}s: {err}", timeout.as_secs()),
        })
}
