//! Reading settings: the layers merged with figment into one text value per key, and a
//! [`Reader`] whose typed accessors validate a key, name it in any error (never echoing
//! its value: it may be a secret) and remember how to show it. What a section never
//! reads (SMTP's port without an SMTP host) is shown as `[unset]`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use secrecy::SecretString;

use super::ConfigError;
use super::keys::{self, KEYS, Shown};

/// Where the optional TOML layer is read from when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "monitoring.toml";

/// The merged layers, a text value per key, and what has been shown of each so far.
pub struct Reader {
    values: BTreeMap<&'static str, String>,
    shown: BTreeMap<&'static str, String>,
}

impl Reader {
    /// Merges the defaults of [`KEYS`] < the TOML file < `vars` (environment variables;
    /// names not in the table are ignored). A key in the file that is not in the table
    /// is an error naming it.
    pub fn layered<'a>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let defaults: BTreeMap<String, String> = KEYS
            .iter()
            .filter_map(|k| Some((k.name.to_ascii_lowercase(), k.default?.to_owned())))
            .collect();
        let mut figment = Figment::from(Serialized::defaults(defaults));
        match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::new(
                    "MONITORING_CONFIG",
                    format!("config file {} does not exist", path.display()),
                ));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        for (name, value) in vars {
            if keys::find(name).is_some() {
                // Values stay exact strings (a password `007` is not the number 7).
                figment = figment.merge(Serialized::default(&name.to_ascii_lowercase(), value));
            }
        }
        let merged: BTreeMap<String, Value> = figment.extract().map_err(figment_error)?;
        let mut values = BTreeMap::new();
        for (name, value) in merged {
            let upper = name.to_ascii_uppercase();
            let key = keys::find(&upper)
                .ok_or_else(|| ConfigError::new(&upper, "is not a known setting"))?;
            let text = match value {
                Value::String(_, text) => text,
                Value::Num(_, number) => match number.to_u128() {
                    Some(whole) => whole.to_string(),
                    None => number
                        .to_i128()
                        .map_or_else(|| "not a whole number".into(), |n| n.to_string()),
                },
                Value::Bool(_, flag) => flag.to_string(),
                _ => {
                    return Err(ConfigError::new(
                        key.name,
                        "invalid value: expected a string, number or boolean",
                    ));
                }
            };
            values.insert(key.name, text);
        }
        Ok(Self {
            values,
            shown: BTreeMap::new(),
        })
    }

    /// The value of `name` as written (any layer), or `None` when unset or blank.
    /// Shown according to the key's table entry.
    pub fn text(&mut self, name: &'static str) -> Option<String> {
        let value = self.values.get(name).cloned()?;
        if value.trim().is_empty() {
            return None;
        }
        self.show(name, value.clone());
        Some(value)
    }

    /// A value that has a default (so is always present); empty is allowed.
    pub fn plain(&mut self, name: &'static str) -> String {
        let value = self.values.get(name).cloned().unwrap_or_default();
        self.show(name, value.clone());
        value
    }

    /// A secret, `None` when unset or blank.
    pub fn secret(&mut self, name: &'static str) -> Option<SecretString> {
        self.text(name).map(SecretString::from)
    }

    /// A required URL with one of `schemes`, kept secret (it may carry a password).
    pub fn secret_url(
        &mut self,
        name: &'static str,
        schemes: &[&str],
    ) -> Result<Option<SecretString>, ConfigError> {
        let Some(url) = self.text(name) else {
            return Ok(None);
        };
        require_scheme(name, &url, schemes)?;
        Ok(Some(SecretString::from(url)))
    }

    /// A URL with one of `schemes`, without trailing slashes.
    pub fn url(&mut self, name: &'static str, schemes: &[&str]) -> Result<String, ConfigError> {
        let url = self.plain(name);
        require_scheme(name, &url, schemes)?;
        let url = url.trim_end_matches('/').to_owned();
        self.show(name, url.clone());
        Ok(url)
    }

    /// A whole number in `range`; `message` says what is allowed when it is not.
    pub fn number<T>(
        &mut self,
        name: &'static str,
        range: RangeInclusive<T>,
        message: &str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + Display + PartialOrd,
    {
        let text = self.values.get(name).cloned().unwrap_or_default();
        let value: T = text
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(name, "expected a whole number in range"))?;
        if !range.contains(&value) {
            return Err(ConfigError::new(name, message));
        }
        self.show(name, value.to_string());
        Ok(value)
    }

    /// A flag: true/false, 1/0, yes/no, on/off.
    pub fn flag(&mut self, name: &'static str) -> Result<bool, ConfigError> {
        let text = self.values.get(name).cloned().unwrap_or_default();
        let value = match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(ConfigError::new(name, "expected true or false")),
        };
        self.show(name, value.to_string());
        Ok(value)
    }

    /// One of `choices` (case-insensitive), answered lower-cased.
    pub fn choice(
        &mut self,
        name: &'static str,
        choices: &[&'static str],
        message: &str,
    ) -> Result<&'static str, ConfigError> {
        let text = self.plain(name).trim().to_ascii_lowercase();
        let chosen = choices
            .iter()
            .find(|c| **c == text)
            .ok_or_else(|| ConfigError::new(name, message))?;
        self.show(name, (*chosen).to_owned());
        Ok(chosen)
    }

    /// Shows `name` as `value` (its normalised form), redacted as the key's table entry
    /// says: a URL key's password and query are masked whichever reader read it.
    pub fn show(&mut self, name: &'static str, value: String) {
        let shown = match keys::find(name).map_or(Shown::Secret, |k| k.shown) {
            Shown::Plain => value,
            Shown::Secret => "[REDACTED]".to_owned(),
            Shown::Url => redact_url(&value),
            Shown::KeyCount => {
                let count = value.split(',').filter(|k| !k.trim().is_empty()).count();
                format!("[REDACTED: {count} key(s)]")
            }
        };
        self.shown.insert(name, shown);
    }

    /// Shows `name` as `shown`, already redacted by the caller.
    pub fn show_redacted(&mut self, name: &'static str, shown: String) {
        self.shown.insert(name, shown);
    }

    /// Every key in table order with how it is shown; `[unset]` where nothing was read.
    pub fn into_shown(self) -> Vec<(&'static str, String)> {
        let mut shown = self.shown;
        KEYS.iter()
            .map(|k| {
                let value = shown.remove(k.name).unwrap_or_else(|| "[unset]".into());
                (k.name, value)
            })
            .collect()
    }
}

