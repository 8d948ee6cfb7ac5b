//! Scaling out with `SHARD_COUNT=auto`, with real processes — the closest this
//! machine gets to a cluster: replicas of the binary over one Postgres and Redis, the
//! market simulator in real time, 10 s strategies and 1m candle-close strategies that
//! hold at every period and every close, and a recorder of their webhooks. The cluster
//! scales 1 → 3, is replaced one replica at a time (start new, wait ready, SIGTERM old),
//! scales 3 → 1 → 3, then loses a replica to SIGKILL. At the recorder, every period and
//! close of the graceful part arrived exactly once; after the SIGKILL every one arrived
//! at least once, a repeat only where its trigger log counts the delivery ambiguous, no
//! timer period skipped (the new holder evaluates the periods the killed replica missed)
//! and no close skipped but within the lease time after the kill.
//!
//! `ROLLING_ROUNDS=N` (default 1) repeats the scaling and the rolling replacement N
//! times: the long version (`scripts/test.sh --long`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use market_sim::SimConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::process::{Service, base_vars, migrate};
use crate::support::recorder::Recorder;
use crate::support::strategies::insert_strategy;
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

const PERIOD_MS: i64 = 10_000;
const BAR_MS: i64 = 60_000;
const LEASE_SECONDS: i64 = 4;
const TIMER_STRATEGIES: usize = 24;
const CLOSE_STRATEGIES: usize = 4;

/// The cluster under test and what it runs on.
struct Cluster {
    database: ScratchDatabase,
    pool: PgPool,
    sim: market_sim::SimHandle,
    log: PathBuf,
    replicas: Vec<Service>,
    /// `SHARD_LEASE_SECONDS` of its replicas.
    lease_seconds: i64,
}

impl Cluster {
    async fn new() -> Self {
        let database = ScratchDatabase::create().await;
        migrate(&database.url);
        let pool = PgPool::connect(&database.url).await.unwrap();
        let sim = market_sim::start(SimConfig::default()).await.unwrap();
        let log = std::env::temp_dir().join(format!("monitoring-rolling-{}.log", Uuid::new_v4()));
        Self {
            database,
            pool,
            sim,
            log,
            replicas: Vec::new(),
            lease_seconds: LEASE_SECONDS,
        }
    }

    /// A new replica in auto mode, once ready.
    async fn start(&self) -> Service {
        let mut vars = base_vars(&self.database.url, &redis_url());
        vars.push(("BINANCE_BASE_URL", self.sim.binance_url()));
        vars.push(("SHARD_COUNT", "auto".into()));
        vars.push(("SHARD_LEASE_SECONDS", self.lease_seconds.to_string()));
        let replica = Service::start(&vars, &self.log);
        replica.wait_ready().await;
        replica
    }

    async fn scale_to(&mut self, count: usize) {
        while self.replicas.len() < count {
            let replica = self.start().await;
            self.replicas.push(replica);
        }
        while self.replicas.len() > count {
            let leaving = self.replicas.remove(0);
            just_before_a_boundary().await;
            assert!(leaving.terminate().await, "a clean exit after SIGTERM");
        }
        self.settled().await;
    }

    /// Replaces every replica, one at a time, as a Deployment's rolling update does.
    async fn roll(&mut self) {
        for _ in 0..self.replicas.len() {
            let new = self.start().await;
            let old = self.replicas.remove(0);
            just_before_a_boundary().await;
            assert!(old.terminate().await, "a clean exit after SIGTERM");
            self.replicas.push(new);
        }
        self.settled().await;
    }

    /// SIGKILLs the oldest replica just before a period boundary and waits until the
    /// others hold its shards; answers when it was killed (Unix ms).
    async fn kill_one_before_a_boundary(&mut self) -> i64 {
        just_before_a_boundary().await;
        let killed_at = Utc::now().timestamp_millis();
        self.replicas.remove(0).kill();
        self.settled().await;
        killed_at
    }

    /// Stops every replica with SIGTERM (each must exit cleanly) and drops the database.
    async fn shut_down(mut self) {
        for replica in std::mem::take(&mut self.replicas) {
            assert!(replica.terminate().await, "a clean exit after SIGTERM");
        }
        self.pool.close().await;
        self.database.drop_now().await;
    }

    /// Waits until the running replicas hold every virtual shard between them, each
    /// shard once, each replica some.
    async fn settled(&self) {
        let urls: Vec<String> = self
            .replicas
            .iter()
            .map(|r| r.url("/internal/status"))
            .collect();
        eventually(Duration::from_secs(60), "the shards divided", || {
            let urls = urls.clone();
            async move {
                let mut held = Vec::new();
                for url in &urls {
                    let status: Value = reqwest::Client::new()
                        .get(url)
                        .header("X-MONITORING-KEY", TEST_KEY)
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    let mine = status["shard"]["held"].as_array()?.len();
                    if mine == 0 {
                        return None;
                    }
                    held.extend(status["shard"]["held"].as_array()?.clone());
                }
                let total = held.len();
                held.sort_by_key(|v| v.as_u64());
                held.dedup();
                (total == 256 && held.len() == 256).then_some(())
            }
        })
        .await;
    }
}

