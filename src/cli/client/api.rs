//! The operator CLI's connection to a running service: its base URL and API key (from
//! `MONITORING_URL` / `MONITORING_API_KEY`, or `--url` / `--key-file` — never a server
//! setting), JSON requests to `/internal`, and one error type whose `Display` is the
//! one line the CLI prints on failure.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The header the service reads the API key from.
const KEY_HEADER: &str = "X-MONITORING-KEY";

/// Where the service is and how to prove who we are.
pub struct Api {
    base: String,
    key: Option<SecretString>,
    http: reqwest::Client,
}

/// Why a request did not give an answer we can use. Each variant's text is one line
/// for an operator, with no secret in it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the service at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("unauthorized: the service refused the API key (set MONITORING_API_KEY or --key-file)")]
    Unauthorized,
    #[error("this server does not offer {method} {path} (an older version?)")]
    UnknownRoute { method: Method, path: String },
    #[error("{message} ({code})")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the service answered {what} that is not what this CLI expects: {reason}")]
    Unexpected { what: String, reason: String },
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// Whether the service could not be reached at all (exit code 3).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

impl Api {
    /// A client of `base` (e.g. `http://127.0.0.1:9000`), sending `key` when given;
    /// `timeout` bounds each request (streams excepted).
    pub fn new(
        base: &str,
        key: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::Usage(format!("--url {base}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Usage(format!(
                "--url {base}: must start with http:// or https://"
            )));
        }
        let http = crate::outbound::client_builder(timeout)
            .read_timeout(timeout)
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { base, key, http })
    }

    /// The base URL as shown in messages: without a password, should it hold one.
    fn shown_base(&self) -> String {
        match reqwest::Url::parse(&self.base) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.as_str().trim_end_matches('/').to_owned()
            }
            _ => self.base.clone(),
        }
    }

    /// A request to `path` (under the base URL) carrying the key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.header(KEY_HEADER, key.expose_secret());
        }
        request
    }

    /// `GET path`: the JSON answer.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, &[], None).await
    }

    /// `GET path?query` (each pair escaped): the JSON answer.
    pub async fn get_with(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        self.send(Method::GET, path, query, None).await
    }

    /// `POST path` with an optional JSON body: the JSON answer.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        self.send(Method::POST, path, &[], body).await
    }

    /// `DELETE path`; `Value::Null` when the answer has no body.
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::DELETE, path, &[], None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut request = self.request(method.clone(), path).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let response = self.check(&method, path, response).await?;
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            what: format!("{method} {path}"),
            reason: e.to_string(),
        })
    }

    /// `response` when it is a success; otherwise the error it stands for.
    pub async fn check(
        &self,
        method: &Method,
        path: &str,
        response: Response,
    ) -> Result<Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["error"].as_str().unwrap_or_default().to_owned();
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        // An older server answers `not_found` / "no such route" for a path it lacks.
        let unknown_route =
            code == "unknown_route" || (code == "not_found" && message == "no such route");
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized,
            StatusCode::NOT_FOUND if unknown_route => ClientError::UnknownRoute {
                method: method.clone(),
                path: path.split('?').next().unwrap_or(path).to_owned(),
            },
            _ if code.is_empty() => ClientError::Refused {
                status,
                code: status.as_u16().to_string(),
                message: status.canonical_reason().unwrap_or("error").to_owned(),
            },
            _ => ClientError::Refused {
                status,
                code,
                message,
            },
        })
    }

    /// The error for a request that got no answer.
    pub fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        let reason = if error.is_timeout() {
            "timed out".to_owned()
        } else {
            // The innermost cause says it best ("Connection refused (os error 111)"),
            // and unlike reqwest's own text it carries no URL.
            let mut cause: &dyn std::error::Error = error;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            cause.to_string()
        };
        ClientError::Unreachable {
            url: self.shown_base(),
            reason,
        }
    }
}

/// The API key: the file's first line when `key_file` is given, else the first key of
/// `MONITORING_API_KEY` (the server accepts several, comma-separated), else none.
pub fn api_key(key_file: Option<&Path>) -> Result<Option<SecretString>, ClientError> {
    let text = match key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("--key-file {}: {e}", path.display())))?,
        None => std::env::var("MONITORING_API_KEY").unwrap_or_default(),
    };
    let key = text
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .next()
        .unwrap_or_default()
        .trim();
    Ok((!key.is_empty()).then(|| SecretString::from(key.to_owned())))
}
