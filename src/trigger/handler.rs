//! The trigger handler: claims a batch's triggers (a `strategy_trigger_logs` row each by
//! its unique `dedup_key`, in one transaction with the strategies' trigger state, so two
//! replicas or a retry after a crash can never both deliver), renders the messages,
//! delivers to every channel concurrently and records each delivery's status, attempts
//! and error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::metrics::Metrics;
use crate::notify::{
    AlertFacts, Channel, Delivery, DeliveryStatus, Notifier, OutgoingAlert, render,
};
use crate::storage::strategy_state;
use crate::storage::trigger_logs::{self, NewTriggerLog, PendingLog};
use crate::strategy::{CompiledStrategy, StrategyIndex, TriggerMode, store};

/// How many claimed triggers are delivered at once (each to all its channels).
pub const DELIVERY_CONCURRENCY: usize = 64;

/// Triggers claimed by the first transaction of a batch: few, so the first alerts go
/// out early. Each next transaction claims twice as many, up to [`MAX_CLAIM_CHUNK`], so
/// a big batch takes few round trips.
pub const FIRST_CLAIM_CHUNK: usize = 25;
pub const MAX_CLAIM_CHUNK: usize = 1000;

/// A trigger the batch decided on: the strategy, its claim and what to say.
#[derive(Debug, Clone)]
pub struct TriggerRequest {
    pub strategy: Arc<CompiledStrategy>,
    pub dedup_key: String,
    pub facts: AlertFacts,
}

/// A trigger ready to claim: its message, channels and sanitized snapshot.
struct Prepared {
    request: TriggerRequest,
    text: String,
    channels: Vec<Channel>,
    pending: Vec<Delivery>,
    snapshot: Value,
}

/// A trigger claimed here (its log row is ours), not yet delivered.
struct ClaimedTrigger {
    log_id: i64,
    prepared: Prepared,
}

