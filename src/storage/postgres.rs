//! The Postgres pool and the embedded migrations of `migrations/`.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use super::startup_retry::{StartupError, retry_startup};
use crate::config::Config;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a readiness probe or a request waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects the pool, retrying with backoff until the startup timeout.
pub async fn connect(config: &Config) -> Result<PgPool, StartupError> {
    let url = config.postgres_url.expose_secret().to_owned();
    let max_connections = config.db_max_connections;
    retry_startup("postgres", config.startup_timeout, || {
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
