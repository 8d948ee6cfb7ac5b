//! The service's binary as a child process, for tests that kill it with real signals.
//! A test that fails half-way never leaves one behind: dropping it kills it.

use std::process::{Child, Command, Stdio};

/// A running `monitoring-service`, killed with SIGKILL when dropped.
pub struct Service(Child);

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
        Self(command.spawn().expect("the binary starts"))
    }

    /// SIGKILL: no shutdown, no lease released, nothing flushed.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
