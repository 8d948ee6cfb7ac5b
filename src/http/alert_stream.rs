//! `GET /internal/alerts/stream`: server-sent events, one per operational alert event
//! (`raised`, `resolved`, `cleared`, `acknowledged`) from every replica. Each event's
//! SSE id is its row in `ops_alert_events`: a client reconnecting with `Last-Event-ID`
//! first gets every event it missed from the table, then the live ones. Idle streams
//! get a keep-alive comment; a stream ends at shutdown, after
//! `ALERT_STREAM_MAX_SECONDS`, or when the client falls too far behind — the client
//! reconnects with `Last-Event-ID` and misses nothing.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::KeyPosition;
use super::error::ApiError;
use crate::ops_alerts::StreamEvent;
use crate::storage::ops_alert_events;

/// Events read from the table per query while replaying.
const REPLAY_PAGE: i64 = 500;

/// Where a stream stands.
struct Cursor {
    state: AppState,
    live: broadcast::Receiver<StreamEvent>,
    /// Replaying from the table after this id; `None` once live.
    replay_after: Option<i64>,
    /// Ids already sent from the table (not sent again when they also arrive live).
    replayed: HashSet<i64>,
    pending: VecDeque<StreamEvent>,
    ends_at: tokio::time::Instant,
    /// This stream's place among its key's open streams, given back when it ends.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Streams alert events (and replays those after `Last-Event-ID`).
#[utoipa::path(get, path = "/alerts/stream", tag = "alerts",
    security(("api_key" = [])),
    description = "A reconnecting client sends the `Last-Event-ID` header (the id of the last event it received): every later event is replayed first.",
    responses(
        (status = 200, description = "Server-sent events: `id` (the event's number), `event` (raised, resolved, cleared, acknowledged), `data` (the event's JSON line: timestamp, severity, rule, message, context, acknowledged, alert_id, event, component)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Last-Event-ID is not an event id", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit, or the key holds ALERT_STREAMS_PER_KEY streams open already", body = crate::http::error::ErrorBody)))]
pub async fn alert_stream(
    State(state): State<AppState>,
    Extension(key): Extension<KeyPosition>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = state.api_keys.open_stream(key).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!(
                "this key holds {} alert streams open already (ALERT_STREAMS_PER_KEY)",
                state.config.alerts.streams_per_key
            ),
        )
    })?;
    let replay_after = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_header",
                        "Last-Event-ID: must be the id of an event (a non-negative integer)",
                    )
                })?,
        ),
    };
    let settings = &state.config.alerts;
    let keep_alive = KeepAlive::new()
        .interval(settings.stream_keepalive)
        .text("keep-alive");
    let cursor = Cursor {
        // Subscribed before replaying: nothing falls between the table and the live feed.
        live: state.ops_alerts.stream().subscribe(),
        ends_at: tokio::time::Instant::now() + settings.stream_max,
        replay_after,
        replayed: HashSet::new(),
        pending: VecDeque::new(),
        state,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(cursor, |mut cursor| async move {
        let event = cursor.next().await?;
        let sse = Event::default()
            .id(event.id.to_string())
            .event(event.event.clone())
            .data(event.line.to_string());
        Some((Ok(sse), cursor))
    });
    Ok(Sse::new(events).keep_alive(keep_alive))
}

impl Cursor {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if let Some(after) = self.replay_after {
                let page =
                    match ops_alert_events::after(self.state.ops_alerts.pool(), after, REPLAY_PAGE)
                        .await
                    {
                        Ok(page) => page,
                        Err(error) => {
                            tracing::warn!(%error, "alert stream replay failed");
                            return None;
                        }
                    };
                self.replay_after = page.last().map(|row| row.id);
                for row in page {
                    self.replayed.insert(row.id);
                    self.pending.push_back(StreamEvent {
                        id: row.id,
                        event: row.event,
                        line: row.line,
                    });
                }
                continue;
            }
            let received = tokio::select! {
                () = self.state.shutdown.cancelled() => return None,
                () = tokio::time::sleep_until(self.ends_at) => return None,
                received = self.live.recv() => received,
            };
            match received {
                Ok(event) if self.replayed.remove(&event.id) => {}
                Ok(event) => return Some(event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "alert stream client too far behind; closing it (it can resume with Last-Event-ID)"
                    );
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
