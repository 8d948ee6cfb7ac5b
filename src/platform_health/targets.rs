//! The targets of the platform health check (DESIGN §11): Postgres, Redis and the
//! Binance API (infrastructure, always critical) and the services of `HEALTH_TARGETS`
//! (`[{"name", "url", "critical"}]`, validated at startup: unique names, http(s) URLs).

use serde::Deserialize;

use super::status::Kind;

/// How a target is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `SELECT 1` on the service's pool.
    Postgres,
    /// `PING` on the service's connection.
    Redis,
    /// `GET /api/v3/ping` through the Binance upstream client.
    Binance,
    /// `GET` this URL.
    Http(String),
}

/// One target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub kind: Kind,
    pub critical: bool,
    pub probe: Probe,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Configured {
    name: String,
    url: String,
    #[serde(default)]
    critical: bool,
}

/// Names the infrastructure targets take.
const INFRASTRUCTURE: [&str; 3] = ["postgres", "redis", "binance_api"];

/// Parses `HEALTH_TARGETS`; the error names the bad entry (by index and name), never a
/// URL's credentials.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| "must be a JSON list of {\"name\", \"url\", \"critical\"}".to_owned())?;
    let mut targets: Vec<Target> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let configured: Configured = serde_json::from_value(entry).map_err(|e| {
            format!(
                "[{i}]: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            )
        })?;
        let name = configured.name.trim().to_owned();
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_name {
            return Err(format!(
                "[{i}].name: 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.'"
            ));
        }
        if INFRASTRUCTURE.contains(&name.as_str()) || targets.iter().any(|t| t.name == name) {
            return Err(format!("[{i}].name: {name} is already a target"));
        }
        let url = reqwest::Url::parse(configured.url.trim())
            .map_err(|_| format!("[{i}] ({name}).url: not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("[{i}] ({name}).url: must be an http or https URL"));
        }
        targets.push(Target {
            name,
            kind: Kind::Service,
            critical: configured.critical,
            probe: Probe::Http(url.to_string()),
        });
    }
    Ok(targets)
}

/// Every target: the infrastructure (Redis only when configured), then the services.
pub fn all_targets(services: &[Target], with_redis: bool) -> Vec<Target> {
    let infrastructure = |name: &str, probe| Target {
        name: name.to_owned(),
        kind: Kind::Infrastructure,
        critical: true,
        probe,
    };
    let mut targets = vec![infrastructure("postgres", Probe::Postgres)];
    if with_redis {
        targets.push(infrastructure("redis", Probe::Redis));
    }
    targets.push(infrastructure("binance_api", Probe::Binance));
    targets.extend(services.iter().cloned());
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_at_startup_naming_the_bad_entry() {
        let ok = parse_targets(
            r#"[{"name": "main_backend", "url": "http://backend:8000/health", "critical": true},
                {"name": "reports", "url": "https://reports.internal/health"}]"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].critical && !ok[1].critical);
        assert_eq!(
            ok[1].probe,
            Probe::Http("https://reports.internal/health".into())
        );
        let error = |text: &str| parse_targets(text).unwrap_err();
        assert!(error("{}").starts_with("must be a JSON list"));
        assert_eq!(
            error(r#"[{"name": "a", "url": "http://a/h"}, {"name": "a", "url": "http://b/h"}]"#),
            "[1].name: a is already a target"
        );
        assert_eq!(
            error(r#"[{"name": "redis", "url": "http://a/h"}]"#),
            "[0].name: redis is already a target"
        );
        assert_eq!(
            error(r#"[{"name": "a", "url": "ftp://a/h"}]"#),
            "[0] (a).url: must be an http or https URL"
        );
        assert_eq!(
            error(r#"[{"name": "a", "url": "nope"}]"#),
            "[0] (a).url: not a URL"
        );
        assert!(error(r#"[{"name": "a b", "url": "http://a/h"}]"#).starts_with("[0].name:"));
        assert!(
            error(r#"[{"name": "a", "url": "http://a/h", "extra": 1}]"#)
                .starts_with("[0]: unknown field")
        );
        assert!(error(r#"[{"url": "http://a/h"}]"#).starts_with("[0]: missing field `name`"));
        let names: Vec<String> = all_targets(&ok, true).into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "postgres",
                "redis",
                "binance_api",
                "main_backend",
                "reports"
            ]
        );
        assert_eq!(
            all_targets(&[], false).len(),
            2,
            "no Redis configured, no Redis target"
        );
    }
}