/// Claims, renders and delivers triggers.
#[derive(Debug, Clone)]
pub struct TriggerHandler {
    db: PgPool,
    notifier: Notifier,
    metrics: Arc<Metrics>,
    /// Deliveries run here, detached from the batch that claimed them; the service's
    /// shutdown waits for them within its deadline.
    tasks: TaskTracker,
    in_flight: Arc<InFlight>,
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
    pub fn new(db: PgPool, notifier: Notifier, metrics: Arc<Metrics>, tasks: TaskTracker) -> Self {
        Self {
            db,
            notifier,
            metrics,
            tasks,
            in_flight: Arc::default(),
        }
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

    /// Renders and claims a batch's triggers, all in one transaction (one statement for
    /// the logs, one for the strategies' state, one for `once` strategies): a trigger
    /// whose `dedup_key` is already taken — by another replica, or an earlier attempt —
    /// is left out. Answers the triggers claimed here.
    async fn claim(
        &self,
        requests: Vec<TriggerRequest>,
    ) -> Result<Vec<ClaimedTrigger>, sqlx::Error> {
        let prepared: Vec<Prepared> = requests.into_iter().map(prepare).collect();
        let claimed = self.claim_all(&prepared).await?;
        Ok(prepared
            .into_iter()
            .filter_map(|p| {
                claimed
                    .get(&p.request.dedup_key)
                    .map(|&log_id| ClaimedTrigger {
                        log_id,
                        prepared: p,
                    })
            })
            .collect())
    }

    /// Claims `requests` in growing chunks ([`FIRST_CLAIM_CHUNK`], then doubling), and
    /// delivers each chunk as soon as it is committed — in the background, up to
    /// [`DELIVERY_CONCURRENCY`] triggers at a time and each to all its channels
    /// concurrently, while the outcomes are written back in batches as they complete —
    /// so the first alerts go out while later ones are still being claimed, and a slow
    /// channel never holds up the batch. Answers how many were claimed here once every
    /// claim is committed; a failed claim stops the claiming, the triggers claimed
    /// before it are still delivered.
    pub async fn claim_and_deliver(
        &self,
        requests: Vec<TriggerRequest>,
    ) -> Result<usize, sqlx::Error> {
        if requests.is_empty() {
            return Ok(0);
        }
        let (claimed_tx, claimed_rx) = tokio::sync::mpsc::unbounded_channel::<ClaimedTrigger>();
        self.in_flight.runs.fetch_add(1, Ordering::SeqCst);
        let run = InFlightRun(self.in_flight.clone());
        let handler = self.clone();
        self.tasks.spawn(async move {
            let _run = run;
            let claimed = futures_util::stream::unfold(claimed_rx, |mut rx| async move {
                rx.recv().await.map(|trigger| (trigger, rx))
            });
            handler.deliver_stream(claimed).await;
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
            let got = self.claim(chunk).await?;
            claimed += got.len();
            for trigger in got {
                // The delivery task reads until this sender is dropped.
                let _ = claimed_tx.send(trigger);
            }
        }
    }

    async fn deliver_stream(&self, claimed: impl futures_util::Stream<Item = ClaimedTrigger>) {
        // Outcomes are written by a task of their own, many rows per statement, so
        // sending never waits for the database.
        let (outcomes, mut written) = tokio::sync::mpsc::channel::<(i64, Vec<Delivery>)>(1024);
        let db = self.db.clone();
        let writer = tokio::spawn(async move {
            let mut buffer = Vec::new();
            while written.recv_many(&mut buffer, 512).await > 0 {
                if let Err(error) = trigger_logs::record_deliveries(&db, &buffer).await {
                    tracing::error!(%error, rows = buffer.len(),
                        "delivery outcomes could not be recorded; they stay pending and are resumed");
                }
                buffer.clear();
            }
        });
        claimed
            .map(|c| self.deliver_one(c.log_id, c.prepared, outcomes.clone()))
            .buffer_unordered(DELIVERY_CONCURRENCY)
            .for_each(|()| async {})
            .await;
        drop(outcomes);
        if let Err(error) = writer.await {
            tracing::error!(%error, "the delivery recorder stopped");
        }
    }

    /// Delivers one claimed trigger and hands its outcome to the recorder.
    async fn deliver_one(
        &self,
        log_id: i64,
        p: Prepared,
        outcomes: tokio::sync::mpsc::Sender<(i64, Vec<Delivery>)>,
    ) {
        let strategy = &p.request.strategy;
        tracing::info!(component = "trigger", strategy_id = %strategy.id,
            frequency = %strategy.frequency, dedup_key = %p.request.dedup_key,
            channels = p.channels.len(), "trigger claimed; delivering");
        let deliveries = self.deliver(&p).await;
        let _ = outcomes.send((log_id, deliveries)).await;
    }

    /// Delivers one claimed trigger to all its channels concurrently.
    async fn deliver(&self, p: &Prepared) -> Vec<Delivery> {
        let strategy = &p.request.strategy;
        let event = trigger_event(&p.snapshot, &p.request.dedup_key, &p.text);
        let alert = OutgoingAlert {
            dedup_key: &p.request.dedup_key,
            text: &p.text,
            event: &event,
        };
        let deliveries = futures_util::future::join_all(
            p.channels.iter().map(|c| self.notifier.deliver(c, &alert)),
        )
        .await;
        for delivery in &deliveries {
            self.account(strategy.id, &strategy.frequency.to_string(), delivery);
        }
        deliveries
    }

    /// Counts a delivery's outcome and logs it, findable by strategy.
    fn account(&self, strategy_id: Uuid, frequency: &str, delivery: &Delivery) {
        let status = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending => "pending",
        };
        self.metrics
            .scheduler
            .deliveries
            .with_label_values(&[&delivery.channel, status])
            .inc();
        if delivery.status == DeliveryStatus::Delivered {
            tracing::info!(component = "delivery", strategy_id = %strategy_id, frequency,
                channel = %delivery.channel, attempts = delivery.attempts, "alert delivered");
        } else {
            tracing::warn!(component = "delivery", strategy_id = %strategy_id, frequency,
                channel = %delivery.channel, attempts = delivery.attempts,
                error = delivery.error.as_deref().unwrap_or(""), "delivery failed");
        }
    }

    /// Delivers what a crash left `pending`: trigger logs older than `grace` (longer
    /// than any delivery takes, so nothing in flight is touched) and younger than a
    /// day. Each row is locked while it is resumed (`FOR UPDATE SKIP LOCKED`), so two
    /// replicas never resume the same one. Channels are matched by position and kind
    /// against the strategy as loaded now. Answers how many deliveries were made.
    pub async fn resume_pending(
        &self,
        index: &StrategyIndex,
        grace: Duration,
    ) -> Result<usize, sqlx::Error> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut resumed = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let Some(PendingLog {
                id,
                strategy_id,
                dedup_key,
                message,
                snapshot,
                deliveries,
            }) = trigger_logs::next_pending(&mut tx, grace_ms).await?
            else {
                return Ok(resumed);
            };
            let mut deliveries = deliveries.0;
            let loaded = index.get(strategy_id);
            let channels: Vec<Channel> = loaded
                .as_ref()
                .map(|s| s.channels.to_vec())
                .unwrap_or_default();
            let frequency =
                loaded.map_or_else(|| "unknown".to_owned(), |s| s.frequency.to_string());
            let text = message.unwrap_or_default();
            let event = trigger_event(&snapshot.0, &dedup_key, &text);
            let alert = OutgoingAlert {
                dedup_key: &dedup_key,
                text: &text,
                event: &event,
            };
            for (i, delivery) in deliveries.iter_mut().enumerate() {
                if delivery.status != DeliveryStatus::Pending {
                    continue;
                }
                *delivery = match channels.get(i).filter(|c| c.kind() == delivery.channel) {
                    Some(channel) => {
                        resumed += 1;
                        self.notifier.deliver(channel, &alert).await
                    }
                    None => Delivery {
                        channel: delivery.channel.clone(),
                        status: DeliveryStatus::Failed,
                        attempts: delivery.attempts,
                        error: Some("the channel no longer exists on an active strategy".into()),
                    },
                };
                self.account(strategy_id, &frequency, delivery);
            }
            trigger_logs::set_deliveries(&mut tx, id, &deliveries).await?;
            tx.commit().await?;
            tracing::info!(component = "trigger", strategy_id = %strategy_id, frequency,
                dedup_key, "resumed pending deliveries");
        }
    }

    /// Inserts the log rows whose keys are free and records those triggers in their
    /// strategies' state (and completes `once` strategies), all in one transaction.
    /// Answers the log id of each key claimed here.
    async fn claim_all(&self, prepared: &[Prepared]) -> Result<HashMap<String, i64>, sqlx::Error> {
        if prepared.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<NewTriggerLog<'_>> = prepared
            .iter()
            .map(|p| NewTriggerLog {
                strategy_id: p.request.strategy.id,
                triggered_at: p.request.facts.triggered_at,
                dedup_key: &p.request.dedup_key,
                snapshot: &p.snapshot,
                message: &p.text,
                deliveries: &p.pending,
            })
            .collect();
        let mut tx = self.db.begin().await?;
        let claimed = trigger_logs::claim(&mut tx, &rows).await?;
        if claimed.is_empty() {
            return Ok(HashMap::new());
        }
        // One trigger per strategy per batch, so no state row is touched twice.
        let triggered: Vec<(Uuid, DateTime<Utc>)> = claimed
            .iter()
            .map(|c| (c.strategy_id, c.triggered_at))
            .collect();
        strategy_state::record_triggered(&mut tx, &triggered).await?;
        let once: Vec<Uuid> = prepared
            .iter()
            .filter(|p| p.request.strategy.trigger_mode == TriggerMode::Once)
            .map(|p| p.request.strategy.id)
            .filter(|id| triggered.iter().any(|(t, _)| t == id))
            .collect();
        store::complete(&mut tx, &once).await?;
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .map(|c| (c.dedup_key, c.log_id))
            .collect())
    }
}

