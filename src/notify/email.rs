//! Email alerts over SMTP (lettre): one pooled connection to `SMTP_HOST`, protected as
//! `SMTP_TLS` says (a required `STARTTLS` upgrade, TLS from the first byte, or none for
//! a local relay), authenticated when `SMTP_USERNAME` is set. The subject is the
//! message's first line, the body the whole message; the `Message-ID` is derived from
//! the trigger's dedup key, so a resumed delivery carries the same id.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::outgoing::OutgoingAlert;

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, which is required (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// SMTP settings, present only when `SMTP_HOST` is set.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<secrecy::SecretString>,
    pub from: String,
    pub tls: SmtpTls,
}

/// Longest subject line, in characters.
const MAX_SUBJECT_CHARS: usize = 150;

/// Why one send did not go through, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// A 4xx reply, a timeout or a dropped connection: worth another attempt.
    pub transient: bool,
    pub reason: String,
}

/// Sends alert emails through the configured SMTP server.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    /// A sender for `config`; `extra_root_pem` adds a trusted CA (a private mail relay,
    /// or a test server). Fails on an unusable sender address, host name or certificate.
    pub fn new(
        config: &SmtpConfig,
        timeout: Duration,
        extra_root_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| "SMTP_FROM is not a valid address".to_owned())?;
        let tls_parameters = || {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(pem) = extra_root_pem {
                let certificate = Certificate::from_pem(pem)
                    .map_err(|e| format!("SMTP root certificate: {e}"))?;
                builder = builder.add_root_certificate(certificate);
            }
            builder
                .build()
                .map_err(|e| format!("SMTP TLS settings: {e}"))
        };
        let tls = match config.tls {
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(username) = &config.username {
            let password = config
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `alert` to `to` once.
    pub async fn send(&self, to: &str, alert: &OutgoingAlert<'_>) -> Result<(), SendFailure> {
        let permanent = |reason: String| SendFailure {
            transient: false,
            reason,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|_| permanent("the recipient is not a valid address".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(alert.text))
            .message_id(Some(message_id(alert.dedup_key, &self.from)))
            .header(ContentType::TEXT_PLAIN)
            .body(alert.text.to_owned())
            .map_err(|e| permanent(format!("building the email: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) => Err(SendFailure {
                transient: !(error.is_permanent()
                    || error.is_client()
                    || error.is_tls()
                    || is_tls_failure(&error)),
                // lettre's errors carry the server's reply, never our credentials.
                reason: format!("SMTP: {error}"),
            }),
        }
    }
}

/// Whether a TLS failure (an untrusted certificate, a failed handshake) lies in the
/// chain: lettre reports those as connection errors, but retrying cannot mend them.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        // tokio-rustls wraps rustls' error in an io::Error, whose `source` skips it.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The first non-empty line of the message, shortened to a subject.
pub fn subject(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("Strategy alert");
    match line.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// `<sha256(dedup_key)[..32]@sender-domain>`: stable for one trigger.
fn message_id(dedup_key: &str, from: &Mailbox) -> String {
    let digest = Sha256::digest(dedup_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{}>", from.email.domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_the_first_line() {
        assert_eq!(subject("\n  RSI oversold  \nmore"), "RSI oversold");
        assert_eq!(subject(""), "Strategy alert");
        let long = "x".repeat(400);
        assert_eq!(subject(&long).chars().count(), MAX_SUBJECT_CHARS + 1);
    }

    #[test]
    fn message_ids_are_stable_per_trigger() {
        let from: Mailbox = "alerts@example.com".parse().unwrap();
        let a = message_id("7f0c:bar:1", &from);
        assert_eq!(a, message_id("7f0c:bar:1", &from));
        assert_ne!(a, message_id("7f0c:bar:2", &from));
        assert!(a.starts_with('<') && a.ends_with("@example.com>"));
    }
}
