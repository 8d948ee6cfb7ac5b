//! `silence add | ls | rm`: matchers written as `name=value` (exact), `name=~regex`, and
//! their negations `name!=value` and `name!~regex`, a duration from now, a comment and
//! an author.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output::{Output, Table, age};
use super::{Api, ClientError};

/// `rule=x` → `{"name": "rule", "value": "x", "is_regex": false, "is_equal": true}`;
/// `rule=~x.*` → a regex; `!=` and `!~` → their negations.
pub fn parse_matcher(text: &str) -> Result<Value, ClientError> {
    let usage = || {
        ClientError::Usage(format!(
            "--matcher {text}: expected name=value, name=~regex, name!=value or name!~regex"
        ))
    };
    let at = text.find(['=', '!']).ok_or_else(usage)?;
    let (name, operator) = text.split_at(at);
    let (equal, is_regex, value) = [
        ("!=", false, false),
        ("!~", false, true),
        ("=~", true, true),
        ("=", true, false),
    ]
    .into_iter()
    .find_map(|(op, equal, regex)| Some((equal, regex, operator.strip_prefix(op)?)))
    .ok_or_else(usage)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ClientError::Usage(format!(
            "--matcher {text}: the name before the operator is empty"
        )));
    }
    Ok(json!({"name": name, "value": value, "is_regex": is_regex, "is_equal": equal}))
}

/// Adds a silence from now for `duration`.
pub async fn add(
    api: &Api,
    out: &Output,
    matchers: &[String],
    duration: Duration,
    comment: &str,
    author: &str,
) -> Result<u8, ClientError> {
    let matchers = matchers
        .iter()
        .map(|m| parse_matcher(m))
        .collect::<Result<Vec<_>, _>>()?;
    let duration = chrono::Duration::from_std(duration)
        .map_err(|_| ClientError::Usage("--for: too long".into()))?;
    let now = Utc::now();
    let body = json!({"matchers": matchers, "starts_at": now, "ends_at": now + duration,
                      "comment": comment, "created_by": author});
    let silence = api.post("/internal/silences", Some(&body)).await?;
    if out.json {
        out.print_json(&silence);
    } else {
        println!(
            "silence {} added until {}",
            silence["id"].as_str().unwrap_or("-"),
            silence["ends_at"].as_str().unwrap_or("-")
        );
    }
    Ok(0)
}

/// Lists the silences not yet ended.
pub async fn list(api: &Api, out: &Output) -> Result<u8, ClientError> {
    let answer = api.get("/internal/silences").await?;
    if out.json {
        out.print_json(&answer);
        return Ok(0);
    }
    let silences = answer["silences"].as_array().cloned().unwrap_or_default();
    if silences.is_empty() {
        println!("no silences");
        return Ok(0);
    }
    let now = Utc::now();
    let mut table = Table::new(&["ID", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"]);
    for silence in &silences {
        table.row(&[
            silence["id"].as_str().unwrap_or("-").to_owned(),
            matchers_text(&silence["matchers"]),
            age(&silence["starts_at"], now),
            age(&silence["ends_at"], now),
            silence["created_by"].as_str().unwrap_or("-").to_owned(),
            silence["comment"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    table.print(out);
    Ok(0)
}

/// `rule=x,engine_id=~live-.*,env!=prod`.
fn matchers_text(matchers: &Value) -> String {
    matchers
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    let op = match (m["is_equal"] != false, m["is_regex"] == true) {
                        (true, false) => "=",
                        (true, true) => "=~",
                        (false, false) => "!=",
                        (false, true) => "!~",
                    };
                    format!(
                        "{}{op}{}",
                        m["name"].as_str().unwrap_or("?"),
                        m["value"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Deletes a silence.
pub async fn remove(api: &Api, out: &Output, id: Uuid) -> Result<u8, ClientError> {
    api.delete(&format!("/internal/silences/{id}")).await?;
    if out.json {
        out.print_json(&json!({"deleted": id}));
    } else {
        println!("silence {id} deleted");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_are_exact_or_regex_and_may_be_negated() {
        assert_eq!(
            parse_matcher("rule=heartbeat_lapsed").unwrap(),
            json!({"name": "rule", "value": "heartbeat_lapsed", "is_regex": false, "is_equal": true})
        );
        assert_eq!(
            parse_matcher("engine_id=~live-.*").unwrap(),
            json!({"name": "engine_id", "value": "live-.*", "is_regex": true, "is_equal": true})
        );
        assert_eq!(
            parse_matcher("env!=prod").unwrap(),
            json!({"name": "env", "value": "prod", "is_regex": false, "is_equal": false})
        );
        assert_eq!(
            parse_matcher("env!~pr.*").unwrap(),
            json!({"name": "env", "value": "pr.*", "is_regex": true, "is_equal": false})
        );
        assert!(parse_matcher("env!prod").is_err());
        // Only the first = splits: values may hold one.
        assert_eq!(parse_matcher("component=a=b").unwrap()["value"], "a=b");
        assert!(parse_matcher("rule").is_err());
        assert!(parse_matcher("=x").is_err());
        assert_eq!(
            matchers_text(&json!([
                parse_matcher("rule=x").unwrap(),
                parse_matcher("engine_id=~l.*").unwrap(),
                parse_matcher("env!=prod").unwrap(),
                parse_matcher("env!~d.*").unwrap()
            ])),
            "rule=x,engine_id=~l.*,env!=prod,env!~d.*"
        );
    }
}
