//! The optional Redis connection: a multiplexed connection manager that reconnects by
//! itself after Redis restarts; and channel subscriptions, which need connections of
//! their own.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

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

/// Opens a subscription to `channels` on a connection of its own (a subscribed
/// connection can do nothing else).
pub async fn subscribe(
    url: &SecretString,
    channels: &[&str],
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let client = redis::Client::open(url.expose_secret())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channels).await?;
    Ok(pubsub)
}

/// One message received on a followed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    pub channel: String,
    /// The payload as text; a payload that is not UTF-8 arrives empty.
    pub payload: String,
}

/// Follows `channels` until `shutdown`, handing each message to `handle` in the order
/// received. After failing to subscribe or losing the subscription it waits a second
/// and subscribes again. Messages published while not subscribed are not received:
/// callers that must not miss one read what they missed from Postgres.
pub async fn follow<Handle, Handled>(
    url: SecretString,
    channels: &[&str],
    component: &'static str,
    shutdown: CancellationToken,
    mut handle: Handle,
) where
    Handle: FnMut(ChannelMessage) -> Handled,
    Handled: Future<Output = ()>,
{
    loop {
        match subscribe(&url, channels).await {
            Ok(pubsub) => {
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    handle(ChannelMessage {
                        channel: message.get_channel_name().to_owned(),
                        payload: message.get_payload().unwrap_or_default(),
                    })
                    .await;
                }
                tracing::warn!(
                    component,
                    ?channels,
                    "Redis subscription lost; resubscribing"
                );
            }
            Err(error) => tracing::warn!(component, ?channels, kind = ?error.kind(),
                "cannot subscribe on Redis; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
