//! Reloading one strategy while 100,000 are loaded: from synapse-api's webhook
//! (`POST /internal/reload-strategies {"strategy_ids": [id]}` over HTTP to the real
//! service) to the new version swapped into the index, and from a `strategy:updated`
//! publish on Redis to the swap — side by side with the two queries a one-strategy
//! reload cannot avoid (`store::fetch` of that id) and with a full reload.
//!
//!     scripts/bench.sh reload

use std::time::{Duration, Instant};

use monitoring_service::config::Config;
use monitoring_service::http::AppState;
use monitoring_service::strategy::store;
use uuid::Uuid;

#[path = "scratch_database.rs"]
mod scratch_database;
use scratch_database::ScratchDatabase;

#[path = "strategy_seed.rs"]
mod strategy_seed;
use strategy_seed::seed_strategies;

const STRATEGIES: i64 = 100_000;
const ROUNDS: usize = 300;
const KEY: &str = "bench-key-0123456789abcdef";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and p99 of `values` (ms), printed; answers the p99.
fn summary(label: &str, mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let (median, p99) = (percentile(&values, 50.0), percentile(&values, 99.0));
    println!(
        "{label:<52} n={:<4} median {median:6.2} ms  p99 {p99:6.2} ms  max {:6.2} ms",
        values.len(),
        values[values.len() - 1]
    );
    (median, p99)
}

/// The id of seeded strategy `i` (`md5('s' || i)::uuid`, as the seed makes them).
async fn strategy_id(pool: &sqlx::PgPool, i: i64) -> Uuid {
    sqlx::query_scalar("SELECT md5('s' || $1::text)::uuid")
        .bind(i)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A new version of `id`, as synapse-api writes one.
async fn touch(pool: &sqlx::PgPool, id: Uuid) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar(
        "UPDATE strategies SET cooldown_seconds = cooldown_seconds % 600 + 1,
                updated_at = clock_timestamp()
          WHERE id = $1 RETURNING updated_at",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the index holds `version` of `id`, woken by each index swap.
async fn swapped(state: &AppState, id: Uuid, version: chrono::DateTime<chrono::Utc>) {
    let mut generations = state.index.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        while state.index.get(id).is_none_or(|s| s.version != version) {
            generations.changed().await.unwrap();
        }
    })
    .await
    .expect("the new version is swapped in within 10 s");
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list.
    }
    let Ok(server) = std::env::var("BENCH_POSTGRES_URL") else {
        eprintln!("BENCH_POSTGRES_URL is unset: run `scripts/bench.sh reload`");
        return;
    };
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_default();
    let database = ScratchDatabase::create(&server, "bench_reload", 16).await;
    let pool = database.pool.clone();
    let started = Instant::now();
    seed_strategies(&pool, STRATEGIES).await;
    println!(
        "seeded {STRATEGIES} strategies in {:.0} ms",
        ms(started.elapsed())
    );

    let config = Config::load_from_vars(
        None,
        [
            ("POSTGRES_URL", database.url.as_str()),
            ("REDIS_URL", redis_url.as_str()),
            ("MONITORING_API_KEY", KEY),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "warn"),
            ("ENABLE_WEBSOCKETS", "false"),
            ("ENABLE_SCHEDULER", "false"),
            ("INTERNAL_RATE_LIMIT_PER_MINUTE", "0"),
            ("BINANCE_BASE_URL", "http://127.0.0.1:9"),
            ("COINGECKO_BASE_URL", "http://127.0.0.1:9"),
        ],
    )
    .unwrap();
    let redis = match &config.database.redis_url {
        Some(url) => Some(
            monitoring_service::storage::redis::connect(url, Duration::from_secs(5))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let state = monitoring_service::app::build(
        config,
        pool.clone(),
        redis,
        monitoring_service::market::Clock::system(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(monitoring_service::app::serve(listener, state.clone()));
    let client = reqwest::Client::new();
    let started = Instant::now();
    while !(client
        .get(format!("http://{address}/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
        && state.live_reload.is_following())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "service ready with {} strategies loaded in {:.0} ms",
        state.index.snapshot().strategies.len(),
        ms(started.elapsed())
    );
    assert_eq!(state.index.snapshot().strategies.len(), STRATEGIES as usize);

    let mut webhook = Vec::new();
    let mut publish = Vec::new();
    let mut queries = Vec::new();
    let mut publisher = match &redis_url {
        url if url.is_empty() => None,
        url => Some(
            redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        ),
    };
    // Round 0 warms connections and is not counted.
    for round in 0..=ROUNDS {
        let i = 1 + (round as i64 * 7919) % STRATEGIES;
        let id = strategy_id(&pool, i).await;

        // The two queries alone.
        let started = Instant::now();
        let fetched = store::fetch(&pool, &[id]).await.unwrap();
        let query_time = started.elapsed();
        assert_eq!(fetched.len(), 1);

        // The webhook.
        let version = touch(&pool, id).await;
        let started = Instant::now();
        let response = client
            .post(format!("http://{address}/internal/reload-strategies"))
            .header("X-MONITORING-KEY", KEY)
            .json(&serde_json::json!({"strategy_ids": [id]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        swapped(&state, id, version).await;
        let webhook_time = started.elapsed();

        // Redis pub/sub, as every replica hears it.
        let publish_time = match &mut publisher {
            Some(connection) => {
                let version = touch(&pool, id).await;
                let message = serde_json::json!({"strategy_id": id, "action": "upsert"});
                let started = Instant::now();
                let _: i64 = redis::cmd("PUBLISH")
                    .arg("strategy:updated")
                    .arg(message.to_string())
                    .query_async(connection)
                    .await
                    .unwrap();
                swapped(&state, id, version).await;
                Some(started.elapsed())
            }
            None => None,
        };
        if round > 0 {
            queries.push(ms(query_time));
            webhook.push(ms(webhook_time));
            publish.extend(publish_time.map(ms));
        }
    }
    let (_, query_p99) = summary("store::fetch of one strategy (the two queries)", queries);
    let (_, webhook_p99) = summary("webhook -> swapped in the index", webhook);
    if !publish.is_empty() {
        summary("strategy:updated on Redis -> swapped in the index", publish);
    }
    println!(
        "ratio webhook p99 / queries p99:                     {:.1}x",
        webhook_p99 / query_p99
    );

    let mut full = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        state.loader.reload_all().await.unwrap();
        full.push(ms(started.elapsed()));
    }
    summary("full reload, nothing changed (for scale)", full);
    database.drop_now().await;
}
