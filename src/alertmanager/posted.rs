//! The body of `POST /api/v2/alerts` (Alertmanager 0.25's `postableAlerts`): an array
//! of `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`. Read by hand from
//! JSON so every problem names its field (`[2].labels.alertname`); as Alertmanager
//! does, the valid alerts of a batch are kept and the invalid ones reported.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ops_alerts::PostedAlert;

/// Most labels (or annotations) one alert may carry.
const MAX_PAIRS: usize = 64;
/// Longest label or annotation value, and generator URL.
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Reads a posted batch: the valid alerts, and one message per invalid one, naming
/// its field. A body that is not an array is one error.
pub fn parse_alerts(body: &Value) -> (Vec<PostedAlert>, Vec<String>) {
    let Some(items) = body.as_array() else {
        return (
            Vec::new(),
            vec!["alerts: must be an array of alerts".to_owned()],
        );
    };
    let mut alerts = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_alert(item) {
            Ok(alert) => alerts.push(alert),
            Err(error) => errors.push(format!("[{i}]{error}")),
        }
    }
    (alerts, errors)
}

fn parse_alert(item: &Value) -> Result<PostedAlert, String> {
    let object = item.as_object().ok_or(": must be an object")?;
    let labels = match object.get("labels") {
        Some(value) => label_set(value, true).map_err(|e| format!(".labels{e}"))?,
        None => return Err(".labels: required".to_owned()),
    };
    // An empty value is no label (dropped above): an empty alertname is a missing one.
    if !labels.contains_key("alertname") {
        return Err(".labels.alertname: required".to_owned());
    }
    let annotations = match object.get("annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(value) => label_set(value, false).map_err(|e| format!(".annotations{e}"))?,
    };
    let starts_at = time(object.get("startsAt")).map_err(|e| format!(".startsAt{e}"))?;
    let ends_at = time(object.get("endsAt")).map_err(|e| format!(".endsAt{e}"))?;
    if let (Some(start), Some(end)) = (starts_at, ends_at)
        && end < start
    {
        return Err(".endsAt: must not be before startsAt".to_owned());
    }
    let generator_url = match object.get("generatorURL") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(url)) if url.len() <= MAX_VALUE_BYTES && !url.contains('\0') => {
            url.clone()
        }
        Some(_) => {
            return Err(format!(
                ".generatorURL: must be a URL of at most {MAX_VALUE_BYTES} bytes"
            ));
        }
    };
    Ok(PostedAlert {
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url,
    })
}

/// A `labelSet`: an object of text values. Label names are Prometheus' (letters,
/// digits, `_`, not starting with a digit); an empty label value means "no such label"
/// (Prometheus' own rule), so it is dropped.
fn label_set(value: &Value, are_labels: bool) -> Result<BTreeMap<String, String>, String> {
    let object = value
        .as_object()
        .ok_or(": must be an object of text values")?;
    if object.len() > MAX_PAIRS {
        return Err(format!(": at most {MAX_PAIRS} entries"));
    }
    let mut set = BTreeMap::new();
    for (name, value) in object {
        let text = value
            .as_str()
            .ok_or_else(|| format!(".{name}: must be text"))?;
        if are_labels && !is_label_name(name) {
            return Err(format!(
                ".{name}: not a label name (letters, digits and _, not starting with a digit)"
            ));
        }
        if name.contains('\0') || text.contains('\0') {
            return Err(format!(".{name}: must not contain a NUL character"));
        }
        if text.len() > MAX_VALUE_BYTES {
            return Err(format!(".{name}: at most {MAX_VALUE_BYTES} bytes"));
        }
        if are_labels && text.is_empty() {
            continue;
        }
        set.insert(name.clone(), text.to_owned());
    }
    Ok(set)
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An RFC 3339 time; absent, `null` and Go's zero time (`0001-01-01T00:00:00Z`, what
/// amtool sends for a time it was not given) are "not given".
pub fn time(value: Option<&Value>) -> Result<Option<DateTime<Utc>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let at = DateTime::parse_from_rfc3339(text)
                .map_err(|_| ": must be an RFC 3339 time".to_owned())?
                .with_timezone(&Utc);
            Ok((at.timestamp() > ZERO_TIME).then_some(at))
        }
        Some(_) => Err(": must be an RFC 3339 time".to_owned()),
    }
}

/// Go's zero `time.Time` in Unix seconds; anything at or before it means "no time".
const ZERO_TIME: i64 = -62_135_596_800;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<String> {
        parse_alerts(&body).1
    }

    #[test]
    fn a_full_alert_is_read() {
        let (alerts, errors) = parse_alerts(&json!([{
            "labels": {"alertname": "HighLatency", "severity": "critical", "empty": ""},
            "annotations": {"summary": "p99 over 1 s"},
            "startsAt": "2026-12-07T10:00:00Z",
            "endsAt": "2026-12-07T12:05:00.123+01:00",
            "generatorURL": "http://prometheus/graph"
        }]));
        assert!(errors.is_empty(), "{errors:?}");
        let alert = &alerts[0];
        assert_eq!(alert.labels.len(), 2, "an empty label value is no label");
        assert_eq!(alert.annotations["summary"], "p99 over 1 s");
        assert_eq!(
            alert.starts_at.unwrap().to_rfc3339(),
            "2026-12-07T10:00:00+00:00"
        );
        assert_eq!(
            alert.ends_at.unwrap().to_rfc3339(),
            "2026-12-07T11:05:00.123+00:00"
        );
        assert_eq!(alert.generator_url, "http://prometheus/graph");
    }

    #[test]
    fn go_zero_times_are_not_given() {
        let (alerts, _) = parse_alerts(&json!([{
            "labels": {"alertname": "x"},
            "startsAt": "0001-01-01T00:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z"
        }]));
        assert_eq!((alerts[0].starts_at, alerts[0].ends_at), (None, None));
    }

    #[test]
    fn each_bad_alert_names_its_field_and_the_good_ones_stay() {
        let (alerts, errors) = parse_alerts(&json!([
            {"labels": {"alertname": "ok"}},
            {"labels": {"severity": "critical"}},
            {"labels": {"alertname": "x"}, "startsAt": "yesterday"},
            {"labels": {"alertname": "x", "bad-name": "v"}},
            {"labels": {"alertname": 3}},
            {"labels": {"alertname": "x"}, "startsAt": "2026-12-07T10:00:00Z",
             "endsAt": "2026-12-07T09:00:00Z"},
            "text",
            {"annotations": {}},
            {"labels": {"alertname": "x"}, "annotations": {"summary": ["a"]}},
            {"labels": {"alertname": ""}},
        ]));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            errors,
            [
                "[1].labels.alertname: required",
                "[2].startsAt: must be an RFC 3339 time",
                "[3].labels.bad-name: not a label name (letters, digits and _, not starting with a digit)",
                "[4].labels.alertname: must be text",
                "[5].endsAt: must not be before startsAt",
                "[6]: must be an object",
                "[7].labels: required",
                "[8].annotations.summary: must be text",
                "[9].labels.alertname: required",
            ]
        );
        assert_eq!(
            errors_of_non_array(),
            ["alerts: must be an array of alerts"]
        );
    }

    fn errors_of_non_array() -> Vec<String> {
        errors(json!({"labels": {}}))
    }
}
