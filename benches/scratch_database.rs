//! A throwaway, migrated database on the benchmark's Postgres server
//! (`BENCH_POSTGRES_URL`), dropped at the end of the run.
#![allow(dead_code)]

use monitoring_service::storage::postgres::MIGRATOR;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The database and a pool on it.
pub struct ScratchDatabase {
    server: String,
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<pid>` on `server` and migrates it.
    pub async fn create(server: &str, prefix: &str, max_connections: u32) -> Self {
        let name = format!("{prefix}_{}", std::process::id());
        let mut admin = PgConnection::connect(server).await.unwrap();
        // The name is made above from a fixed prefix and the process id.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await
            .unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        Self {
            server: server.to_owned(),
            name,
            url,
            pool,
        }
    }

    /// Closes the pool and drops the database, whoever is still connected.
    pub async fn drop_now(self) {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&self.server).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}
