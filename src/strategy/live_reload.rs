//! Live reload: synapse-api announces changed strategies on the channel
//! `strategy:updated` (`{"strategy_id": "<uuid>", "action": "upsert"|"delete"}`, or `"*"`
//! for all), and every replica reloads what a message names — one strategy's queries
//! for one strategy. The channel is Redis pub/sub when `REDIS_URL` is set, else Postgres
//! `LISTEN/NOTIFY` under the same name, so a single replica needs no Redis. Whenever
//! the subscription is (re)established, a full reload follows: whatever was published
//! while it was down is picked up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::SecretString;
use serde::Deserialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::outbound::Backoff;
use uuid::Uuid;

use super::StrategyLoader;

/// The channel name, in Redis and in Postgres.
pub const CHANNEL: &str = "strategy:updated";

/// Most messages handled as one reload.
const COALESCE: usize = 1000;

/// Whether announcements are being followed right now (subscribed, and caught up by
/// the full reload that follows each subscription), and whether, while they cannot be,
/// the strategies are re-read from Postgres on a timer instead.
#[derive(Debug, Default)]
pub struct Following {
    following: AtomicBool,
    polling: AtomicBool,
}

impl Following {
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::SeqCst)
    }

    /// True while Redis is unreachable: every [`POLL_WHILE_DOWN`] a full reload reads
    /// what changed from Postgres.
    pub fn is_polling(&self) -> bool {
        self.polling.load(Ordering::SeqCst)
    }

    fn set(&self, following: bool) {
        self.following.store(following, Ordering::SeqCst);
        if following {
            self.polling.store(false, Ordering::SeqCst);
        }
    }

    fn set_polling(&self) {
        self.polling.store(true, Ordering::SeqCst);
    }
}

/// How often the strategies are re-read from Postgres while Redis cannot be followed.
pub const POLL_WHILE_DOWN: Duration = Duration::from_secs(10);

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    All,
    One(Uuid),
}

#[derive(Deserialize)]
struct Message {
    strategy_id: Uuid,
    /// `upsert` or `delete`: either way the strategy is read again (a deleted one
    /// leaves the index).
    #[serde(default)]
    #[allow(dead_code)]
    action: Option<String>,
}

/// Parses a message: `*` or `"*"` → all; `{"strategy_id": …}` → that one; anything else
/// is ignored (and logged by the caller).
pub fn parse(payload: &str) -> Option<Update> {
    let payload = payload.trim();
    if payload == "*" || payload == "\"*\"" {
        return Some(Update::All);
    }
    serde_json::from_str::<Message>(payload)
        .ok()
        .map(|m| Update::One(m.strategy_id))
}

/// Reloads what a group of messages names: everything if one says so, else the ids.
async fn apply(loader: &StrategyLoader, updates: Vec<Update>) {
    let started = std::time::Instant::now();
    let result = if updates.contains(&Update::All) {
        loader.reload_all().await
    } else {
        let ids: BTreeSet<Uuid> = updates
            .into_iter()
            .filter_map(|u| match u {
                Update::One(id) => Some(id),
                Update::All => None,
            })
            .collect();
        let ids: Vec<Uuid> = ids.into_iter().collect();
        loader.reload_ids(&ids).await
    };
    match result {
        Ok(report) => tracing::info!(
            reloaded = report.reloaded,
            removed = report.removed,
            errors = report.errors.len(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "strategies reloaded on announcement"
        ),
        Err(error) => {
            tracing::error!(%error, "reload on announcement failed")
        }
    }
}

/// Full reload after (re)subscribing.
async fn catch_up(loader: &StrategyLoader) {
    if let Err(error) = loader.reload_all().await {
        tracing::error!(%error, "reload after subscribing failed");
    }
}

/// On (re)subscribing: a fresh backoff, and a full reload for what was missed.
async fn subscribed_again(
    delays: &mut Backoff,
    loader: &StrategyLoader,
    following: &Following,
    via: &str,
) {
    delays.reset();
    catch_up(loader).await;
    following.set(true);
    tracing::info!(via, "following strategy:updated");
}

fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).jittered()
}

