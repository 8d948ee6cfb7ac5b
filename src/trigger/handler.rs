//! The trigger handler: claims a batch's triggers (a `strategy_trigger_logs` row each by
//! its unique `dedup_key`, in one transaction with the strategies' state, so two
//! replicas or a retry after a crash can never both claim one) and hands each claimed
//! trigger to the [`Deliverer`] under this replica's lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::decision::{Decision, TriggerContext, decide};
use super::deliverer::Deliverer;
use super::job::{Job, trigger_event};
use super::lease::DeliveryLease;
use crate::conditions::ConditionReport;
use crate::message::{AlertFacts, ConditionFacts, render};
use crate::metrics::Metrics;
use crate::notify::{Delivery, DeliveryStatus, Notifier};
use crate::storage::leases::{self, Fence, Lease};
use crate::storage::strategy_state::{self, StateUpdate};
use crate::storage::trigger_logs::{self, NewTriggerLog};
use crate::strategy::{CompiledStrategy, TriggerMode, store};

/// Triggers claimed by the first transaction of a batch: few, so the first alerts go
/// out early. Each next transaction claims twice as many, up to [`MAX_CLAIM_CHUNK`], so
/// a big batch takes few round trips.
pub const FIRST_CLAIM_CHUNK: usize = 25;
pub const MAX_CLAIM_CHUNK: usize = 1000;

/// A trigger the batch decided on: the strategy, its claim, what to say, and what the
/// decision was made on (checked again against the committed state inside the claim).
#[derive(Debug, Clone)]
pub struct TriggerRequest {
    pub strategy: Arc<CompiledStrategy>,
    pub dedup_key: String,
    pub facts: AlertFacts,
    /// The decision's inputs; the claim replaces `last_triggered_at` with the committed
    /// one and claims only if the decision still fires under the same key.
    pub context: TriggerContext,
    /// The evaluation's state, written in the claim's transaction.
    pub update: StateUpdate,
    /// The lease of the strategy's shard (`SHARD_COUNT=auto`): claimed only while it is
    /// still held under this token.
    pub fence: Option<Fence>,
}

/// When a trigger happened: its period (or close), when it fired, and whether that was
/// more than a period late.
#[derive(Debug, Clone, Copy)]
pub struct TriggerTiming {
    pub triggered_at: chrono::DateTime<chrono::Utc>,
    pub fired_at: chrono::DateTime<chrono::Utc>,
    pub late: bool,
}

impl TriggerRequest {
    /// A trigger of `strategy` under `dedup_key`, saying what `reports` observed;
    /// unfenced (the batch fences it on its shard's lease when it has one).
    pub fn new(
        strategy: Arc<CompiledStrategy>,
        dedup_key: String,
        timing: TriggerTiming,
        reports: &[ConditionReport],
        context: TriggerContext,
        update: StateUpdate,
    ) -> Self {
        let facts = AlertFacts {
            strategy_id: strategy.id.to_string(),
            strategy_name: strategy.name.to_string(),
            triggered_at: timing.triggered_at,
            fired_at: timing.fired_at,
            late: timing.late,
            conditions: reports.iter().map(ConditionFacts::from_report).collect(),
        };
        Self {
            strategy,
            dedup_key,
            facts,
            context,
            update,
            fence: None,
        }
    }
}

/// A trigger ready to claim: its message, pending deliveries and sanitized snapshot.
struct ClaimCandidate {
    request: TriggerRequest,
    text: String,
    pending: Vec<Delivery>,
    snapshot: Value,
}

/// Claims, renders and delivers triggers.
#[derive(Debug, Clone)]
pub struct TriggerHandler {
    db: PgPool,
    metrics: Arc<Metrics>,
    deliverer: Deliverer,
    /// Deliveries run here, detached from the batch that claimed them; the service's
    /// shutdown waits for them within its deadline.
    tasks: TaskTracker,
    in_flight: Arc<InFlight>,
    lease: Arc<DeliveryLease>,
}

/// Counts the delivery runs under way, so a caller can wait until none is.
#[derive(Debug, Default)]
struct InFlight {
    runs: AtomicUsize,
    idle: Notify,
}

/// One delivery run under way, until dropped.
struct InFlightRun(Arc<InFlight>);

