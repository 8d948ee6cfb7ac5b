//! The service's binary as a child process, for tests that kill it with real signals.
//! A test that fails half-way never leaves one behind: dropping it kills it.

use std::process::{Child, Command, Stdio};

/// A running `monitoring-service`, killed with SIGKILL when dropped.
pub struct Service {
    child: Child,
    /// Its `MONITORING_PORT`, when the settings gave one.
    port: Option<String>,
}

impl Service {
    /// The binary with a clean environment and the given settings, logging to `log`.
    pub fn start(vars: &[(&str, String)], log: &std::path::Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_monitoring-service"));
        command
            .env_clear()
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            );
        for (key, value) in vars {
            command.env(key, value);
        }
        let port = vars
            .iter()
            .find(|(key, _)| *key == "MONITORING_PORT")
            .map(|(_, port)| port.clone());
        Self {
            child: command.spawn().expect("the binary starts"),
            port,
        }
    }

    /// `http://127.0.0.1:<its port><path>`.
    pub fn url(&self, path: &str) -> String {
        let port = self
            .port
            .as_deref()
            .expect("MONITORING_PORT in its settings");
        format!("http://127.0.0.1:{port}{path}")
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown, no lease released, nothing flushed.
    pub fn kill(self) {
        drop(self);
    }
}

/// Applies the migrations to the database at `url` with the binary (`migrate`).
pub fn migrate(url: &str) {
    let migrated = Command::new(env!("CARGO_BIN_EXE_monitoring-service"))
        .arg("migrate")
        .env_clear()
        .env("POSTGRES_URL", url)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
}

impl Service {
    /// Its `/metrics` lines.
    pub async fn metric_lines(&self) -> Vec<String> {
        let scrape = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        scrape.lines().map(str::to_owned).collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