/// The JSON trigger event webhooks receive, from the trigger log's snapshot: the same
/// for the first delivery and for one resumed after a crash.
fn trigger_event(snapshot: &Value, dedup_key: &str, message: &str) -> Value {
    json!({
        "event": "strategy.triggered",
        "dedup_key": dedup_key,
        "strategy_id": snapshot.get("strategy_id"),
        "strategy_name": snapshot.get("strategy_name"),
        "triggered_at": snapshot.get("triggered_at"),
        "message": message,
        "conditions": snapshot.get("conditions"),
    })
}

/// Renders the message and builds the pending deliveries and the sanitized snapshot.
fn prepare(request: TriggerRequest) -> Prepared {
    let strategy = &request.strategy;
    let rendered = render(strategy.message_template.as_deref(), &request.facts);
    if let Some(error) = &rendered.template_error {
        tracing::warn!(strategy_id = %strategy.id, %error, "message template failed; sent the default message");
    }
    let channels = strategy.channels.to_vec();
    let pending = channels
        .iter()
        .map(|c| Delivery {
            channel: c.kind().to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            error: None,
        })
        .collect();
    // Sanitized: conditions and values only — no channels, URLs or secrets.
    let snapshot = json!({
        "strategy_id": strategy.id,
        "strategy_name": &*strategy.name,
        "triggered_at": request.facts.triggered_at,
        "conditions": request.facts.conditions,
        "template_error": rendered.template_error,
    });
    Prepared {
        text: rendered.text,
        channels,
        pending,
        snapshot,
        request,
    }
}