impl Drop for InFlightRun {
    fn drop(&mut self) {
        if self.0.runs.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl TriggerHandler {
    /// A handler delivering under `lease` (this replica's).
    pub fn new(
        db: PgPool,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        tasks: TaskTracker,
        lease: Arc<DeliveryLease>,
    ) -> Self {
        Self {
            deliverer: Deliverer::new(db.clone(), notifier, metrics.clone()),
            db,
            metrics,
            tasks,
            in_flight: Arc::default(),
            lease,
        }
    }

    /// Takes over and delivers every trigger whose lease lapsed with deliveries still
    /// pending ([`super::resume`]); answers how many deliveries were sent. Returns once
    /// they are recorded.
    pub async fn resume_pending(&self) -> Result<usize, sqlx::Error> {
        super::resume::resume_pending(&self.db, &self.lease, &self.deliverer).await
    }

    /// This replica's delivery lease.
    pub fn lease(&self) -> &Arc<DeliveryLease> {
        &self.lease
    }

    /// Waits until every delivery started so far has finished (tests, benchmarks).
    pub async fn wait_for_deliveries(&self) {
        loop {
            let idle = self.in_flight.idle.notified();
            if self.in_flight.runs.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Claims `requests` in growing chunks ([`FIRST_CLAIM_CHUNK`], then doubling), and
    /// delivers each chunk as soon as it is committed — in the background, up to
    /// [`DELIVERY_CONCURRENCY`] triggers at a time and each to all its channels
    /// concurrently, every channel's outcome written as it finishes — so the first
    /// alerts go out while later ones are still being claimed, and a slow channel never
    /// holds up the batch. Answers how many were claimed here once every claim is
    /// committed; a failed claim stops the claiming, the triggers claimed before it are
    /// still delivered.
    pub async fn claim_and_deliver(
        &self,
        requests: Vec<TriggerRequest>,
    ) -> Result<usize, sqlx::Error> {
        if requests.is_empty() {
            return Ok(0);
        }
        let lease = self.lease.current().await?;
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        self.in_flight.runs.fetch_add(1, Ordering::SeqCst);
        let run = InFlightRun(self.in_flight.clone());
        let deliverer = self.deliverer.clone();
        self.tasks.spawn(async move {
            let _run = run;
            let jobs = futures_util::stream::unfold(jobs_rx, |mut rx| async move {
                rx.recv().await.map(|job| (job, rx))
            });
            deliverer.deliver_jobs(jobs).await;
        });
        // Every replica claims in the same order (by key, hence by strategy), so two
        // replicas claiming the same batch wait for each other instead of deadlocking.
        let mut requests = requests;
        requests.sort_unstable_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
        let mut claimed = 0;
        let mut requests = requests.into_iter();
        let mut chunk_size = FIRST_CLAIM_CHUNK;
        loop {
            let chunk: Vec<TriggerRequest> = requests.by_ref().take(chunk_size).collect();
            chunk_size = (chunk_size * 2).min(MAX_CLAIM_CHUNK);
            if chunk.is_empty() {
                return Ok(claimed);
            }
            let prepared: Vec<ClaimCandidate> = chunk.into_iter().map(prepare).collect();
            let got = self.claim_all(&prepared, &lease).await?;
            if !got.is_empty() {
                crate::failpoint::reached("after_claim").await;
                // Durably before the first request: a replica that takes these over
                // after a crash knows a channel may already have them.
                let ids: Vec<i64> = got.values().copied().collect();
                if let Err(error) = trigger_logs::mark_sending(&self.db, &ids, &lease).await {
                    // Sent all the same: a take-over would then not count its repeats.
                    tracing::warn!(%error,
                        "could not record that sending began");
                }
            }
            claimed += got.len();
            for p in prepared {
                if let Some(&log_id) = got.get(&p.request.dedup_key) {
                    let job = job(log_id, p, &lease);
                    tracing::info!(strategy_id = %job.strategy_id, frequency = %job.frequency,
                        dedup_key = %job.dedup_key, channels = job.targets.len(),
                        "trigger claimed; delivering");
                    // The delivery task reads until this sender is dropped.
                    let _ = jobs_tx.send(job);
                }
            }
        }
    }

    /// In one transaction: locks the strategies' state, drops the triggers the
    /// committed state no longer lets fire (another replica's trigger within the
    /// cooldown or the bar), inserts the log rows whose keys are free, writes the
    /// claimed strategies' whole state and completes `once` strategies. Answers the log
    /// id of each key claimed here.
    async fn claim_all(
        &self,
        prepared: &[ClaimCandidate],
        lease: &Lease,
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let prepared = self.fenced(&mut tx, prepared).await?;
        let ids: Vec<Uuid> = prepared.iter().map(|p| p.request.strategy.id).collect();
        let committed = strategy_state::lock_last_triggered(&mut tx, &ids).await?;
        let still_firing: Vec<&ClaimCandidate> = prepared
            .iter()
            .copied()
            .filter(|p| {
                let context = TriggerContext {
                    last_triggered_at: committed.get(&p.request.strategy.id).copied().flatten(),
                    ..p.request.context.clone()
                };
                matches!(decide(&p.request.strategy, &context),
                    Decision::Fire { dedup_key } if dedup_key == p.request.dedup_key)
            })
            .collect();
        let rows: Vec<NewTriggerLog<'_>> = still_firing
            .iter()
            .map(|p| NewTriggerLog {
                strategy_id: p.request.strategy.id,
                triggered_at: p.request.facts.triggered_at,
                dedup_key: &p.request.dedup_key,
                snapshot: &p.snapshot,
                message: &p.text,
                deliveries: &p.pending,
                lease,
            })
            .collect();
        let claimed = if rows.is_empty() {
            Vec::new()
        } else {
            trigger_logs::claim(&mut tx, &rows).await?
        };
        if claimed.is_empty() {
            return Ok(HashMap::new());
        }
        let by_key: HashMap<&str, &ClaimCandidate> = still_firing
            .iter()
            .map(|p| (p.request.dedup_key.as_str(), *p))
            .collect();
        let states: Vec<(&StateUpdate, chrono::DateTime<chrono::Utc>)> = claimed
            .iter()
            .filter_map(|c| {
                Some((
                    &by_key.get(c.dedup_key.as_str())?.request.update,
                    c.triggered_at,
                ))
            })
            .collect();
        strategy_state::record_claimed(&mut tx, chrono::Utc::now(), &states).await?;
        let once: Vec<Uuid> = claimed
            .iter()
            .filter_map(|c| by_key.get(c.dedup_key.as_str()))
            .filter(|p| p.request.strategy.trigger_mode == TriggerMode::Once)
            .map(|p| p.request.strategy.id)
            .collect();
        store::complete(&mut tx, &once).await?;
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .map(|c| (c.dedup_key, c.log_id))
            .collect())
    }
}

impl TriggerHandler {
    /// The triggers whose shard lease is still held under their token (all of them
    /// outside automatic sharding), those leases locked until the transaction ends; the
    /// others are counted and dropped.
    async fn fenced<'p>(
        &self,
        tx: &mut sqlx::PgConnection,
        prepared: &'p [ClaimCandidate],
    ) -> Result<Vec<&'p ClaimCandidate>, sqlx::Error> {
        let fences: Vec<Fence> = prepared
            .iter()
            .filter_map(|p| p.request.fence.clone())
            .collect();
        let live = leases::lock_live(tx, &fences).await?;
        let (kept, dropped): (Vec<&ClaimCandidate>, Vec<&ClaimCandidate>) = prepared
            .iter()
            .partition(|p| p.request.fence.as_ref().is_none_or(|f| live.contains(f)));
        if !dropped.is_empty() {
            self.metrics.shards.fenced.inc_by(dropped.len() as u64);
            tracing::info!(
                fenced = dropped.len(),
                "triggers not claimed: their shard's lease is no longer held here"
            );
        }
        Ok(kept)
    }
}

/// A claimed trigger as a delivery job: every channel pending, under `lease`.
fn job(log_id: i64, p: ClaimCandidate, lease: &Lease) -> Job {
    let strategy = &p.request.strategy;
    Job {
        log_id,
        strategy_id: strategy.id,
        owner: strategy.user_id,
        frequency: strategy.frequency.to_string(),
        event: trigger_event(&p.snapshot, &p.request.dedup_key, &p.text),
        dedup_key: p.request.dedup_key,
        text: p.text,
        targets: strategy.channels.iter().cloned().map(Some).collect(),
        deliveries: p.pending,
        lease: lease.clone(),
        resumed: false,
        maybe_sent: false,
    }
}

/// Renders the message and builds the pending deliveries (with each channel's
/// fingerprint) and the sanitized snapshot.
fn prepare(request: TriggerRequest) -> ClaimCandidate {
    let strategy = &request.strategy;
    let rendered = render(strategy.message_template.as_deref(), &request.facts);
    if let Some(error) = &rendered.template_error {
        tracing::warn!(strategy_id = %strategy.id, %error, "message template failed; sent the default message");
    }
    let pending = strategy
        .channels
        .iter()
        .map(|c| Delivery {
            channel: c.kind().to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            error: None,
            fingerprint: Some(c.fingerprint()),
            ambiguous: 0,
        })
        .collect();
    // Sanitized: conditions and values only — no channels, URLs or secrets.
    let snapshot = json!({
        "strategy_id": strategy.id,
        "strategy_name": &*strategy.name,
        "triggered_at": request.facts.triggered_at,
        "late": request.facts.late,
        "conditions": request.facts.conditions,
        "template_error": rendered.template_error,
    });
    ClaimCandidate {
        text: rendered.text,
        pending,
        snapshot,
        request,
    }
}
