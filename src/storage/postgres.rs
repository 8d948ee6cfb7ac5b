//! The Postgres pool and the embedded migrations of `migrations/`.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use super::DatabaseSettings;
use super::startup_retry::{StartupError, retry_startup};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a readiness probe or a request waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects the pool, retrying with backoff until `startup_timeout`.
pub async fn connect(
    settings: &DatabaseSettings,
    startup_timeout: Duration,
) -> Result<PgPool, StartupError> {
    let url = settings.postgres_url.expose_secret().to_owned();
    let max_connections = settings.max_connections;
    retry_startup("postgres", startup_timeout, || {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url)
    })
    .await
}

/// Applies every pending migration. Safe to run again: applied ones are skipped.
pub async fn migrate(pool: &PgPool) -> Result<(), StartupError> {
    MIGRATOR.run(pool).await.map_err(|err| StartupError {
        dependency: "migrations",
        message: err.to_string(),
    })
}

/// One round trip, for readiness.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// One round trip within `limit`, or why not (for readiness).
pub async fn ping_within(pool: &PgPool, limit: std::time::Duration) -> Result<(), String> {
    tokio::time::timeout(limit, ping(pool))
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
}
