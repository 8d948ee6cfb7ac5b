//! The binary as an operator runs it: exit codes, `check-config`, `migrate`, startup
//! against an unreachable database, and SIGTERM.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::process::profile_env;
use crate::support::{ScratchDatabase, eventually, redis_url};

const BINARY: &str = env!("CARGO_BIN_EXE_monitoring-service");

/// The binary with a clean environment: only what the test sets.
fn service(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .envs(profile_env())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // No monitoring.toml from the working directory.
        .current_dir(std::env::temp_dir());
    for (key, value) in vars {
        command.env(key, value);
    }
    command
}

fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    service(args, vars).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_value_exits_2_naming_the_key() {
    let out = run(
        &["serve"],
        &[
            ("POSTGRES_URL", "postgres://u:pw@127.0.0.1:1/db"),
            ("MONITORING_PORT", "not-a-port"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("MONITORING_PORT"), "{stderr}");
    assert!(!stderr.contains("not-a-port"), "{stderr}");
}

#[test]
fn a_missing_database_url_exits_2() {
    for args in [&[][..], &["serve"], &["migrate"], &["check-config"]] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("POSTGRES_URL: is required"));
    }
}

#[test]
fn check_config_prints_the_effective_config_without_secrets() {
    let out = run(
        &["check-config"],
        &[
            (
                "POSTGRES_URL",
                "postgres://svc:pg-password@db:5432/monitoring",
            ),
            ("REDIS_URL", "redis://:redis-password@cache:6379"),
            ("MONITORING_API_KEY", "api-key-0123456789abcdef"),
            ("TELEGRAM_BOT_TOKEN", "123456:bot-token"),
            ("SMTP_HOST", "mail"),
            ("SMTP_FROM", "alerts@example.com"),
            ("SMTP_PASSWORD", "smtp-password"),
            ("MONITORING_PORT", "9100"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("MONITORING_PORT=9100\n"), "{stdout}");
    assert!(stdout.contains("POSTGRES_URL=postgres://svc:[REDACTED]@db:5432/monitoring\n"));
    assert!(stdout.contains("SMTP_HOST=mail\n"));
    for secret in [
        "pg-password",
        "redis-password",
        "api-key-0123",
        "bot-token",
        "smtp-password",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
}

#[test]
fn an_unreachable_database_exits_1_after_the_startup_timeout() {
    let out = run(
        &["serve"],
        &[
            ("POSTGRES_URL", "postgres://u:pw@127.0.0.1:1/db"),
            ("STARTUP_TIMEOUT_SECONDS", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not reachable within 1s"), "{stderr}");
    assert!(!stderr.contains("pw@"), "{stderr}");
    // Every log line is JSON with a component.
    for line in stderr.lines() {
        let line: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(line["component"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn migrate_applies_and_is_idempotent() {
    let database = ScratchDatabase::create().await;
    for _ in 0..2 {
        let out = run(&["migrate"], &[("POSTGRES_URL", &database.url)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        applied,
        monitoring_service::storage::postgres::MIGRATOR
            .iter()
            .count() as i64
    );
    pool.close().await;
    database.drop_now().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_stops_the_service_with_exit_0() {
    let database = ScratchDatabase::create().await;
    let port = free_port().to_string();
    let redis = redis_url();
    let mut child = service(
        &[],
        &[
            ("POSTGRES_URL", &database.url),
            ("REDIS_URL", &redis),
            ("MONITORING_HOST", "127.0.0.1"),
            ("MONITORING_PORT", &port),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();

    let client = reqwest::Client::new();
    let ready_url = format!("http://127.0.0.1:{port}/ready");
    eventually(
        Duration::from_secs(30),
        "the service to become ready",
        || {
            let request = client.get(&ready_url).send();
            async move { request.await.ok().filter(|r| r.status() == 200) }
        },
    )
    .await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // The service promises to stop within its 10 s shutdown deadline.
    let status = eventually(Duration::from_secs(12), "the process to exit", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(0));

    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("\"signal\":\"SIGTERM\""), "{stderr}");
    assert!(stderr.contains("\"message\":\"stopped\""), "{stderr}");
    database.drop_now().await;
}
