//! The message an operational alert route receives: one per route and window, listing
//! the alerts it covers (firing, or resolved), short enough for every provider's limit.

use serde_json::{Value, json};

use crate::storage::ops_alerts::AlertRow;

/// Alerts listed by name in one message; the rest are counted.
const LISTED: usize = 10;
/// Characters of an alert's message shown.
const MESSAGE_CHARS: usize = 200;

/// Whether a message announces alerts firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Firing,
    Resolved,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Firing => "firing",
            NoticeKind::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "firing" => Some(NoticeKind::Firing),
            "resolved" => Some(NoticeKind::Resolved),
            _ => None,
        }
    }
}

/// The text of one message about `alerts` (at least one).
pub fn text(kind: NoticeKind, severity: &str, alerts: &[AlertRow]) -> String {
    let (mark, verb) = match kind {
        NoticeKind::Firing => ("🚨", "firing"),
        NoticeKind::Resolved => ("✅", "resolved"),
    };
    let count = alerts.len();
    let noun = if count == 1 { "alert" } else { "alerts" };
    let mut text = format!("{mark} [{severity}] {count} operational {noun} {verb}");
    for alert in alerts.iter().take(LISTED) {
        let since = alert.started_at.format("%Y-%m-%d %H:%M:%S UTC");
        let line = match (kind, alert.resolved_at) {
            (NoticeKind::Resolved, Some(resolved)) => format!(
                "\n• {} ({}, {}; from {since} to {}; id {})",
                alert.title,
                alert.rule,
                alert.component,
                resolved.format("%H:%M:%S UTC"),
                alert.alert_id
            ),
            _ => {
                let message: String = alert.message.chars().take(MESSAGE_CHARS).collect();
                format!(
                    "\n• {} — {} ({}, {}; since {since}; id {})",
                    alert.title, message, alert.rule, alert.component, alert.alert_id
                )
            }
        };
        text.push_str(&line);
    }
    if count > LISTED {
        text.push_str(&format!("\n… and {} more", count - LISTED));
    }
    text
}

/// The JSON a webhook receives for the same message.
pub fn event(kind: NoticeKind, severity: &str, notification_id: i64, alerts: &[AlertRow]) -> Value {
    json!({
        "event": "ops_alert_notification",
        "id": notification_id,
        "kind": kind.as_str(),
        "severity": severity,
        "alerts": alerts.iter().map(|a| json!({
            "alert_id": a.alert_id,
            "rule": a.rule,
            "title": a.title,
            "message": a.message,
            "component": a.component,
            "labels": a.labels,
            "started_at": a.started_at,
            "resolved_at": a.resolved_at,
        })).collect::<Vec<_>>(),
    })
}