/// Checks that `value` looks like `scheme://rest` with one of the allowed schemes.
/// The message never repeats the value: URLs carry passwords and provider keys.
pub fn require_scheme(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let expected = || {
        ConfigError::new(
            key,
            format!("must be a URL starting with {}://", schemes.join("://, ")),
        )
    };
    let (scheme, rest) = value.trim().split_once("://").ok_or_else(expected)?;
    if !schemes.contains(&scheme.to_ascii_lowercase().as_str()) || rest.is_empty() {
        return Err(expected());
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(key, "must not contain spaces"));
    }
    Ok(())
}

/// A URL with its password (and any query string, where providers put keys) masked.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[REDACTED]".to_owned();
    };
    let (authority_and_path, had_query) = match rest.split_once('?') {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let (authority, path) = match authority_and_path.find('/') {
        Some(i) => authority_and_path.split_at(i),
        None => (authority_and_path, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{user}:[REDACTED]@{host}")
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    let query = if had_query { "?[REDACTED]" } else { "" };
    format!("{scheme}://{authority}{path}{query}")
}

/// Maps a figment error (a TOML syntax error, or a file key of the wrong shape) to the
/// setting it concerns. The value is never echoed back.
fn figment_error(err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let key = err
        .path
        .last()
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_else(|| "MONITORING_CONFIG".to_owned());
    let message = match &err.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            format!("invalid value: expected {expected}")
        }
        Kind::Message(msg) => msg.clone(),
        _ => "invalid value".to_owned(),
    };
    ConfigError { key, message }
}
