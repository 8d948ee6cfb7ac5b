//! Delivering one alert to one channel, with retries: network errors, 5xx and 429
//! (honouring `Retry-After`, or Telegram's and Discord's `retry_after` in the body), and
//! for email SMTP's 4xx replies and dropped connections, are retried with jittered
//! exponential backoff up to `max_attempts`; any other answer ends the delivery. The outcome says how many attempts it took and why it failed —
//! without the URL, which may carry a token.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::address_guard::{AddressGuard, GuardedResolver};
use super::channel::Channel;
use super::destination_hosts::{DestinationHosts, HostOutcome, host_of};
use super::email::{EmailSender, SmtpConfig};
use super::flood::{FloodControl, FloodRates};
use super::outgoing::OutgoingAlert;
use super::place::Place;

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured within one delivery.
    pub max_retry_after: Duration,
    pub timeout: Duration,
    /// How long a user's URL has to accept the connection.
    pub connect_timeout: Duration,
    /// `NOTIFY_FIRST_BYTE_TIMEOUT_MS`: how long a user's URL has to start answering
    /// (and between reads after that).
    pub first_byte_timeout: Duration,
    /// `TELEGRAM_API_URL`.
    pub telegram_api_url: String,
    pub telegram_bot_token: Option<SecretString>,
    pub allow_private_networks: bool,
    /// The SMTP server for email channels; without it email deliveries fail.
    pub smtp: Option<SmtpConfig>,
    /// An extra CA (PEM) trusted for the SMTP server's certificate.
    pub smtp_root_certificate: Option<Vec<u8>>,
    /// Each destination's rate (the providers' limits by default).
    pub flood: FloodRates,
    /// Unresponsive attempts in a row to a user URL's host that open its breaker.
    pub breaker_threshold: u32,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(5),
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_bot_token: None,
            allow_private_networks: false,
            smtp: None,
            smtp_root_certificate: None,
            flood: FloodRates::default(),
            breaker_threshold: super::destination_hosts::BREAKER_THRESHOLD,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One channel's delivery record (`strategy_trigger_logs.deliveries[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Delivery {
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub error: Option<String>,
    /// The channel's [`Channel::fingerprint`] at the claim (absent on rows claimed
    /// before fingerprints were recorded: those are matched by position and kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Attempts whose request was sent but whose answer never came back: the channel
    /// may have accepted them (counted in `monitoring_deliveries_ambiguous_total`).
    #[serde(skip)]
    pub ambiguous: u32,
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Telegram's HTML parse mode needs `&`, `<` and `>` escaped.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A prepared request: where, what, and which client (user URLs get the guarded one).
struct PreparedRequest {
    client: reqwest::Client,
    url: String,
    /// A user URL's host (and port): its share of places and its breaker.
    host: Option<String>,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

/// What one attempt taught us.
enum Attempt {
    Delivered,
    /// Nothing was accepted (no connection, a 5xx, a 429): safe to try again.
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// The request went out and no answer came back (a timeout after sending, a
    /// connection dropped mid-answer): the channel may have accepted it.
    Ambiguous(String),
    Fail(String),
    /// The service is shutting down: no attempt was made.
    Interrupted,
}

/// How a delivery's attempts ended.
enum Ended {
    Delivered,
    Failed(String),
    /// Shutdown stopped it before another attempt: left pending, for the replica that
    /// takes it over once this one's lease is released.
    Interrupted,
}

/// The error a delivery left pending by a shutdown records.
pub const INTERRUPTED: &str = "interrupted by shutdown; resumed by another replica";

/// Sends alerts to channels.
#[derive(Debug, Clone)]
pub struct Notifier {
    settings: NotifierSettings,
    http: reqwest::Client,
    guard: AddressGuard,
    /// The email sender, or why there is none.
    email: Result<EmailSender, String>,
    /// The client for user URLs: it resolves through the guard's resolver (every
    /// address filtered, at every connection) and uses no proxy.
    guarded: reqwest::Client,
    /// Paces sends per chat, bot and webhook.
    flood: FloodControl,
    /// Bounds what each user URL's host holds, and stops trying a dead one for a while.
    hosts: DestinationHosts,
    /// Cancelled when the service shuts down: no new attempt starts, no wait goes on.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Notifier {
    pub fn new(settings: NotifierSettings) -> Self {
        let settings_flood = settings.flood;
        let settings_breaker = settings.breaker_threshold;
        let http = Self::client_builder(&settings)
            .build()
            .expect("the HTTP client builds");
        let email = match &settings.smtp {
            Some(smtp) => EmailSender::new(
                smtp,
                settings.timeout,
                settings.smtp_root_certificate.as_deref(),
            ),
            None => Err("SMTP_HOST is not configured".to_owned()),
        };
        let resolver = GuardedResolver {
            allow_private_networks: settings.allow_private_networks,
        };
        // A user's server gets little time to connect and to start answering: a hanging
        // one must not hold a place for the whole request timeout.
        let guarded = Self::client_builder(&settings)
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.first_byte_timeout)
            .build()
            .expect("the HTTP client builds");
        Self {
            guard: AddressGuard {
                allow_private_networks: settings.allow_private_networks,
            },
            settings,
            http,
            guarded,
            email,
            flood: FloodControl::new(settings_flood),
            hosts: DestinationHosts::new(settings_breaker),
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Stops starting attempts (and waiting for retries or a destination's turn) once
    /// `shutdown` is cancelled: what is not delivered by then stays pending.
    pub fn with_shutdown(mut self, shutdown: tokio_util::sync::CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    fn client_builder(settings: &NotifierSettings) -> reqwest::ClientBuilder {
        crate::outbound::client_builder(settings.timeout).timeout(settings.timeout)
    }

    /// The client for the user URL `url`, once the guard accepts it.
    async fn guarded(&self, url: &str) -> Result<reqwest::Client, String> {
        self.guard
            .check(url)
            .await
            .map_err(|e| format!("refused: {e}"))?;
        Ok(self.guarded.clone())
    }

    async fn prepare(
        &self,
        channel: &Channel,
        alert: &OutgoingAlert<'_>,
    ) -> Result<PreparedRequest, String> {
        let json_body = |value: Value| value.to_string().into_bytes();
        Ok(match channel {
            Channel::Telegram { chat_id } => {
                let token = self
                    .settings
                    .telegram_bot_token
                    .as_ref()
                    .ok_or("TELEGRAM_BOT_TOKEN is not configured")?;
                PreparedRequest {
                    client: self.http.clone(),
                    url: format!(
                        "{}/bot{}/sendMessage",
                        self.settings.telegram_api_url.trim_end_matches('/'),
                        token.expose_secret()
                    ),
                    body: json_body(json!({"chat_id": chat_id, "text": escape_html(alert.text),
                                           "parse_mode": "HTML", "disable_web_page_preview": true})),
                    headers: Vec::new(),
                    host: None,
                }
            }
            Channel::Slack { webhook_url } => PreparedRequest {
                client: self.guarded(webhook_url).await?,
                url: webhook_url.clone(),
                body: json_body(json!({"text": alert.text})),
                headers: Vec::new(),
                host: Some(host_of(webhook_url)),
            },
            Channel::Discord { webhook_url } => PreparedRequest {
                client: self.guarded(webhook_url).await?,
                url: webhook_url.clone(),
                body: json_body(json!({"content": alert.text})),
                headers: Vec::new(),
                host: Some(host_of(webhook_url)),
            },
            Channel::Webhook { url, secret } => {
                let body = json_body(alert.event.clone());
                PreparedRequest {
                    client: self.guarded(url).await?,
                    url: url.clone(),
                    host: Some(host_of(url)),
                    headers: vec![
                        (
                            "x-monitoring-signature",
                            sign(secret.expose_secret(), &body),
                        ),
                        ("x-idempotency-key", alert.dedup_key.to_owned()),
                    ],
                    body,
                }
            }
            // Sent over SMTP by `deliver`, never prepared as an HTTP request.
            Channel::Email { .. } => return Err("email is not an HTTP channel".into()),
        })
    }

    async fn email_attempt(
        &self,
        sender: &EmailSender,
        to: &str,
        alert: &OutgoingAlert<'_>,
    ) -> Attempt {
        match sender.send(to, alert).await {
            Ok(()) => Attempt::Delivered,
            Err(failure) if failure.transient => Attempt::Retry {
                after: None,
                error: failure.reason,
            },
            Err(failure) => Attempt::Fail(failure.reason),
        }
    }

    /// One attempt within its host's share: a place held for the request only, and
    /// refused at once while the host's breaker is open.
    async fn attempt_at_host(&self, prepared: &PreparedRequest) -> Attempt {
        let Some(host) = &prepared.host else {
            return self.attempt(prepared).await.0;
        };
        let _place = match self.hosts.enter(host).await {
            Ok(place) => place,
            Err(open) => {
                return Attempt::Retry {
                    after: None,
                    error: open.to_string(),
                };
            }
        };
        let (attempt, outcome) = self.attempt(prepared).await;
        self.hosts.record(host, outcome);
        attempt
    }

    async fn attempt(&self, prepared: &PreparedRequest) -> (Attempt, HostOutcome) {
        let mut request = prepared
            .client
            .post(&prepared.url)
            .header("content-type", "application/json")
            .body(prepared.body.clone());
        for (name, value) in &prepared.headers {
            request = request.header(*name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // No connection was made: nothing was sent.
            Err(error) if error.is_connect() => {
                let attempt = Attempt::Retry {
                    after: None,
                    error: error.without_url().to_string(),
                };
                return (attempt, HostOutcome::Unresponsive);
            }
            Err(error) => {
                let attempt = Attempt::Ambiguous(error.without_url().to_string());
                return (attempt, HostOutcome::Unresponsive);
            }
        };
        (self.judge(response).await, HostOutcome::Answered)
    }

    /// What an answer means for the delivery.
    async fn judge(&self, response: reqwest::Response) -> Attempt {
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let header_wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::outbound::retry_after_seconds);
        // A user's server decides how large its error answer is: read only its start.
        let body =
            crate::bounded_body::read_prefix(response, crate::bounded_body::ERROR_BODY_LIMIT).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // Telegram: {"parameters": {"retry_after": 3}}; Discord: {"retry_after": 1.5}.
        let body_wait = body
            .pointer("/parameters/retry_after")
            .or_else(|| body.get("retry_after"))
            .and_then(Value::as_f64);
        let error = format!("HTTP {}", status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = header_wait.or(body_wait).unwrap_or(1.0).max(0.0);
            Attempt::Retry {
                after: Some(Duration::from_secs_f64(seconds).min(self.settings.max_retry_after)),
                error,
            }
        } else if status.is_server_error() {
            Attempt::Retry { after: None, error }
        } else {
            let detail = body
                .get("description")
                .or_else(|| body.get("message"))
                .and_then(Value::as_str)
                .map(|d| format!("{error}: {}", d.chars().take(200).collect::<String>()));
            Attempt::Fail(detail.unwrap_or(error))
        }
    }

    /// Delivers `alert` to `channel`; never panics, always answers a record.
    pub async fn deliver(&self, channel: &Channel, alert: &OutgoingAlert<'_>) -> Delivery {
        let record = |status, attempts, error| Delivery {
            channel: channel.kind().to_owned(),
            status,
            attempts,
            error,
            fingerprint: Some(channel.fingerprint()),
            ambiguous: 0,
        };
        // Webhooks carry `X-Idempotency-Key`: a receiver can drop a repeat, so an
        // unanswered request is retried like any other. Telegram, Slack and Discord
        // cannot: one unanswered request is retried once at most.
        let ambiguous_retries = match channel {
            Channel::Webhook { .. } => u32::MAX,
            _ => 1,
        };
        let (attempts, ambiguous, outcome, awake) = match channel {
            Channel::Email { to } => match &self.email {
                Ok(sender) => {
                    self.with_retries(ambiguous_retries, alert.place, || {
                        self.email_attempt(sender, to, alert)
                    })
                    .await
                }
                Err(error) => (0, 0, Ended::Failed(error.clone()), true),
            },
            _ => match self.prepare(channel, alert).await {
                Ok(prepared) => {
                    self.with_retries(ambiguous_retries, alert.place, || async {
                        // Each attempt waits its turn at the destination's rate.
                        tokio::select! {
                            () = self.shutdown.cancelled() => return Attempt::Interrupted,
                            () = self.flood.wait_turn(channel, alert.owner) => {}
                        }
                        let attempt = self.attempt_at_host(&prepared).await;
                        if let Attempt::Retry {
                            after: Some(after), ..
                        } = &attempt
                        {
                            // A 429: the destination waits, for every message.
                            self.flood.pause(channel, *after).await;
                        }
                        attempt
                    })
                    .await
                }
                Err(error) => (0, 0, Ended::Failed(error), true),
            },
        };
        if let Some(place) = alert.place {
            place.finish(awake);
        }
        let mut delivery = match outcome {
            Ended::Delivered => record(DeliveryStatus::Delivered, attempts, None),
            Ended::Failed(error) => record(DeliveryStatus::Failed, attempts, Some(error)),
            Ended::Interrupted => {
                record(DeliveryStatus::Pending, attempts, Some(INTERRUPTED.into()))
            }
        };
        delivery.ambiguous = ambiguous;
        delivery
    }

    /// Makes attempts until one delivers or fails for good, `max_attempts` are spent,
    /// or more than `ambiguous_retries` attempts went unanswered; answers how many were
    /// made, how many went unanswered, and the last error.
    ///
    /// While it waits between attempts, the delivery steps aside from its `place` (a
    /// retry waits its turn again); the last element of the answer says whether it
    /// ended awake (not stopped by shutdown while waiting).
    async fn with_retries<F, Fut>(
        &self,
        ambiguous_retries: u32,
        place: Option<&Place>,
        mut attempt: F,
    ) -> (u32, u32, Ended, bool)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt>,
    {
        let mut backoff =
            crate::outbound::Backoff::new(self.settings.min_backoff, self.settings.max_backoff)
                .jittered();
        let max_attempts = self.settings.max_attempts.max(1);
        let (mut attempts, mut ambiguous) = (0, 0);
        loop {
            if self.shutdown.is_cancelled() {
                return (attempts, ambiguous, Ended::Interrupted, true);
            }
            let (after, error) = match attempt().await {
                Attempt::Interrupted => return (attempts, ambiguous, Ended::Interrupted, true),
                Attempt::Delivered => return (attempts + 1, ambiguous, Ended::Delivered, true),
                Attempt::Fail(error) => {
                    return (attempts + 1, ambiguous, Ended::Failed(error), true);
                }
                Attempt::Ambiguous(error) => {
                    ambiguous += 1;
                    if ambiguous > ambiguous_retries {
                        let error =
                            format!("{error} (no answer; not retried again: it may have arrived)");
                        return (attempts + 1, ambiguous, Ended::Failed(error), true);
                    }
                    (None, error)
                }
                Attempt::Retry { after, error } => (after, error),
            };
            attempts += 1;
            if attempts >= max_attempts {
                return (attempts, ambiguous, Ended::Failed(error), true);
            }
            let wait = after.unwrap_or_else(|| backoff.next().unwrap_or(self.settings.max_backoff));
            if let Some(place) = place {
                place.step_aside();
            }
            let woke = async {
                tokio::time::sleep(wait).await;
                if let Some(place) = place {
                    place.step_in().await;
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => {
                    return (attempts, ambiguous, Ended::Interrupted, place.is_none());
                }
                () = woke => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(escape_html("a < b & c > d"), "a &lt; b &amp; c &gt; d");
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(crate::outbound::retry_after_seconds(" 3 "), Some(3.0));
        assert_eq!(
            crate::outbound::retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(0.0)
        );
        let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(60))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = crate::outbound::retry_after_seconds(&in_a_minute).unwrap();
        assert!((58.0..=60.0).contains(&wait), "{wait}");
        assert_eq!(crate::outbound::retry_after_seconds("soon"), None);
    }
}
