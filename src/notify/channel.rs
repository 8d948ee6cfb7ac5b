//! A strategy's `channels` JSON, parsed and checked: `[{"type": "telegram", "chat_id":
//! "123"}, {"type": "slack", "webhook_url": "https://…"}, …]`.

use secrecy::SecretString;
use serde::Deserialize;

/// One place an alert goes. Its `Debug` shows the kind alone: chat ids, webhook URLs
/// (tokens in their paths) and secrets never reach a log line.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    Telegram { chat_id: String },
    Slack { webhook_url: String },
    Discord { webhook_url: String },
    Email { to: String },
    Webhook { url: String, secret: SecretString },
}

/// Why a channel list is invalid; names the entry, never echoes URLs or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channels[{index}]: {message}")]
pub struct ChannelError {
    pub index: usize,
    pub message: String,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({})", self.kind())
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        match (self, other) {
            (Channel::Telegram { chat_id: a }, Channel::Telegram { chat_id: b }) => a == b,
            (Channel::Slack { webhook_url: a }, Channel::Slack { webhook_url: b })
            | (Channel::Discord { webhook_url: a }, Channel::Discord { webhook_url: b }) => a == b,
            (Channel::Email { to: a }, Channel::Email { to: b }) => a == b,
            (Channel::Webhook { url: a, secret: s }, Channel::Webhook { url: b, secret: t }) => {
                a == b && s.expose_secret() == t.expose_secret()
            }
            _ => false,
        }
    }
}

impl Channel {
    /// `telegram`, `slack`, `discord`, `email` or `webhook`: for records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Telegram { .. } => "telegram",
            Channel::Slack { .. } => "slack",
            Channel::Discord { .. } => "discord",
            Channel::Email { .. } => "email",
            Channel::Webhook { .. } => "webhook",
        }
    }

    /// A stable digest of everything that says where this channel delivers (secret
    /// included), recorded with each pending delivery: a resume delivers only to the
    /// channel with the same fingerprint, so an edited address never receives an alert
    /// meant for the old one. Kept in Postgres with the channels themselves.
    pub fn fingerprint(&self) -> String {
        use secrecy::ExposeSecret;
        let parts: [&str; 3] = match self {
            Channel::Telegram { chat_id } => ["telegram", chat_id, ""],
            Channel::Slack { webhook_url } => ["slack", webhook_url, ""],
            Channel::Discord { webhook_url } => ["discord", webhook_url, ""],
            Channel::Email { to } => ["email", to, ""],
            Channel::Webhook { url, secret } => ["webhook", url, secret.expose_secret()],
        };
        crate::digest::of(parts)
    }

    fn check(&self) -> Result<(), String> {
        let https_url = |url: &str| match url.split_once("://") {
            Some(("https" | "http", rest))
                if !rest.is_empty() && !rest.contains(char::is_whitespace) =>
            {
                Ok(())
            }
            _ => Err("must be an http(s) URL".to_owned()),
        };
        match self {
            Channel::Telegram { chat_id } => {
                let id = chat_id.strip_prefix('-').unwrap_or(chat_id);
                let username = chat_id.strip_prefix('@');
                let ok =
                    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
                        || username.is_some_and(|u| {
                            (5..=32).contains(&u.len())
                                && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        });
                if ok {
                    Ok(())
                } else {
                    Err("chat_id must be a numeric chat id or an @channel name".into())
                }
            }
            Channel::Slack { webhook_url } | Channel::Discord { webhook_url } => {
                https_url(webhook_url)
            }
            Channel::Webhook { url, .. } => https_url(url),
            Channel::Email { to } => {
                let ok = to.len() <= 254
                    && to.split_once('@').is_some_and(|(user, domain)| {
                        !user.is_empty()
                            && domain.contains('.')
                            && !to.contains(char::is_whitespace)
                    });
                if ok {
                    Ok(())
                } else {
                    Err("to must be an email address".into())
                }
            }
        }
    }
}

/// Parses and checks a `channels` document (at most 20 channels).
pub fn parse_channels(json: &str) -> Result<Vec<Channel>, ChannelError> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|_| ChannelError {
        index: 0,
        message: "channels must be a JSON array of objects".into(),
    })?;
    if entries.len() > 20 {
        return Err(ChannelError {
            index: 20,
            message: "at most 20 channels".into(),
        });
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            check_field_types(&entry).map_err(|message| ChannelError { index, message })?;
            let channel: Channel = serde_json::from_value(entry).map_err(|e| ChannelError {
                index,
                message: without_values(&e.to_string()),
            })?;
            channel
                .check()
                .map_err(|message| ChannelError { index, message })?;
            Ok(channel)
        })
        .collect()
}

