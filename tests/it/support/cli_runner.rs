//! The operator CLI as a child process: only `MONITORING_URL` and `MONITORING_API_KEY`
//! in its environment (and the coverage tool's profile path), its exit code and output.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::process::profile_env;
use super::{TEST_KEY, TestApp};

pub const BINARY: &str = env!("CARGO_BIN_EXE_monitoring-service");

/// One CLI run.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// The first line of stdout containing `needle`.
    pub fn line_with(&self, needle: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", self.stdout))
    }

    /// That line's cells (columns are two or more spaces apart).
    pub fn cells(&self, needle: &str) -> Vec<String> {
        cells(self.line_with(needle))
    }
}

/// A table line's cells (columns are two or more spaces apart).
pub fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The CLI with only the client's environment: no server setting at all.
pub fn command(url: &str, key: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .envs(profile_env())
        .env("MONITORING_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(key) = key {
        command.env("MONITORING_API_KEY", key);
    }
    command
}

/// The CLI against `url`, with `key`: its exit code and output.
pub async fn run_with(url: &str, key: Option<&str>, args: &[&str]) -> Ran {
    let output = tokio::time::timeout(Duration::from_secs(60), command(url, key, args).output())
        .await
        .expect("the CLI answers within a minute")
        .unwrap();
    Ran {
        code: output.status.code().expect("the CLI exits, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The CLI against a test app, with the test key.
pub async fn run(app: &TestApp, args: &[&str]) -> Ran {
    run_with(&app.url(""), Some(TEST_KEY), args).await
}

/// Posts an engine tick; asserts it was accepted.
pub async fn tick(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post_json("/internal/engine/ticks", &body).await;
    assert_eq!(status, 202, "{answer}");
    answer
}

/// A loopback URL where nothing listens.
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}
