//! Shared test plumbing: the real server on 127.0.0.1:0 against the real Postgres and
//! Redis that `scripts/test.sh` starts, and throwaway databases for the binary's tests.

pub mod analysis_setup;
pub mod cli_runner;
pub mod golden_market;
pub mod market;
pub mod own_services;
pub mod process;
pub mod recorder;
pub mod smtp_server;
pub mod strategies;
pub mod trigger_apps;

use std::net::SocketAddr;
use std::time::Duration;

use monitoring_service::app;
use monitoring_service::config::Config;
use monitoring_service::http::AppState;
use monitoring_service::storage;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::net::TcpListener;

/// The API key every test app accepts.
pub const TEST_KEY: &str = "test-key-0123456789abcdef";

/// The Postgres URL of the test command's server (panics with a hint when unset).
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_POSTGRES_URL is unset: run the tests with scripts/test.sh")
}

/// The Redis URL of the test command's server (panics with a hint when unset).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("TEST_REDIS_URL is unset: run the tests with scripts/test.sh")
}

/// The same server, another database.
pub fn url_for_database(name: &str) -> String {
    let base = postgres_url();
    let (server, _) = base.rsplit_once('/').expect("URL has a database");
    format!("{server}/{name}")
}

/// A database of its own for a test that runs the binary; dropped by [`Self::drop_now`].
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create() -> Self {
        let name = format!("scratch_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&postgres_url()).await.unwrap();
        // The name is generated above from a UUID.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap();
        Self {
            url: url_for_database(&name),
            name,
        }
    }

    /// A migrated scratch database and a pool on it.
    pub async fn migrated() -> (Self, PgPool) {
        let database = Self::create().await;
        let pool = PgPool::connect(&database.url).await.unwrap();
        monitoring_service::storage::postgres::MIGRATOR
            .run(&pool)
            .await
            .unwrap();
        (database, pool)
    }

    /// Drops the database, closing whatever is connected to it.
    pub async fn drop_now(&self) {
        let mut admin = PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

/// Configuration for an in-process test app: test key, test Redis, everything else
/// default.
pub fn test_config(with_redis: bool, extra: &[(&str, &str)]) -> Config {
    let postgres = postgres_url();
    let redis = if with_redis {
        redis_url()
    } else {
        String::new()
    };
    let mut vars = vec![
        ("POSTGRES_URL", postgres.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("MONITORING_API_KEY", TEST_KEY),
        ("LOG_FORMAT", "pretty"),
        // No test reaches the real exchanges: market data goes to a closed local port
        // unless a test points it at the simulator.
        ("ENABLE_WEBSOCKETS", "false"),
        // Batches run when a test asks (POST /internal/run/{frequency}).
        ("ENABLE_SCHEDULER", "false"),
        ("BINANCE_BASE_URL", "http://127.0.0.1:9"),
        ("BINANCE_WS_URL", "ws://127.0.0.1:9"),
        ("COINGECKO_BASE_URL", "http://127.0.0.1:9"),
        // No alert log files unless a test points them somewhere.
        ("ALERT_LOG_DIR", ""),
        ("METRICS_SNAPSHOT_DIR", ""),
        // No platform health cycle unless a test turns it on.
        ("HEALTH_CHECK_INTERVAL", "0"),
    ];
    vars.extend_from_slice(extra);
    Config::load_from_vars(None, vars).expect("test config is valid")
}

/// The real application serving on 127.0.0.1:0.
pub struct TestApp {
    pub address: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    /// Serves `pool` (and the test Redis) with the test configuration.
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, test_config(true, &[])).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config) -> Self {
        Self::spawn_with_clock(pool, config, monitoring_service::market::Clock::system()).await
    }

    /// As [`Self::spawn_with`], judging time by `clock` (a simulator's, mirrored).
    pub async fn spawn_with_clock(
        pool: PgPool,
        config: Config,
        clock: monitoring_service::market::Clock,
    ) -> Self {
        let redis = match &config.database.redis_url {
            Some(url) => Some(
                storage::redis::connect(url, Duration::from_secs(5))
                    .await
                    .expect("test Redis answers"),
            ),
            None => None,
        };
        let state = monitoring_service::app::build(config, pool, redis, clock);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(app::serve(listener, state.clone()));
        Self {
            address,
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `method path` with the test API key: the status and the JSON body.
    pub async fn internal(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .header("X-MONITORING-KEY", TEST_KEY)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `POST path` with the test API key and a JSON `body`: the status and the answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("X-MONITORING-KEY", TEST_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Polls `/ready` until it answers 200 (the initial strategy load is asynchronous)
    /// and live reload follows its channel; returns `/ready`'s body.
    pub async fn wait_ready(&self) -> serde_json::Value {
        let ready = eventually(Duration::from_secs(10), "/ready to answer 200", || async {
            let response = self.get("/ready").await;
            if response.status() == 200 {
                response.json().await.ok()
            } else {
                None
            }
        })
        .await;
        // And following announcements, caught up: no reload comes later unasked.
        eventually(Duration::from_secs(10), "live reload to follow", || async {
            self.state.live_reload.is_following().then_some(())
        })
        .await;
        ready
    }

    /// Shuts the server down and waits for it to return.
    pub async fn stop(self) -> std::io::Result<()> {
        self.state.shutdown.cancel();
        self.server.await.expect("server task does not panic")
    }
}

/// Waits until `n` replicas follow the alert events of the database `database` on the
/// test Redis.
pub async fn alert_event_followers(database: &str, n: i64) {
    let channel = format!("monitoring:ops_alert_events:{database}");
    let redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "replicas following alert events",
        || {
            let (mut redis, channel) = (redis.clone(), channel.clone());
            async move {
                let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                (subscribers == n).then_some(())
            }
        },
    )
    .await;
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A trigger log's deliveries without their channel fingerprints, after checking that
/// each delivery has one (what a resume matches channels by).
pub fn without_fingerprints(mut deliveries: serde_json::Value) -> serde_json::Value {
    for delivery in deliveries.as_array_mut().expect("deliveries are a list") {
        let fingerprint = delivery
            .as_object_mut()
            .expect("a delivery is an object")
            .remove("fingerprint");
        let fingerprint = fingerprint.and_then(|f| f.as_str().map(str::to_owned));
        assert!(
            fingerprint.is_some_and(|f| f.len() == 32),
            "a fingerprint in {delivery}"
        );
    }
    deliveries
}
