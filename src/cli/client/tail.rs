//! `tail`: follows `/internal/alerts/stream` (server-sent events from every replica),
//! one line per event. When the stream ends — the server's stream limit, a restart, a
//! dropped connection — it reconnects with `Last-Event-ID` set to the last event it
//! printed, so the server replays what happened meanwhile and nothing is missed or
//! printed twice. Notices about reconnecting go to stderr; stdout carries events only.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::output::{Output, Tone};
use super::{Api, ClientError};

const PATH: &str = "/internal/alerts/stream";
/// The first wait before reconnecting, doubled on each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Prints alert events as they come, from after event `after` when given; returns
/// after `count` events, or never.
pub async fn tail(
    api: &Api,
    out: &Output,
    after: Option<u64>,
    count: Option<u64>,
) -> Result<u8, ClientError> {
    let mut last_id = after;
    let mut printed = 0_u64;
    let mut connected_once = false;
    let mut backoff = crate::outbound::Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    if count == Some(0) {
        return Ok(0);
    }
    loop {
        let mut request = api.request(Method::GET, PATH);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let ended = match request.send().await {
            Err(error) if !connected_once => return Err(api.unreachable(&error)),
            Err(error) => api.unreachable(&error).to_string(),
            Ok(response) => match api.check(&Method::GET, PATH, response).await {
                // Overloaded or restarting: wait and try again.
                Err(ClientError::Refused { status, .. })
                    if status.as_u16() == 429 || status.is_server_error() =>
                {
                    format!("the service answered {status}")
                }
                Err(error) => return Err(error),
                Ok(response) => {
                    connected_once = true;
                    backoff.reset();
                    let mut events = response.bytes_stream().eventsource();
                    loop {
                        match events.next().await {
                            None => break "the stream ended".to_owned(),
                            Some(Err(error)) => break format!("the stream broke: {error}"),
                            Some(Ok(event)) => {
                                if let Ok(id) = event.id.parse::<u64>() {
                                    last_id = Some(id);
                                }
                                print_event(out, &event.id, &event.event, &event.data);
                                printed += 1;
                                if count.is_some_and(|count| printed >= count) {
                                    return Ok(0);
                                }
                            }
                        }
                    }
                }
            },
        };
        let resume = last_id.map_or_else(String::new, |id| format!(" after event {id}"));
        let wait = backoff.next_delay();
        eprintln!("{ended}; reconnecting{resume} in {wait:?}");
        tokio::time::sleep(wait).await;
    }
}

/// One event: `--json` prints `{"id", "event", "data"}` per line; otherwise
/// `time  event  severity  rule  message  [alert id]`.
fn print_event(out: &Output, id: &str, event: &str, data: &str) {
    let line: Value = serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.into()));
    if out.json {
        println!(
            "{}",
            json!({"id": id.parse::<u64>().ok(), "event": event, "data": line})
        );
        return;
    }
    let field = |name: &str| line[name].as_str().unwrap_or("-").to_owned();
    let severity = field("severity");
    // To the second: `2026-12-03T01:48:55Z`.
    let time = chrono::DateTime::parse_from_rfc3339(&field("timestamp"))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| field("timestamp"));
    println!(
        "{time}  {:<12}  {}  {:<26}  {}  [{}]",
        event,
        out.paint(&format!("{severity:<8}"), Tone::of(&severity)),
        field("rule"),
        field("message"),
        field("alert_id"),
    );
}
