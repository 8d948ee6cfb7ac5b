//! A PostgreSQL cluster and a Redis server of a test's own, which it can stop and start
//! again (`pg_ctl stop`/`start`, `redis-server` killed and restarted) without touching
//! the servers every other test shares. The binaries are those the test command
//! installed (`TEST_PG_BINDIR`, else the newest under /usr/lib/postgresql).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pg_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("TEST_PG_BINDIR") {
        return dir.into();
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries under /usr/lib/postgresql (or TEST_PG_BINDIR)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect("an initdb under /usr/lib/postgresql")
}

/// Runs `program` as the `postgres` user when we are root (initdb and postgres refuse
/// to run as root).
fn as_pg_user(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL cluster in a temporary directory, on its own port.
pub struct OwnPostgres {
    bindir: PathBuf,
    data: PathBuf,
    pub port: u16,
    pub url: String,
}

impl OwnPostgres {
    /// initdb, start, and a `monitoring` database.
    pub fn start() -> Self {
        let bindir = pg_bindir();
        let dir = std::env::temp_dir().join(format!("own-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        // The postgres user must reach and own its directory.
        let _ = Command::new("chmod").arg("o+rwx").arg(&dir).status();
        let initdb = as_pg_user(&bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "monitoring", "--auth=trust", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb");
        let port = free_port();
        let postgres = OwnPostgres {
            url: format!("postgres://monitoring@127.0.0.1:{port}/postgres"),
            bindir,
            data,
            port,
        };
        postgres.start_again();
        postgres
    }

    /// `pg_ctl start` on the same data and port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
            self.port
        );
        let started = as_pg_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(started.success(), "pg_ctl start");
    }

    /// `pg_ctl stop -m fast`: connections are closed, new ones refused.
    pub fn stop(&self) {
        let stopped = as_pg_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(stopped.success(), "pg_ctl stop");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(dir) = self.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A `redis-server` on its own port, without persistence.
pub struct OwnRedis {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = free_port();
        let mut redis = OwnRedis {
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        };
        redis.start_again().await;
        redis
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub async fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        eventually(
            Duration::from_secs(10),
            "redis-server listening",
            || async {
                tokio::net::TcpStream::connect(&address)
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await;
    }

    /// SIGKILL: the server is gone, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