/// Every field a channel has is a string: a field of another type is named, its value
/// never echoed (a numeric chat id or a secret would otherwise reach `strategies.error`).
fn check_field_types(entry: &serde_json::Value) -> Result<(), String> {
    let Some(fields) = entry.as_object() else {
        return Err("must be an object".into());
    };
    for (name, value) in fields {
        if !value.is_string() {
            return Err(format!("{}: must be a string", field_name(name)));
        }
    }
    Ok(())
}

/// A field name fit for an error message: as given when short and plain, else elided.
fn field_name(name: &str) -> &str {
    let plain = name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain { name } else { "a field" }
}

/// serde's message with every quoted value cut: it keeps what was expected and which
/// field or variant was wrong, never what was given.
fn without_values(message: &str) -> String {
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let expected = message
            .split_once("expected ")
            .map_or("", |(_, expected)| expected);
        return format!("invalid value, expected {expected}");
    }
    match message.split_once(", expected") {
        Some((head, tail)) if head.starts_with("unknown") => {
            // "unknown variant `x`" / "unknown field `x`": names, kept when plain.
            let name = head.split('`').nth(1).unwrap_or("");
            let what = head.split(' ').take(2).collect::<Vec<_>>().join(" ");
            match field_name(name) {
                "a field" => format!("{what}, expected{tail}"),
                plain => format!("{what} `{plain}`, expected{tail}"),
            }
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_channels_parse() {
        let channels = parse_channels(
            r#"[{"type": "telegram", "chat_id": "123456"},
                {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/X"},
                {"type": "discord", "webhook_url": "https://discord.com/api/webhooks/1/abc"},
                {"type": "email", "to": "trader@example.com"},
                {"type": "webhook", "url": "https://example.com/hook", "secret": "s3cret"}]"#,
        )
        .unwrap();
        let kinds: Vec<_> = channels.iter().map(Channel::kind).collect();
        assert_eq!(kinds, ["telegram", "slack", "discord", "email", "webhook"]);
        assert!(
            !format!("{channels:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn bad_channels_name_their_entry() {
        let error = |json: &str| parse_channels(json).unwrap_err().to_string();
        assert!(
            error(r#"[{"type": "pigeon"}]"#).starts_with("channels[0]: unknown variant `pigeon`")
        );
        assert_eq!(
            error(
                r#"[{"type": "email", "to": "x@y.z"}, {"type": "slack", "webhook_url": "ftp://x"}]"#
            ),
            "channels[1]: must be an http(s) URL"
        );
        assert_eq!(
            error(r#"[{"type": "telegram", "chat_id": "12a"}]"#),
            "channels[0]: chat_id must be a numeric chat id or an @channel name"
        );
        assert_eq!(
            error(r#"{"type": "email"}"#),
            "channels[0]: channels must be a JSON array of objects"
        );
        assert!(
            error(r#"[{"type": "webhook", "url": "https://x.y"}]"#)
                .contains("missing field `secret`")
        );
        // A value of the wrong type is named by its field, never echoed.
        assert_eq!(
            error(r#"[{"type": "telegram", "chat_id": 987654321}]"#),
            "channels[0]: chat_id: must be a string"
        );
        assert_eq!(
            error(r#"[{"type": "webhook", "url": "https://x.y", "secret": 271828}]"#),
            "channels[0]: secret: must be a string"
        );
        let long = format!(r#"[{{"type": "slack", "{}": "x"}}]"#, "k".repeat(64));
        assert!(!error(&long).contains("kkkk"), "{}", error(&long));
        assert_eq!(error("[5]"), "channels[0]: must be an object");
    }

    #[test]
    fn telegram_takes_numeric_ids_and_channel_names_and_at_most_twenty_channels_fit() {
        let telegram = |chat_id: &str| {
            parse_channels(&format!(
                r#"[{{"type": "telegram", "chat_id": "{chat_id}"}}]"#
            ))
        };
        for good in ["123456", "-1001234567890", "@trading_desk", "@abcde"] {
            assert!(telegram(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "@abcd",
            "@trading-desk",
            "@",
            "123456789012345678901",
            "12 34",
        ] {
            assert_eq!(
                telegram(bad).unwrap_err().to_string(),
                "channels[0]: chat_id must be a numeric chat id or an @channel name",
                "{bad}"
            );
        }
        let channels = |n: usize| {
            let one = r#"{"type": "email", "to": "trader@example.com"}"#;
            parse_channels(&format!("[{}]", vec![one; n].join(",")))
        };
        assert_eq!(channels(20).unwrap().len(), 20);
        assert_eq!(
            channels(21).unwrap_err().to_string(),
            "channels[20]: at most 20 channels"
        );
    }
}
