//! Alertmanager's matcher syntax (`{alertname="x", severity=~"crit.*", team!=""}`), as
//! its `filter` parameters, amtool and silences write it: a port of Alertmanager
//! 0.25's `pkg/labels` `ParseMatchers` / `ParseMatcher`, held to its own test cases.
//! Values are unescaped (`\"`, `\n`, `\\`); regular expressions are anchored and their
//! compiled size bounded.

/// How a matcher compares (Alertmanager's `=`, `!=`, `=~`, `!~`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

/// One parsed matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMatcher {
    pub name: String,
    pub kind: MatchType,
    pub value: String,
}

/// The largest compiled regular expression a matcher may have.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parses a comma-separated list of matchers; a leading `{` and a trailing `}` are
/// optional, commas inside double quotes do not separate, a trailing comma is allowed.
pub fn parse_matchers(text: &str) -> Result<Vec<ParsedMatcher>, String> {
    let text = text.strip_prefix('{').unwrap_or(text);
    let text = text.strip_suffix('}').unwrap_or(text);
    let (mut inside_quotes, mut escaped) = (false, false);
    let (mut token, mut tokens) = (String::new(), Vec::new());
    for c in text.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            '"' if !escaped => inside_quotes = !inside_quotes,
            '"' => escaped = false,
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token.trim().to_owned());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses one matcher: a label name, an operator, a value (optionally quoted).
pub fn parse_matcher(text: &str) -> Result<ParsedMatcher, String> {
    let bad = || format!("bad matcher format: {text}");
    let trimmed = text.trim_start();
    let name_len = trimmed
        .char_indices()
        .find(|&(i, c)| {
            !(c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(trimmed.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let (name, rest) = trimmed.split_at(name_len);
    let rest = rest.trim_start();
    // `=~` before `=`, as Alertmanager's pattern orders them.
    let (kind, raw) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(bad());
    };
    let raw_shown = raw.trim();
    let (raw, mut expect_quote) = match raw_shown.strip_prefix('"') {
        Some(inner) => (inner, true),
        None => (raw_shown, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    let last = raw.len().saturating_sub(1);
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            }
            continue;
        }
        match c {
            '\\' if i < last => escaped = true,
            '\\' => value.push('\\'),
            '"' if !expect_quote || i < last => {
                return Err(format!(
                    "matcher value contains unescaped double quote: {raw_shown}"
                ));
            }
            '"' => expect_quote = false,
            other => value.push(other),
        }
    }
    if expect_quote {
        return Err(format!(
            "matcher value contains unescaped double quote: {raw_shown}"
        ));
    }
    if matches!(kind, MatchType::Regexp | MatchType::NotRegexp) {
        regex::RegexBuilder::new(&format!("^(?:{value})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|error| format!("error parsing regexp: {error}"))?;
    }
    Ok(ParsedMatcher {
        name: name.to_owned(),
        kind,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MatchType::*;

    fn m(name: &str, kind: MatchType, value: &str) -> ParsedMatcher {
        ParsedMatcher {
            name: name.into(),
            kind,
            value: value.into(),
        }
    }

    /// Alertmanager 0.25's `pkg/labels/parse_test.go`, case by case.
    #[test]
    fn alertmanagers_own_cases_parse_alike() {
        let cases: Vec<(&str, Vec<ParsedMatcher>)> = vec![
            (r#"{foo="bar"}"#, vec![m("foo", Equal, "bar")]),
            (r#"{foo=~"bar.*"}"#, vec![m("foo", Regexp, "bar.*")]),
            (r#"{foo!="bar"}"#, vec![m("foo", NotEqual, "bar")]),
            (r#"{foo!~"bar.*"}"#, vec![m("foo", NotRegexp, "bar.*")]),
            (
                r#"{foo="bar", baz!="quux"}"#,
                vec![m("foo", Equal, "bar"), m("baz", NotEqual, "quux")],
            ),
            (
                r#"{foo="bar",baz!~".*quux", derp="wat"}"#,
                vec![
                    m("foo", Equal, "bar"),
                    m("baz", NotRegexp, ".*quux"),
                    m("derp", Equal, "wat"),
                ],
            ),
            (r#"{foo=""}"#, vec![m("foo", Equal, "")]),
            (
                r#"{foo="bar,quux", job="job1"}"#,
                vec![m("foo", Equal, "bar,quux"), m("job", Equal, "job1")],
            ),
            (
                r#"{foo = "bar", dings != "bums", }"#,
                vec![m("foo", Equal, "bar"), m("dings", NotEqual, "bums")],
            ),
            (
                "foo=bar,dings!=bums",
                vec![m("foo", Equal, "bar"), m("dings", NotEqual, "bums")],
            ),
            (
                r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#,
                vec![m(
                    "quote",
                    Equal,
                    r#"She said: "Hi, ladies! That's gender-neutral…""#,
                )],
            ),
            (r#"statuscode=~"5..""#, vec![m("statuscode", Regexp, "5..")]),
            ("tricky=~~~", vec![m("tricky", Regexp, "~~")]),
            (
                r#"trickier==\\=\=\""#,
                vec![m("trickier", Equal, r#"=\=\=""#)],
            ),
            (
                r#"contains_quote != "\"" , contains_comma !~ "foo,bar" , "#,
                vec![
                    m("contains_quote", NotEqual, "\""),
                    m("contains_comma", NotRegexp, "foo,bar"),
                ],
            ),
            ("job=", vec![m("job", Equal, "")]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_matchers(input), Ok(want), "{input}");
        }
        let errors = [
            (
                r#"job="value"#,
                r#"matcher value contains unescaped double quote: "value"#,
            ),
            (
                r#"job=value""#,
                r#"matcher value contains unescaped double quote: value""#,
            ),
            (
                r#"trickier==\\=\=\"""#,
                r#"matcher value contains unescaped double quote: =\\=\=\"""#,
            ),
            (
                r#"contains_unescaped_quote = foo"bar"#,
                r#"matcher value contains unescaped double quote: foo"bar"#,
            ),
            (
                r#"{invalid-name = "valid label"}"#,
                r#"bad matcher format: invalid-name = "valid label""#,
            ),
            (r#""{foo=\"bar"}"#, r#"bad matcher format: "{foo=\"bar""#),
            (r#""foo=\"bar""#, r#"bad matcher format: "foo=\"bar""#),
            (r#""foo="bar"""#, r#"bad matcher format: "foo="bar"""#),
        ];
        for (input, want) in errors {
            assert_eq!(parse_matchers(input), Err(want.to_owned()), "{input}");
        }
        assert!(
            parse_matchers(r#"{foo=~"invalid[regexp"}"#)
                .unwrap_err()
                .starts_with("error parsing regexp")
        );
    }

    #[test]
    fn a_huge_regex_is_refused_not_compiled() {
        let huge = format!("x=~\"{}\"", "(a{1000}){1000}");
        assert!(
            parse_matchers(&huge)
                .unwrap_err()
                .starts_with("error parsing regexp")
        );
    }
}
