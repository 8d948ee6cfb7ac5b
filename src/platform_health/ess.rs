//! The emergency stop: a message on Redis `ess.tripped` raises `ess_tripped` (CRITICAL)
//! at once — the system is CRITICAL while it is active — and a message on `ess.reset`
//! resolves it (an operator may also clear it). Messages are JSON objects; a malformed
//! one is logged and ignored. Raising is idempotent, so every replica follows.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::cycle::ESS_TRIPPED;
use crate::alerts::{OpsAlerts, Severity};

/// The channels followed.
pub const TRIPPED: &str = "ess.tripped";
pub const RESET: &str = "ess.reset";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("component".to_owned(), "ess".to_owned())])
}

/// Handles one message on `channel`; answers whether it was understood.
pub async fn handle(alerts: &OpsAlerts, channel: &str, payload: &str) -> Result<bool, sqlx::Error> {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(payload) else {
        tracing::warn!(
            component = "health",
            channel,
            "malformed emergency-stop message ignored"
        );
        return Ok(false);
    };
    let context = Value::Object(message);
    match channel {
        TRIPPED => {
            let reason = context
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            let message: String = format!("emergency stop tripped: {reason}")
                .chars()
                .take(500)
                .collect();
            alerts
                .raise(
                    ESS_TRIPPED,
                    &labels(),
                    Severity::Critical,
                    "Emergency stop tripped",
                    &message,
                    &context,
                )
                .await?;
        }
        RESET => {
            alerts.resolve(ESS_TRIPPED, &labels()).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Follows `ess.tripped` and `ess.reset` until shutdown, resubscribing after a loss.
pub async fn follow(alerts: OpsAlerts, url: SecretString, shutdown: CancellationToken) {
    loop {
        let subscribed = async {
            let client = redis::Client::open(url.expose_secret())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&[TRIPPED, RESET]).await?;
            Ok::<_, redis::RedisError>(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    let channel = message.get_channel_name().to_owned();
                    let payload: String = message.get_payload().unwrap_or_default();
                    if let Err(error) = handle(&alerts, &channel, &payload).await {
                        tracing::warn!(component = "health", %error, "emergency-stop message not recorded");
                    }
                }
            }
            Err(error) => tracing::warn!(component = "health", kind = ?error.kind(),
                "cannot follow ess.tripped on Redis; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
