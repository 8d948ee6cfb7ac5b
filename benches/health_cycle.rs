//! One platform health cycle over 100 HTTP targets answering in 2, 4, … 200 ms (the
//! slowest in 200 ms), as the cycle checks them: all at once, each within its own
//! timeout. Side by side in the same run: the same targets checked one after another.
//! Shown: each cycle's wall time, the CPU time the cycle's own thread used (read from
//! `/proc/thread-self/schedstat`: the targets' server runs on other threads), and how
//! many requests the targets had in flight at once.
//!
//!     cargo bench --bench health_cycle

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use monitoring_service::config::Config;
use monitoring_service::market::{Clock, MarketData};
use monitoring_service::platform_health::{Collectors, Health, Kind, Limits, Probe, Target};

const TARGETS: u64 = 100;
const WARM_RUNS: usize = 20;

/// Requests the targets are answering right now, and the most at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

async fn answer(State(in_flight): State<Arc<InFlight>>, Path(delay_ms): Path<u64>) -> &'static str {
    let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    in_flight.most.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    in_flight.now.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

/// The targets' server, on a runtime of its own threads; answers its address.
fn start_targets(in_flight: Arc<InFlight>) -> std::net::SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route("/t/{delay_ms}", get(answer))
                .with_state(in_flight);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let nanos: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(nanos)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let in_flight = Arc::new(InFlight::default());
    let address = start_targets(in_flight.clone());
    let targets: Vec<Target> = (1..=TARGETS)
        .map(|i| Target {
            name: format!("service-{i:03}"),
            kind: Kind::Service,
            critical: false,
            probe: Probe::Http(format!("http://{address}/t/{}", i * 2)),
        })
        .collect();
    // The cycle's own thread: a current-thread runtime, as the CPU figure is this
    // thread's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let config = Config::load_from_vars(
            None,
            [("POSTGRES_URL", "postgres://bench@127.0.0.1:1/unused")],
        )
        .unwrap();
        let db = sqlx::PgPool::connect_lazy("postgres://bench@127.0.0.1:1/unused").unwrap();
        let metrics = monitoring_service::metrics::Metrics::new();
        let market = MarketData::new(
            config.market.clone(),
            None,
            Clock::system(),
            Arc::new(metrics.market.clone()),
        );
        let collectors =
            Collectors::new(db, None, market, Limits::default(), config.health.timeout);
        let cycle = |label: &'static str| {
            let collectors = collectors.clone();
            let targets = targets.clone();
            let in_flight = in_flight.clone();
            async move {
                in_flight.most.store(0, Ordering::SeqCst);
                let (wall, cpu) = (Instant::now(), thread_cpu());
                let results = collectors.check_all(&targets).await;
                let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
                let ok = results.iter().filter(|r| r.status == Health::Ok).count();
                assert_eq!(ok, targets.len(), "{label}: every target answered OK");
                (wall, cpu, in_flight.most.load(Ordering::SeqCst))
            }
        };
        let (cold_wall, cold_cpu, cold_most) = cycle("cold").await;
        let mut warm = Vec::with_capacity(WARM_RUNS);
        for _ in 0..WARM_RUNS {
            warm.push(cycle("warm").await);
        }
        warm.sort_by_key(|(wall, _, _)| *wall);
        let median = warm[WARM_RUNS / 2];
        let slowest = warm[WARM_RUNS - 1];
        let most_cpu = warm.iter().map(|(_, cpu, _)| *cpu).max().unwrap();
        let mut cpus: Vec<Duration> = warm.iter().map(|(_, cpu, _)| *cpu).collect();
        cpus.sort();

        in_flight.most.store(0, Ordering::SeqCst);
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for target in &targets {
            assert_eq!(collectors.check(target).await.status, Health::Ok);
        }
        let (sequential_wall, sequential_cpu) = (wall.elapsed(), thread_cpu() - cpu);
        let sequential_most = in_flight.most.load(Ordering::SeqCst);

        println!("health cycle, {TARGETS} HTTP targets, slowest answers in 200 ms");
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            "", "wall", "own CPU", "in flight"
        );
        let row = |name: &str, wall: Duration, cpu: Duration, most: usize| {
            println!("{name:<34} {:>10} {:>10} {most:>10}", ms(wall), ms(cpu));
        };
        row(
            "concurrent, cold (connecting)",
            cold_wall,
            cold_cpu,
            cold_most,
        );
        row(
            &format!("concurrent, warm median of {WARM_RUNS}"),
            median.0,
            cpus[WARM_RUNS / 2],
            median.2,
        );
        row("concurrent, warm slowest", slowest.0, most_cpu, slowest.2);
        row(
            "one after another (warm)",
            sequential_wall,
            sequential_cpu,
            sequential_most,
        );
    });
}
