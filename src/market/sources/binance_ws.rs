//! Binance market streams, the wire side: stream names, the combined-stream URL,
//! `SUBSCRIBE` / `UNSUBSCRIBE` requests and the events we read (kline events, the
//! `serverShutdown` notice, request replies).
//!
//! Wire format: <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use super::UpstreamError;
use super::binance_rest::parse_decimal;
use crate::market::Interval;

/// Binance's limit of streams per connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// `btcusdt@kline_1h`.
pub fn stream_name(symbol: &str, interval: Interval) -> String {
    format!(
        "{}@kline_{}",
        symbol.to_ascii_lowercase(),
        interval.as_str()
    )
}

/// The combined-stream URL for `streams` under a base such as `wss://stream.binance.com:9443`.
pub fn combined_url(base: &str, streams: &[String]) -> String {
    format!(
        "{}/stream?streams={}",
        base.trim_end_matches('/'),
        streams.join("/")
    )
}

/// A `SUBSCRIBE` or `UNSUBSCRIBE` request.
pub fn request(method: &str, streams: &[String], id: u64) -> String {
    json!({"method": method, "params": streams, "id": id}).to_string()
}

/// The `k` object of a kline event.
#[derive(Debug, Deserialize)]
pub struct KlinePayload<'a> {
    #[serde(rename = "t")]
    pub open_time: i64,
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(rename = "i", borrow)]
    pub interval: Cow<'a, str>,
    #[serde(rename = "o", borrow)]
    pub open: Cow<'a, str>,
    #[serde(rename = "h", borrow)]
    pub high: Cow<'a, str>,
    #[serde(rename = "l", borrow)]
    pub low: Cow<'a, str>,
    #[serde(rename = "c", borrow)]
    pub close: Cow<'a, str>,
    #[serde(rename = "v", borrow)]
    pub volume: Cow<'a, str>,
    #[serde(rename = "x")]
    pub closed: bool,
}

/// A kline event, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct KlineEvent {
    pub event_time: i64,
    pub symbol: String,
    pub interval: Interval,
    pub open_time: i64,
    /// open, high, low, close, volume.
    pub ohlcv: [f64; 5],
    pub closed: bool,
}

/// What a message on the socket was.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    Kline(KlineEvent),
    /// The server is about to close the connection: reconnect now.
    ServerShutdown,
    /// The answer to a `SUBSCRIBE` / `UNSUBSCRIBE` (an error when `error` is set).
    Reply {
        id: Option<u64>,
        error: Option<String>,
    },
    /// Anything else (other event types): ignored.
    Other,
}

/// Parses one text message of a raw or combined stream.
pub fn parse_message(text: &str) -> Result<StreamMessage, UpstreamError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "e", borrow, default)]
        event: Option<Cow<'a, str>>,
        #[serde(rename = "E", default)]
        event_time: Option<i64>,
        #[serde(borrow, default)]
        k: Option<KlinePayload<'a>>,
        #[serde(default)]
        data: Option<Box<serde_json::value::RawValue>>,
        #[serde(default)]
        id: Option<Value>,
        #[serde(default)]
        result: Option<Value>,
        #[serde(default)]
        error: Option<Value>,
    }
    let envelope: Envelope = serde_json::from_str(text).map_err(UpstreamError::malformed)?;
    if let Some(data) = &envelope.data {
        // A combined stream wraps the event: {"stream": "...", "data": {...}}.
        return parse_message(data.get());
    }
    match envelope.event.as_deref() {
        Some("kline") => {
            let k = envelope
                .k
                .ok_or_else(|| UpstreamError::malformed("kline event without k"))?;
            let interval = Interval::parse(&k.interval)
                .ok_or_else(|| UpstreamError::malformed("unknown kline interval"))?;
            let mut ohlcv = [0.0; 5];
            for (slot, text) in ohlcv
                .iter_mut()
                .zip([&k.open, &k.high, &k.low, &k.close, &k.volume])
            {
                *slot = parse_decimal(text).map_err(UpstreamError::malformed)?;
            }
            Ok(StreamMessage::Kline(KlineEvent {
                event_time: envelope.event_time.unwrap_or(0),
                symbol: k.symbol.into_owned(),
                interval,
                open_time: k.open_time,
                ohlcv,
                closed: k.closed,
            }))
        }
        Some("serverShutdown") => Ok(StreamMessage::ServerShutdown),
        Some(_) => Ok(StreamMessage::Other),
        None if envelope.id.is_some() || envelope.result.is_some() || envelope.error.is_some() => {
            Ok(StreamMessage::Reply {
                id: envelope.id.as_ref().and_then(Value::as_u64),
                error: envelope
                    .error
                    .map(|e| super::error::truncate(&e.to_string())),
            })
        }
        None => Ok(StreamMessage::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = include_str!("fixtures/binance_kline_event.json");

    #[test]
    fn the_documented_kline_event_parses_raw_and_combined() {
        let expected = StreamMessage::Kline(KlineEvent {
            event_time: 1_672_515_782_136,
            symbol: "BNBBTC".into(),
            interval: Interval::M1,
            open_time: 1_672_515_780_000,
            ohlcv: [0.001, 0.0025, 0.0015, 0.002, 1000.0],
            closed: false,
        });
        assert_eq!(parse_message(EVENT).unwrap(), expected);
        let combined = format!(r#"{{"stream":"bnbbtc@kline_1m","data":{EVENT}}}"#);
        assert_eq!(parse_message(&combined).unwrap(), expected);
    }

    #[test]
    fn replies_shutdowns_and_garbage() {
        assert_eq!(
            parse_message(r#"{"result":null,"id":3}"#).unwrap(),
            StreamMessage::Reply {
                id: Some(3),
                error: None
            }
        );
        assert_eq!(
            parse_message(r#"{"e":"serverShutdown","E":1}"#).unwrap(),
            StreamMessage::ServerShutdown
        );
        for text in [
            "",
            "{",
            r#"{"e":"kline","E":1}"#,
            r#"{"e":"kline","k":{"t":"x"}}"#,
        ] {
            assert!(
                matches!(parse_message(text), Err(UpstreamError::Malformed(_))),
                "{text}"
            );
        }
        assert_eq!(stream_name("BTCUSDT", Interval::H1), "btcusdt@kline_1h");
        assert_eq!(
            combined_url("ws://h:1/", &["a@kline_1m".into(), "b@kline_1h".into()]),
            "ws://h:1/stream?streams=a@kline_1m/b@kline_1h"
        );
    }
}
