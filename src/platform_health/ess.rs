//! The emergency stop: a message on Redis `ess.tripped` raises `ess_tripped` (CRITICAL)
//! at once — the system is CRITICAL while it is active — and a message on `ess.reset`
//! resolves it (an operator may also clear it). Messages are JSON objects; a malformed
//! one is logged and ignored. Raising is idempotent, so every replica follows.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::cycle::ESS_TRIPPED;
use crate::ops_alerts::{OpsAlerts, Severity};
use crate::storage::redis as redis_channels;

/// The channels followed.
pub const TRIPPED: &str = "ess.tripped";
pub const RESET: &str = "ess.reset";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("component".to_owned(), "ess".to_owned())])
}

/// Handles one message on `channel`; answers whether it was understood.
pub async fn handle(alerts: &OpsAlerts, channel: &str, payload: &str) -> Result<bool, sqlx::Error> {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(payload) else {
        tracing::warn!(channel, "malformed emergency-stop message ignored");
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
    redis_channels::follow(url, &[TRIPPED, RESET], "health", shutdown, |message| {
        let alerts = alerts.clone();
        async move {
            if let Err(error) = handle(&alerts, &message.channel, &message.payload).await {
                tracing::warn!(%error, "emergency-stop message not recorded");
            }
        }
    })
    .await;
}
