//! The query parameters of `GET /api/v2/alerts`, `/alerts/groups` and `/silences`:
//! `active`, `silenced`, `inhibited`, `unprocessed` (booleans, default true),
//! `filter` (repeated; each one matcher such as `severity=~"crit.*"`, or a whole
//! `{alertname="x",env!="dev"}`) and `receiver` (a regular expression over receiver
//! names). A bad one is named in the error.

use crate::ops_alerts::Matcher;
use crate::ops_alerts::filter_syntax::{self, MatchType, ParsedMatcher};

/// Most matchers a query may hold.
const MAX_FILTERS: usize = 64;

/// What a listing asks for.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub active: bool,
    pub silenced: bool,
    pub inhibited: bool,
    pub unprocessed: bool,
    pub filter: Vec<Matcher>,
    pub receiver: Option<regex::Regex>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            active: true,
            silenced: true,
            inhibited: true,
            unprocessed: true,
            filter: Vec::new(),
            receiver: None,
        }
    }
}

/// Reads a raw query string. Unknown parameters are ignored, as Alertmanager does.
pub fn parse(query: Option<&str>) -> Result<ListQuery, String> {
    let mut parsed = ListQuery::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "active" => parsed.active = boolean("active", &value)?,
            "silenced" => parsed.silenced = boolean("silenced", &value)?,
            "inhibited" => parsed.inhibited = boolean("inhibited", &value)?,
            "unprocessed" => parsed.unprocessed = boolean("unprocessed", &value)?,
            "filter" => {
                let matchers = if value.trim_start().starts_with('{') {
                    filter_syntax::parse_matchers(&value)
                } else {
                    filter_syntax::parse_matcher(&value).map(|m| vec![m])
                }
                .map_err(|e| format!("filter: {e}"))?;
                for matcher in matchers {
                    parsed.filter.push(to_matcher(&matcher)?);
                }
                if parsed.filter.len() > MAX_FILTERS {
                    return Err(format!("filter: at most {MAX_FILTERS} matchers"));
                }
            }
            "receiver" if !value.is_empty() => {
                let anchored = format!("^(?:{value})$");
                parsed.receiver = Some(
                    regex::RegexBuilder::new(&anchored)
                        .size_limit(filter_syntax::REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|_| "receiver: not a valid regular expression".to_owned())?,
                );
            }
            _ => {}
        }
    }
    Ok(parsed)
}

fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name}: must be true or false")),
    }
}

/// A parsed filter matcher as the silences' matcher type (same semantics).
fn to_matcher(parsed: &ParsedMatcher) -> Result<Matcher, String> {
    let (is_regex, equal) = match parsed.kind {
        MatchType::Equal => (false, true),
        MatchType::NotEqual => (false, false),
        MatchType::Regexp => (true, true),
        MatchType::NotRegexp => (true, false),
    };
    Matcher::new(&parsed.name, &parsed.value, is_regex, equal)
        .ok_or_else(|| format!("filter: {}: not a valid regular expression", parsed.value))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn flags_default_to_true_and_filters_accumulate() {
        let query = parse(Some(
            "active=true&silenced=false&filter=alertname%3D%22x%22&filter=%7Bseverity%3D~%22crit.*%22%2Cenv!%3D%22dev%22%7D",
        ))
        .unwrap();
        assert!(query.active && !query.silenced && query.inhibited && query.unprocessed);
        assert_eq!(query.filter.len(), 3);
        let matches = |pairs: &[(&str, &str)]| {
            let set = labels(pairs);
            query.filter.iter().all(|m| m.matches_labels(&set))
        };
        assert!(matches(&[("alertname", "x"), ("severity", "critical")]));
        assert!(!matches(&[
            ("alertname", "x"),
            ("severity", "critical"),
            ("env", "dev")
        ]));
        assert!(!matches(&[("alertname", "y"), ("severity", "critical")]));
        assert!(parse(None).unwrap().filter.is_empty());
    }

    #[test]
    fn bad_parameters_are_named() {
        let error = |q: &str| parse(Some(q)).unwrap_err();
        assert_eq!(error("active=yes"), "active: must be true or false");
        assert!(error("filter=alertname").starts_with("filter: "));
        assert!(
            error("filter=a%3D~%22(%22").starts_with("filter: "),
            "bad regex"
        );
        assert_eq!(
            error("receiver=("),
            "receiver: not a valid regular expression"
        );
        assert!(parse(Some("receiver=")).unwrap().receiver.is_none());
    }
}