/// The strategies: `TIMER_STRATEGIES` every 10 s and `CLOSE_STRATEGIES` on each 1m close,
/// each of its own user (so they spread over the shards), every one true at every
/// evaluation and sending to `/hook`.
async fn strategies(pool: &PgPool, hook: &str) -> (Vec<Uuid>, Vec<Uuid>) {
    let channels = json!([{"type": "webhook", "url": hook, "secret": "k"}]);
    let mut timers = Vec::new();
    let mut closes = Vec::new();
    for n in 0..TIMER_STRATEGIES + CLOSE_STRATEGIES {
        let on_close = n >= TIMER_STRATEGIES;
        let condition = if on_close {
            (
                "technical_indicator",
                json!({"source": "binance", "symbol": "BTCUSDT",
                "interval": "1m", "indicator": "sma", "period": 2, "operator": "above", "value": 1}),
            )
        } else {
            (
                "price_alert",
                json!({"source": "binance", "symbol": "BTCUSDT",
                "operator": "above", "value": 1}),
            )
        };
        let (id, _) = insert_strategy(pool, Uuid::new_v4(), &[condition], None).await;
        sqlx::query(
            "UPDATE strategies SET frequency = $2, trigger_mode = 'every_time',
                    cooldown_seconds = 0, channels = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(if on_close { "candle_close" } else { "10s" })
        .bind(&channels)
        .execute(pool)
        .await
        .unwrap();
        if on_close {
            closes.push(id);
        } else {
            timers.push(id);
        }
    }
    (timers, closes)
}

/// Alerts received per (strategy, due instant in ms), from their idempotency keys.
fn received(recorder: &Recorder) -> HashMap<(Uuid, i64), usize> {
    let mut counts = HashMap::new();
    for request in recorder.received("/hook") {
        let key = request.headers["x-idempotency-key"].to_str().unwrap();
        let (id, at) = key.split_once(":at:").expect("an every_time key");
        *counts
            .entry((id.parse().unwrap(), at.parse().unwrap()))
            .or_default() += 1;
    }
    counts
}

/// The due instants (ms) in `[from, to)` on a grid of `step`.
fn grid(from: i64, to: i64, step: i64) -> Vec<i64> {
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    (0..)
        .map(|k| first + k * step)
        .take_while(|at| *at < to)
        .take(100_000)
        .collect()
}

/// Returns 300 ms before the next period boundary: a replica that leaves then hands
/// its shards over across the boundary, so their period's batch has run on neither
/// replica and only the new holder's catch-up evaluates it (positions the fault in
/// time; nothing waits on it for a state).
async fn just_before_a_boundary() {
    let now = Utc::now().timestamp_millis();
    let mut at = grid(now, i64::MAX, PERIOD_MS)[0] - 300;
    if at <= now {
        at += PERIOD_MS;
    }
    tokio::time::sleep(Duration::from_millis((at - now) as u64)).await;
}

/// Waits until every timer strategy alerted for the period that begins after now.
async fn next_period(recorder: &Recorder, timers: &[Uuid]) {
    let due = grid(Utc::now().timestamp_millis(), i64::MAX, PERIOD_MS)[0];
    eventually(Duration::from_secs(60), "the next period's alerts", || {
        let counts = received(recorder);
        let done = timers.iter().all(|id| counts.contains_key(&(*id, due)));
        async move { done.then_some(()) }
    })
    .await;
}

/// Whether the trigger log of `key` recorded a possibly repeated delivery.
async fn ambiguous(pool: &PgPool, key: &str) -> bool {
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT max((d->>'ambiguous')::bigint) FROM strategy_trigger_logs,
                jsonb_array_elements(deliveries) AS d WHERE dedup_key = $1",
    )
    .bind(key)
    .fetch_one(pool)
    .await
    .unwrap();
    count.unwrap_or(0) > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sharded_replicas_scale_roll_and_survive_a_kill_without_a_missed_or_repeated_alert() {
    let rounds: usize = std::env::var("ROLLING_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut cluster = Cluster::new().await;
    let (recorder, address) = Recorder::start().await;
    let (timers, closes) = strategies(&cluster.pool, &format!("http://{address}/hook")).await;

    cluster.scale_to(1).await;
    // Counted from the first period that begins once one replica holds every shard.
    let start = Utc::now().timestamp_millis() + 1;
    for _ in 0..rounds {
        cluster.scale_to(3).await;
        next_period(&recorder, &timers).await;
        cluster.roll().await;
        next_period(&recorder, &timers).await;
        cluster.scale_to(1).await;
        next_period(&recorder, &timers).await;
    }
    cluster.scale_to(3).await;
    next_period(&recorder, &timers).await;

    let killed_at = cluster.kill_one_before_a_boundary().await;
    // Two more periods on the survivors.
    next_period(&recorder, &timers).await;
    next_period(&recorder, &timers).await;
    let stop = Utc::now().timestamp_millis();
    for replica in std::mem::take(&mut cluster.replicas) {
        assert!(replica.terminate().await, "a clean exit after SIGTERM");
    }

    let counts = received(&recorder);
    let expected = |ids: &[Uuid], step: i64, from: i64, to: i64| -> Vec<(Uuid, i64)> {
        let dues = grid(from, to, step);
        ids.iter()
            .flat_map(|id| dues.iter().map(move |at| (*id, *at)))
            .collect()
    };
    // Graceful: every period due before the kill's period, exactly once.
    let graceful_end = killed_at - PERIOD_MS;
    let mut graceful = expected(&timers, PERIOD_MS, start, graceful_end);
    graceful.extend(expected(&closes, BAR_MS, start, graceful_end));
    let wrong: BTreeMap<String, usize> = graceful
        .iter()
        .filter_map(|(id, at)| {
            let n = counts.get(&(*id, *at)).copied().unwrap_or(0);
            (n != 1).then(|| (format!("{id}:at:{at}"), n))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "graceful part: {} of {} alerts not received exactly once: {wrong:?}",
        wrong.len(),
        graceful.len()
    );
    assert!(graceful.len() >= TIMER_STRATEGIES * 3, "{}", graceful.len());

    // After the SIGKILL: each at least once, repeats only where counted ambiguous,
    // skipped only within the lease time after the kill.
    let done_by = stop - PERIOD_MS;
    let mut after = expected(&timers, PERIOD_MS, graceful_end, done_by);
    after.extend(expected(&closes, BAR_MS, graceful_end, done_by));
    let mut skipped = Vec::new();
    let mut repeated = 0;
    for (id, at) in &after {
        let key = format!("{id}:at:{at}");
        match counts.get(&(*id, *at)).copied().unwrap_or(0) {
            0 => skipped.push((key, at - killed_at)),
            1 => {}
            _ => {
                assert!(
                    ambiguous(&cluster.pool, &key).await,
                    "{key} repeated, not counted ambiguous"
                );
                repeated += 1;
            }
        }
    }
    // A timer period the killed replica's shards missed is evaluated by the replica
    // that takes them over (late, under its own key): none is skipped. A close is
    // caught up as the last close of its series, so one within the lease may be.
    let lease_ms = LEASE_SECONDS * 1000;
    let timer_keys: Vec<String> = timers.iter().map(|id| format!("{id}:at:")).collect();
    let skipped_timers: Vec<_> = skipped
        .iter()
        .filter(|(key, _)| timer_keys.iter().any(|prefix| key.starts_with(prefix)))
        .collect();
    assert!(
        skipped_timers.is_empty(),
        "timer periods skipped: {skipped_timers:?}"
    );
    assert!(
        skipped.iter().all(|(_, since_kill)| *since_kill < lease_ms),
        "skipped beyond the lease time: {skipped:?}"
    );
    eprintln!(
        "rolling: {} graceful alerts exactly once; after SIGKILL {} expected, {} skipped \
         (within the lease), {repeated} repeated (ambiguous)",
        graceful.len(),
        after.len(),
        skipped.len()
    );
    assert!(after.len() >= TIMER_STRATEGIES * 2, "{}", after.len());
    cluster.pool.close().await;
    cluster.database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_before_a_boundary_under_a_lease_longer_than_a_period_loses_no_period() {
    // The survivor takes the killed replica's shards once their 15 s leases lapse: past
    // the next boundary, so the period of the kill has run on neither replica.
    let mut cluster = Cluster::new().await;
    cluster.lease_seconds = 15;
    let (recorder, address) = Recorder::start().await;
    let (timers, _) = strategies(&cluster.pool, &format!("http://{address}/hook")).await;
    cluster.scale_to(2).await;
    next_period(&recorder, &timers).await;
    let killed_at = cluster.kill_one_before_a_boundary().await;
    next_period(&recorder, &timers).await;
    let stop = Utc::now().timestamp_millis();
    let counts = received(&recorder);
    let dues = grid(killed_at - PERIOD_MS, stop - PERIOD_MS, PERIOD_MS);
    assert!(dues.len() >= 3, "{dues:?}");
    let missing: Vec<String> = timers
        .iter()
        .flat_map(|id| dues.iter().map(move |at| (*id, *at)))
        .filter(|key| !counts.contains_key(key))
        .map(|(id, at)| format!("{id}:at:{at}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} periods never alerted: {missing:?}",
        missing.len()
    );
    // Those caught up after the hand-over went out more than a period late, and say so.
    let late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM strategy_trigger_logs WHERE (snapshot->>'late')::boolean",
    )
    .fetch_one(&cluster.pool)
    .await
    .unwrap();
    assert!(late >= 1, "no trigger marked late");
    cluster.shut_down().await;
}
