//! The alert event stream behind `GET /internal/alerts/stream`: every replica's alert
//! events, in this process, for its stream clients. Each event is stored first (its
//! row id is the stream's event id, so a client reconnecting with `Last-Event-ID`
//! gets what it missed from the table), then published on Redis, where every replica's
//! follower hands it to its own clients. Without Redis (unset or failing) an event
//! reaches this replica's clients directly.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::storage::redis as redis_channels;

/// The Redis channel alert events are fanned out on, followed by `:<database name>`:
/// replicas sharing a database share a stream, and deployments sharing a Redis do not
/// see each other's events.
pub const EVENTS_CHANNEL: &str = "monitoring:ops_alert_events";

/// Events kept for a slow client before it is dropped (it reconnects and replays).
const BUFFER: usize = 1024;

/// One alert event as streamed: `id` is its row in `ops_alert_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub id: i64,
    /// `raised`, `resolved`, `cleared` or `acknowledged`.
    pub event: String,
    /// The event's JSON line (as in the alert log).
    pub line: serde_json::Value,
}

/// This process's side of the stream: cheap to clone.
#[derive(Debug, Clone)]
pub struct EventStream {
    local: broadcast::Sender<StreamEvent>,
    channel: String,
}

impl EventStream {
    /// The stream of the replicas sharing the database `database`.
    pub fn for_database(database: &str) -> Self {
        Self {
            local: broadcast::channel(BUFFER).0,
            channel: format!("{EVENTS_CHANNEL}:{database}"),
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamEvent> {
        self.local.subscribe()
    }

    /// Stream clients connected to this replica now.
    pub fn clients(&self) -> usize {
        self.local.receiver_count()
    }

    /// Hands an event to this replica's clients.
    pub fn deliver_here(&self, event: StreamEvent) {
        // No client listening is not an error.
        let _ = self.local.send(event);
    }

    /// Publishes an event to every replica through Redis; without Redis, or when
    /// publishing fails, to this replica's clients only.
    pub async fn publish(&self, redis: Option<&redis::aio::ConnectionManager>, event: StreamEvent) {
        let Some(mut redis) = redis.cloned() else {
            return self.deliver_here(event);
        };
        let payload = serde_json::to_string(&event).unwrap_or_default();
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut redis)
            .await;
        if let Err(error) = published {
            tracing::warn!(kind = ?error.kind(),
                "alert event not fanned out on Redis; this replica's stream only");
            self.deliver_here(event);
        }
    }

    /// Follows this stream's Redis channel until shutdown, handing each event to this replica's
    /// clients; resubscribes with a pause after losing Redis.
    pub async fn follow_redis(self, url: SecretString, shutdown: CancellationToken) {
        let channel = self.channel.clone();
        redis_channels::follow(url, &[&channel], "alert", shutdown, |message| {
            match serde_json::from_str(&message.payload) {
                Ok(event) => self.deliver_here(event),
                Err(_) => tracing::warn!("unreadable alert event on Redis ignored"),
            }
            std::future::ready(())
        })
        .await;
    }
}
