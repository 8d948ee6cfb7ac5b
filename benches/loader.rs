//! Loading 100,000 strategies of three conditions from Postgres, side by side with
//! Postgres alone returning the same rows (`COPY … TO STDOUT`), and the memory the
//! loaded index holds per strategy. Needs a Postgres server: run it with
//! `scripts/bench.sh loader`, which provides `BENCH_POSTGRES_URL`.
//!
//!     scripts/bench.sh loader

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use monitoring_service::strategy::{Shard, StrategyIndex, StrategyLoader};
use sqlx::{Connection, PgConnection};

/// Counts live heap bytes, to measure what the index keeps.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[path = "scratch_database.rs"]
mod scratch_database;
use scratch_database::ScratchDatabase;

#[path = "strategy_seed.rs"]
mod strategy_seed;
use strategy_seed::seed_strategies;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const STRATEGIES: i64 = 100_000;
const ROUNDS: usize = 5;

/// The same columns the loader reads, for COPY.
const COPY_STRATEGIES: &str =
    "COPY (SELECT id, user_id, name, status, logic_tree::text, frequency, trigger_mode,
    cooldown_seconds, channels::text, message_template, expires_at, error, updated_at
    FROM strategies WHERE status IN ('active', 'error')) TO STDOUT";
const COPY_CONDITIONS: &str =
    "COPY (SELECT id, strategy_id, kind, params::text FROM strategy_conditions
    ORDER BY strategy_id, id) TO STDOUT";

async fn copy_out(conn: &mut PgConnection, sql: &'static str) -> usize {
    let mut stream = conn.copy_out_raw(sql).await.expect("COPY runs");
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.expect("COPY streams").len();
    }
    bytes
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list.
    }
    let Ok(server) = std::env::var("BENCH_POSTGRES_URL") else {
        eprintln!("BENCH_POSTGRES_URL is unset: run `scripts/bench.sh loader`");
        return;
    };
    let database = ScratchDatabase::create(&server, "bench_loader", 4).await;
    let (pool, url) = (database.pool.clone(), database.url.clone());
    let started = Instant::now();
    seed_strategies(&pool, STRATEGIES).await;
    println!(
        "seeded {STRATEGIES} strategies x 3 conditions in {:.0} ms",
        ms(started.elapsed())
    );

    let mut copy_conn = PgConnection::connect(&url).await.unwrap();
    let shard = Shard { index: 0, count: 1 };
    let (mut copies, mut loads) = (Vec::new(), Vec::new());
    let mut copied_bytes = 0;
    let mut bytes_per_strategy = 0.0;
    // Round 0 warms caches and is not counted.
    for round in 0..=ROUNDS {
        let started = Instant::now();
        copied_bytes = copy_out(&mut copy_conn, COPY_STRATEGIES).await
            + copy_out(&mut copy_conn, COPY_CONDITIONS).await;
        let copy = started.elapsed();

        let before = LIVE.load(Ordering::Relaxed);
        let index = Arc::new(StrategyIndex::new());
        let loader = StrategyLoader::new(pool.clone(), None, shard, index.clone());
        let started = Instant::now();
        let report = loader.reload_all().await.unwrap();
        let load = started.elapsed();
        assert_eq!(report.loaded, STRATEGIES as usize);
        assert!(report.errors.is_empty());
        drop(loader);
        let held = LIVE.load(Ordering::Relaxed) - before;
        bytes_per_strategy = held as f64 / STRATEGIES as f64;
        drop(index);
        if round > 0 {
            copies.push(copy);
            loads.push(load);
        }
    }
    let (copy, load) = (median(copies), median(loads));
    println!(
        "rows returned by COPY: {:.1} MiB",
        copied_bytes as f64 / 1048576.0
    );
    println!(
        "COPY strategies + conditions TO STDOUT (median of {ROUNDS}): {:8.1} ms",
        ms(copy)
    );
    println!(
        "loader.reload_all, cold index (median of {ROUNDS}):          {:8.1} ms",
        ms(load)
    );
    println!(
        "ratio loader / COPY:                                   {:8.2}x",
        ms(load) / ms(copy)
    );
    println!(
        "heap held by the loaded index:                         {bytes_per_strategy:8.0} bytes per strategy"
    );

    drop(copy_conn);
    database.drop_now().await;
}
