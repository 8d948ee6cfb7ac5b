//! Candle-close analysis under load: 10,000 monitored signals over 100 series (1m),
//! one close of every series at once, the simulated llm-proxy answering in 20 ms.
//! Shown, side by side in one run:
//!
//! - the claims: how long the 100 closes take to claim all 10,000 (schedule, candle)
//!   rows (target: within 1 s);
//! - with `ANALYSIS_RATE_PER_MINUTE` = 20,000 (concurrency 32): how long until every
//!   one of the 10,000 is answered (target: before the next 1m close, 60 s);
//! - with the default 600 a minute (concurrency 8): how many are answered in the 60 s
//!   until the series close again, and that the rest are skipped and counted;
//! - in both, that the proxy saw no (signal, candle) twice.
//!
//! The market clock is frozen just after the close and moved to the next close after
//! 60 real seconds: the run takes about two minutes.
//!
//!     scripts/bench.sh analysis      (or BENCH_POSTGRES_URL=… cargo bench --bench analysis)

mod scratch_database;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use market_sim::{LlmProxy, SimConfig};
use monitoring_service::analysis::{Analysis, AnalysisParts, AnalysisSettings};
use monitoring_service::config::Config;
use monitoring_service::market::{Clock, Interval, MarketData, SeriesKey, Source};
use monitoring_service::metrics::Metrics;
use monitoring_service::ops_alerts::OpsAlerts;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use scratch_database::ScratchDatabase;

const SERIES: usize = 100;
const PER_SERIES: usize = 100;
const MINUTE: i64 = 60_000;

fn symbols() -> Vec<String> {
    (0..SERIES).map(|i| format!("BENCH{i:03}USDT")).collect()
}

/// Every series' close of the candle opened at `open_time`.
fn closes(open_time: i64) -> Vec<(SeriesKey, i64)> {
    symbols()
        .into_iter()
        .map(|symbol| {
            let series = SeriesKey {
                source: Source::Binance,
                symbol: Arc::from(symbol.as_str()),
                interval: Interval::M1,
            };
            (series, open_time)
        })
        .collect()
}

async fn seed(pool: &PgPool) {
    sqlx::query("DELETE FROM workflow_schedules")
        .execute(pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut symbols_of = Vec::new();
    for symbol in symbols() {
        for _ in 0..PER_SERIES {
            ids.push(Uuid::new_v4());
            symbols_of.push(symbol.clone());
        }
    }
    sqlx::query(
        "INSERT INTO workflow_schedules (id, entity_id, trader_id, interval, symbol, max_reanalyses)
         SELECT id, gen_random_uuid(), gen_random_uuid(), '1m', symbol, 1000
           FROM unnest($1::uuid[], $2::text[]) AS u(id, symbol)",
    )
    .bind(&ids)
    .bind(&symbols_of)
    .execute(pool)
    .await
    .unwrap();
}

async fn count(pool: &PgPool, decision: &str, candle: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM monitoring_decisions WHERE decision = $1 AND candle_open_time = $2",
    )
    .bind(decision)
    .bind(candle)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// One scenario: answers (claim time, answered, skipped, time to answer all or None).
async fn scenario(
    pool: &PgPool,
    rate: u32,
    concurrency: usize,
    start_ms: i64,
) -> (Duration, i64, i64, Option<Duration>, bool) {
    seed(pool).await;
    sqlx::query("DELETE FROM monitoring_decisions")
        .execute(pool)
        .await
        .unwrap();
    let sim = market_sim::start(SimConfig {
        start_ms: Some(start_ms),
        speed: 0.0,
        extra_symbols: symbols(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let proxy = LlmProxy::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    proxy.set_latency(Duration::from_millis(20));
    let binance = sim.binance_url();
    let config = Config::load_from_vars(
        None,
        [
            ("POSTGRES_URL", "postgres://unused"),
            ("MONITORING_API_KEY", "bench-key-0123456789abcdef"),
            ("BINANCE_BASE_URL", binance.as_str()),
        ],
    )
    .unwrap();
    let clock = Clock::manual(start_ms);
    let metrics = Arc::new(Metrics::new());
    let market = MarketData::new(
        config.market.clone(),
        None,
        clock.clone(),
        Arc::new(metrics.market.clone()),
    );
    let analysis = Analysis::new(AnalysisParts {
        db: pool.clone(),
        redis: None,
        redis_url: None,
        market,
        settings: AnalysisSettings {
            url: Some(SecretString::from(proxy.url())),
            api_key: Some(SecretString::from("bench-llm-key")),
            rate_per_minute: rate,
            max_concurrency: concurrency,
            ..AnalysisSettings::default()
        },
        metrics: metrics.analysis.clone(),
        alerts: OpsAlerts::new(pool.clone()),
        replica: "bench".into(),
    });
    analysis.reload().await.unwrap();
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    analysis.start(&tasks, shutdown.clone());

    let candle = start_ms / MINUTE * MINUTE - MINUTE;
    let began = Instant::now();
    // The 100 closes of one boundary arrive together.
    let claimed = analysis.on_closes(&closes(candle)).await.unwrap();
    let claim_time = began.elapsed();
    assert_eq!(claimed, SERIES * PER_SERIES);

    // Until every claim is answered, or the next close 60 s after this one.
    let total = (SERIES * PER_SERIES) as i64;
    let mut all_answered = None;
    while began.elapsed() < Duration::from_secs(60) {
        if count(pool, "continue", candle).await == total {
            all_answered = Some(began.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if all_answered.is_none() {
        // The next close: what is still queued is superseded.
        let next = candle + MINUTE;
        sim.state.clock.set(next + MINUTE + 1_000);
        clock.set(next + MINUTE + 1_000);
        analysis.on_closes(&closes(next)).await.unwrap();
        // Let the queue drain its skips.
        let drained = Instant::now();
        while count(pool, "pending", candle).await > concurrency as i64
            && drained.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    let answered = count(pool, "continue", candle).await;
    let skipped = count(pool, "skipped", candle).await;
    let mut seen = HashSet::new();
    let unique = proxy.requests().iter().all(|r| {
        seen.insert((
            r.body["signal_id"].as_str().unwrap_or_default().to_owned(),
            r.body["candle_open_time"].as_i64().unwrap_or_default(),
        ))
    });
    (claim_time, answered, skipped, all_answered, unique)
}

fn main() {
    let server = std::env::var("BENCH_POSTGRES_URL")
        .expect("BENCH_POSTGRES_URL: run through scripts/bench.sh analysis");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let database = ScratchDatabase::create(&server, "bench_analysis", 32).await;
        // 1 s after a minute boundary.
        let start_ms = 1_800_000_000_000 + 1_000;
        println!("10,000 schedules over 100 series, one close each, proxy latency 20 ms\n");
        println!("| budget | claims of 10,000 | answered | skipped | all answered after | duplicates at the proxy |");
        println!("|---|---|---|---|---|---|");
        for (rate, concurrency) in [(20_000, 32), (600, 8)] {
            let (claims, answered, skipped, all, unique) =
                scenario(&database.pool, rate, concurrency, start_ms).await;
            println!(
                "| {rate}/min, {concurrency} at once | {:.0} ms | {answered} | {skipped} | {} | {} |",
                claims.as_secs_f64() * 1000.0,
                all.map_or("not before the next close".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
                if unique { "none" } else { "SOME" },
            );
        }
        database.drop_now().await;
    });
}