/// Follows `strategy:updated` on Redis until `shutdown`, resubscribing (with backoff)
/// whenever the connection drops.
pub async fn follow_redis(
    url: SecretString,
    loader: Arc<StrategyLoader>,
    following: Arc<Following>,
    shutdown: CancellationToken,
) {
    let mut delays = backoff();
    let mut last_poll = tokio::time::Instant::now();
    loop {
        let pubsub = match crate::storage::redis::subscribe(&url, &[CHANNEL]).await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                tracing::warn!(kind = ?error.kind(),
                    "cannot subscribe to strategy:updated on Redis; retrying");
                // Meanwhile announcements cannot arrive: the table is read instead.
                following.set_polling();
                if last_poll.elapsed() >= POLL_WHILE_DOWN {
                    last_poll = tokio::time::Instant::now();
                    if let Err(error) = loader.reload_all().await {
                        tracing::warn!(%error,
                            "reload while Redis is unreachable failed");
                    }
                }
                if delays.pause(&shutdown).await {
                    continue;
                }
                return;
            }
        };
        subscribed_again(&mut delays, &loader, &following, "Redis").await;
        let mut messages = pubsub.into_on_message();
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                message = messages.next() => message,
            };
            let Some(first) = first else {
                following.set(false);
                last_poll = tokio::time::Instant::now();
                tracing::warn!("Redis subscription lost; resubscribing");
                break;
            };
            let mut received = vec![first];
            // Whatever else has arrived is handled in the same reload.
            while received.len() < COALESCE {
                match futures_util::FutureExt::now_or_never(messages.next()) {
                    Some(Some(message)) => received.push(message),
                    _ => break,
                }
            }
            let updates: Vec<Update> = received
                .iter()
                .filter_map(|message| {
                    let payload: String = message.get_payload().unwrap_or_default();
                    let update = parse(&payload);
                    if update.is_none() {
                        tracing::warn!("ignored a malformed strategy:updated message");
                    }
                    update
                })
                .collect();
            if !updates.is_empty() {
                apply(&loader, updates).await;
            }
        }
    }
}

/// Follows `strategy:updated` through Postgres `LISTEN` until `shutdown`; the listener
/// reconnects by itself, and each reconnection is followed by a full reload.
pub async fn follow_postgres(
    pool: PgPool,
    loader: Arc<StrategyLoader>,
    following: Arc<Following>,
    shutdown: CancellationToken,
) {
    let mut delays = backoff();
    loop {
        let listening = async {
            // A connection of its own, outside the service's pool: the listener holds it
            // for good, and the pool stays whole for batches and requests.
            let own = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with((*pool.connect_options()).clone());
            let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match listening {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error,
                    "cannot LISTEN on strategy:updated; retrying");
                if delays.pause(&shutdown).await {
                    continue;
                }
                return;
            }
        };
        subscribed_again(&mut delays, &loader, &following, "Postgres").await;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => match parse(notification.payload()) {
                    Some(update) => apply(&loader, vec![update]).await,
                    None => tracing::warn!("ignored a malformed strategy:updated notification"),
                },
                // The connection was lost and is back: notifications may be missing.
                Ok(None) => {
                    tracing::warn!("Postgres listener reconnected; reloading all");
                    catch_up(&loader).await;
                }
                Err(error) => {
                    following.set(false);
                    tracing::warn!(%error, "Postgres listener failed; listening again");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_one_strategy_or_all() {
        let id = Uuid::new_v4();
        assert_eq!(parse("*"), Some(Update::All));
        assert_eq!(parse(" \"*\" "), Some(Update::All));
        assert_eq!(
            parse(&format!(r#"{{"strategy_id": "{id}", "action": "upsert"}}"#)),
            Some(Update::One(id))
        );
        assert_eq!(
            parse(&format!(r#"{{"strategy_id": "{id}", "action": "delete"}}"#)),
            Some(Update::One(id))
        );
        for bad in ["", "{}", "[]", r#"{"strategy_id": "nope"}"#, "**", "null"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
