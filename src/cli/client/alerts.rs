//! `alerts`, `ack` and `clear`: operational alerts as a table — severity, rule, the
//! labels that tell one episode from another, its state, its age — and the two
//! operator actions on a firing one.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::output::{Output, Table, age};
use super::{Api, ClientError, segment};

/// Prints the active alerts (or, with `all`, the history), optionally of one rule and
/// started within `since`.
pub async fn list(
    api: &Api,
    out: &Output,
    all: bool,
    rule: Option<&str>,
    since: Option<Duration>,
    limit: u32,
) -> Result<u8, ClientError> {
    let since = since
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| Utc::now() - d);
    let alerts: Vec<Value> = if all {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(rule) = rule {
            query.push(("rule", rule.to_owned()));
        }
        if let Some(since) = since {
            query.push(("since", since.to_rfc3339()));
        }
        let answer = api.get_with("/internal/alerts/history", &query).await?;
        alerts_of(&answer)?
    } else {
        let answer = api.get("/internal/alerts/active").await?;
        alerts_of(&answer)?
            .into_iter()
            .filter(|alert| rule.is_none_or(|rule| alert["rule"] == rule))
            .filter(|alert| {
                since.is_none_or(|since| {
                    alert["started_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|started| started >= since)
                })
            })
            .collect()
    };
    if out.json {
        out.print_json(&json!({"alerts": alerts, "count": alerts.len()}));
        return Ok(0);
    }
    if alerts.is_empty() {
        println!("{}", if all { "no alerts" } else { "no active alerts" });
    } else {
        table(&alerts).print(out);
    }
    Ok(0)
}

/// The alerts of a list answer.
pub fn alerts_of(answer: &Value) -> Result<Vec<Value>, ClientError> {
    answer["alerts"]
        .as_array()
        .cloned()
        .ok_or_else(|| ClientError::Unexpected {
            what: "an alert list".into(),
            reason: "no `alerts` array".into(),
        })
}

/// Alerts as a table.
pub fn table(alerts: &[Value]) -> Table {
    let now = Utc::now();
    let mut table = Table::new(&[
        "SEVERITY", "RULE", "LABELS", "STATE", "STARTED", "ALERT ID", "TITLE",
    ]);
    for alert in alerts {
        table.row(&[
            text(&alert["severity"]),
            text(&alert["rule"]),
            labels(&alert["labels"]),
            state(alert),
            age(&alert["started_at"], now),
            text(&alert["alert_id"]),
            text(&alert["title"]),
        ]);
    }
    table
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("-").to_owned()
}

/// `engine_id=live-1,target=redis`, or `-`.
fn labels(value: &Value) -> String {
    let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
        return "-".to_owned();
    };
    map.iter()
        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or(&value.to_string())))
        .collect::<Vec<_>>()
        .join(",")
}

/// `firing`, `firing (acked)`, `firing (silenced)`, `resolved`, `cleared`.
fn state(alert: &Value) -> String {
    let state = text(&alert["state"]);
    let mut marks = Vec::new();
    if alert["acknowledged"] == true {
        marks.push("acked");
    }
    if alert["silenced"] == true {
        marks.push("silenced");
    }
    if marks.is_empty() {
        state
    } else {
        format!("{state} ({})", marks.join(", "))
    }
}

/// `ack` or `clear` of one alert; prints what it became.
pub async fn change(
    api: &Api,
    out: &Output,
    alert_id: &str,
    action: &str,
) -> Result<u8, ClientError> {
    let path = format!("/internal/alerts/{}/{action}", segment(alert_id));
    let alert = api.post(&path, None).await?;
    if out.json {
        out.print_json(&alert);
        return Ok(0);
    }
    let done = if action == "ack" {
        "acknowledged"
    } else {
        "cleared"
    };
    println!(
        "{done} {} ({} {}): {}",
        text(&alert["alert_id"]),
        text(&alert["severity"]),
        text(&alert["rule"]),
        text(&alert["title"])
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_row_shows_labels_and_marks() {
        let alert = json!({"severity": "CRITICAL", "rule": "circuit_breaker_triggered",
            "labels": {"engine_id": "live-1"}, "state": "firing", "acknowledged": true,
            "silenced": false, "alert_id": "a1",
            "started_at": (Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
            "title": "Circuit breaker triggered"});
        let rendered = table(&[alert]).render(&Output::PLAIN);
        let row = rendered.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split("  ").filter(|c| !c.is_empty()).collect();
        assert_eq!(
            cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
            vec![
                "CRITICAL",
                "circuit_breaker_triggered",
                "engine_id=live-1",
                "firing (acked)",
                "1h ago",
                "a1",
                "Circuit breaker triggered"
            ]
        );
    }
}
