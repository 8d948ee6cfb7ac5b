//! The optional Redis connection: a multiplexed connection manager that reconnects by
//! itself after Redis restarts.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use super::startup_retry::{StartupError, retry_startup};

/// How long one Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects and PINGs Redis, retrying with backoff until `timeout`.
pub async fn connect(
    url: &SecretString,
    timeout: Duration,
) -> Result<ConnectionManager, StartupError> {
    // Parse once: a malformed URL is not worth retrying. The redis crate's parse error
    // does not repeat the URL.
    let client = redis::Client::open(url.expose_secret()).map_err(|err| StartupError {
        dependency: "redis",
        message: format!("invalid REDIS_URL: {err}"),
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1);
    retry_startup("redis", timeout, || {
        let client = client.clone();
        let config = config.clone();
        async move {
            let mut manager = ConnectionManager::new_with_config(client, config).await?;
            ping(&mut manager).await?;
            Ok::<_, redis::RedisError>(manager)
        }
    })
    .await
}

/// One PING, for startup and readiness.
pub async fn ping(manager: &mut ConnectionManager) -> Result<(), redis::RedisError> {
    let reply: String = redis::cmd("PING").query_async(manager).await?;
    if reply == "PONG" {
        Ok(())
    } else {
        Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected PING reply",
        )))
    }
}

/// One PING answered within `limit`, or why not (for readiness and status).
pub async fn ping_within(
    manager: &ConnectionManager,
    limit: std::time::Duration,
) -> Result<(), String> {
    let mut manager = manager.clone();
    tokio::time::timeout(limit, ping(&mut manager))
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
}
