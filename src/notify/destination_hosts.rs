//! Each destination host of a user-supplied URL gets a bounded share of the delivery
//! capacity: at most [`PER_HOST_ATTEMPTS`] requests in flight to it at once, and a
//! circuit breaker that opens after [`BREAKER_THRESHOLD`] (by default) attempts in a
//! row that timed out or could not connect, for [`BREAKER_OPEN`]. While it is open, attempts to the
//! host fail at once (a retryable failure, with the reason recorded), so one party's
//! dead server costs the others nothing; the first attempt after it closes probes the
//! host again. A place is held only for the attempt itself, never during a backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Requests in flight to one host at most.
pub const PER_HOST_ATTEMPTS: usize = 8;
/// Timeouts or refused connections in a row that open a host's breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses attempts.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);

/// What an attempt to a host taught us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOutcome {
    /// The host answered (whatever it said).
    Answered,
    /// No connection, or no answer in time.
    Unresponsive,
}

#[derive(Debug)]
struct Host {
    slots: Arc<Semaphore>,
    unresponsive_in_a_row: u32,
    open_until: Option<Instant>,
}

/// The hosts' places and breakers. Host names stay in memory: never logged, never a
/// metric label.
#[derive(Debug, Clone)]
pub struct DestinationHosts {
    hosts: Arc<Mutex<HashMap<String, Host>>>,
    /// Unresponsive attempts in a row that open a host's breaker.
    threshold: u32,
}

impl Default for DestinationHosts {
    fn default() -> Self {
        Self::new(BREAKER_THRESHOLD)
    }
}

/// Why an attempt may not go to a host now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    /// The attempts in a row that opened it.
    pub after: u32,
    pub retry_in: Duration,
}

impl std::fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not sent: the destination host timed out or refused {} times in a row; retried in {} s",
            self.after,
            self.retry_in.as_secs().max(1)
        )
    }
}

impl DestinationHosts {
    /// Breakers opening after `threshold` unresponsive attempts in a row.
    pub fn new(threshold: u32) -> Self {
        Self {
            hosts: Arc::default(),
            threshold: threshold.max(1),
        }
    }

    /// A place for one attempt to `host`, waiting for one if all are taken; refused
    /// while the host's breaker is open.
    pub async fn enter(&self, host: &str) -> Result<OwnedSemaphorePermit, BreakerOpen> {
        let slots = {
            let mut hosts = self.hosts.lock().expect("host gate lock");
            let entry = hosts.entry(host.to_owned()).or_insert_with(|| Host {
                slots: Arc::new(Semaphore::new(PER_HOST_ATTEMPTS)),
                unresponsive_in_a_row: 0,
                open_until: None,
            });
            if let Some(until) = entry.open_until {
                let now = Instant::now();
                if until > now {
                    return Err(BreakerOpen {
                        after: self.threshold,
                        retry_in: until - now,
                    });
                }
                // Half open: this attempt probes the host.
                entry.open_until = None;
            }
            entry.slots.clone()
        };
        Ok(slots.acquire_owned().await.expect("never closed"))
    }

    /// Records how an attempt to `host` went.
    pub fn record(&self, host: &str, outcome: HostOutcome) {
        let mut hosts = self.hosts.lock().expect("host gate lock");
        let Some(entry) = hosts.get_mut(host) else {
            return;
        };
        match outcome {
            HostOutcome::Answered => entry.unresponsive_in_a_row = 0,
            HostOutcome::Unresponsive => {
                entry.unresponsive_in_a_row += 1;
                if entry.unresponsive_in_a_row >= self.threshold {
                    entry.unresponsive_in_a_row = 0;
                    entry.open_until = Some(Instant::now() + BREAKER_OPEN);
                }
            }
        }
    }
}

/// The host (and port) a URL goes to, the key of its place and breaker.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_keyed_by_host_and_port() {
        assert_eq!(
            host_of("https://Hooks.Slack.com/services/x"),
            "hooks.slack.com:443"
        );
        assert_eq!(host_of("http://127.0.0.1:8080/a?b"), "127.0.0.1:8080");
        assert_eq!(host_of("not a url"), "");
    }

    #[tokio::test(start_paused = true)]
    async fn places_are_bounded_and_the_breaker_opens_then_probes_again() {
        let gate = DestinationHosts::default();
        let mut held = Vec::new();
        for _ in 0..PER_HOST_ATTEMPTS {
            held.push(gate.enter("a:443").await.unwrap());
        }
        let waiting = tokio::time::timeout(Duration::from_millis(10), gate.enter("a:443")).await;
        assert!(waiting.is_err(), "the ninth attempt waits for a place");
        assert!(
            gate.enter("b:443").await.is_ok(),
            "another host is not held up"
        );
        held.pop();
        let ninth = gate.enter("a:443").await.unwrap();
        drop((held, ninth));

        for _ in 0..BREAKER_THRESHOLD - 1 {
            gate.record("a:443", HostOutcome::Unresponsive);
        }
        gate.record("a:443", HostOutcome::Answered);
        assert!(
            gate.enter("a:443").await.is_ok(),
            "an answer resets the count"
        );
        for _ in 0..BREAKER_THRESHOLD {
            gate.record("a:443", HostOutcome::Unresponsive);
        }
        let open = gate.enter("a:443").await.unwrap_err();
        assert_eq!(open.retry_in, BREAKER_OPEN);
        assert!(open.to_string().contains("5 times in a row"), "{open}");
        assert!(gate.enter("b:443").await.is_ok(), "only that host");
        tokio::time::advance(BREAKER_OPEN).await;
        assert!(
            gate.enter("a:443").await.is_ok(),
            "half open: one probe goes"
        );
    }
}
