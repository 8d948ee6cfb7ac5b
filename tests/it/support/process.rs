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
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_monitoring-service")),
            vars,
            log,
        )
    }

    /// As [`Service::start`], under a limit of `descriptors` open files (`prlimit`,
    /// which execs the binary: the child is the service itself).
    pub fn start_with_open_files(
        vars: &[(&str, String)],
        log: &std::path::Path,
        descriptors: u32,
    ) -> Self {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={descriptors}:{descriptors}"));
        command
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_monitoring-service"));
        Self::spawn(command, vars, log)
    }

    fn spawn(mut command: Command, vars: &[(&str, String)], log: &std::path::Path) -> Self {
        command
            .env_clear()
            .envs(profile_env())
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

    /// Its peak resident memory so far (`VmHWM` of `/proc/<pid>/status`), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown, no lease released, nothing flushed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod, then waits (up to a minute) for the graceful
    /// shutdown to end; answers whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let status = super::eventually(
            std::time::Duration::from_secs(60),
            "the replica exited after SIGTERM",
            || {
                let exited = self.child.try_wait().ok().flatten();
                async move { exited }
            },
        )
        .await;
        status.success()
    }
}

/// The coverage tool's `LLVM_PROFILE_FILE` (set by `cargo llvm-cov`, unset otherwise),
/// which a cleared environment would drop: with it, a child's lines count too.
pub fn profile_env() -> Vec<(&'static str, String)> {
    std::env::var("LLVM_PROFILE_FILE")
        .map(|path| vec![("LLVM_PROFILE_FILE", path)])
        .unwrap_or_default()
}

/// The settings every real-process test starts from: Postgres, Redis, a free port, the
/// test API key, no WebSocket feed, local receivers allowed.
pub fn base_vars(postgres: &str, redis: &str) -> Vec<(&'static str, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    vec![
        ("POSTGRES_URL", postgres.to_owned()),
        ("REDIS_URL", redis.to_owned()),
        ("MONITORING_HOST", "127.0.0.1".to_owned()),
        ("MONITORING_PORT", port.to_string()),
        ("MONITORING_API_KEY", super::TEST_KEY.to_owned()),
        ("ENABLE_WEBSOCKETS", "false".to_owned()),
        ("NOTIFY_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
        ("HEALTH_CHECK_INTERVAL", "0".to_owned()),
    ]
}

/// [`base_vars`] with no scheduler, no alert log and no metric snapshots: a replica
/// that acts only when asked.
pub fn quiet_vars(postgres: &str, redis: &str) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(postgres, redis);
    vars.push(("ENABLE_SCHEDULER", "false".to_owned()));
    vars.push(("ALERT_LOG_DIR", String::new()));
    vars.push(("METRICS_SNAPSHOT_DIR", String::new()));
    vars
}

/// A fresh log file under the temporary directory, named after `what`.
pub fn temp_log(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("monitoring-{what}-{}.log", uuid::Uuid::new_v4()))
}

/// Applies the migrations to the database at `url` with the binary (`migrate`).
pub fn migrate(url: &str) {
    let migrated = Command::new(env!("CARGO_BIN_EXE_monitoring-service"))
        .arg("migrate")
        .env_clear()
        .envs(profile_env())
        .env("POSTGRES_URL", url)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
}

impl Service {
    /// `POST <path>` with the API key and a JSON body: status and JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(self.url(path))
            .header("X-MONITORING-KEY", super::TEST_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or_default())
    }

    /// Waits (up to a minute) until `/ready` answers 200.
    pub async fn wait_ready(&self) {
        super::eventually(
            std::time::Duration::from_secs(60),
            "the service ready",
            || async {
                let answer = reqwest::get(self.url("/ready")).await.ok()?;
                (answer.status() == 200).then_some(())
            },
        )
        .await;
    }

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

/// How long a dropped service has to end after SIGTERM before it is killed.
const DROP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Service {
    /// Ends the process as Kubernetes ends a pod: SIGTERM, then SIGKILL after a grace
    /// period. A graceful end also writes its coverage profile, so what the process ran
    /// counts under `scripts/coverage.sh`; a test that needs a crash calls `kill`.
    fn drop(&mut self) {
        if self.is_running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + DROP_GRACE;
            while self.is_running() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
