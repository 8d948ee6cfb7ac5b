//! The deliverer: claimed (or resumed) triggers delivered to each of their channels
//! concurrently, owners taking turns, each channel's outcome written as soon as it
//! finishes — fenced by the lease the job runs under, so a replica that lost its lease
//! can no longer record, and what was delivered is never sent again by a resume.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sqlx::PgPool;
use uuid::Uuid;

use super::fair_queue::{self, FairQueue, OwnerPlaces, PlaceRequest};
use super::job::Job;
use crate::metrics::Metrics;
use crate::notify::{Delivery, DeliveryStatus, Notifier, OutgoingAlert, Place};
use crate::storage::trigger_logs::{self, Outcomes};

/// How many claimed triggers are delivered at once (each to all its channels).
pub const DELIVERY_CONCURRENCY: usize = fair_queue::TOTAL;

/// Sends delivery jobs and records their outcomes.
#[derive(Debug, Clone)]
pub struct Deliverer {
    db: PgPool,
    notifier: Notifier,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    /// A deliverer sending through `notifier` and recording in `db`.
    pub fn new(db: PgPool, notifier: Notifier, metrics: Arc<Metrics>) -> Self {
        Self {
            db,
            notifier,
            metrics,
        }
    }
}

impl Deliverer {
    /// Delivers `jobs`, shared fairly among owners, while one writer records
    /// the outcomes (many logs per statement). Returns once every job is delivered and
    /// recorded.
    pub(super) async fn deliver_jobs(&self, jobs: impl futures_util::Stream<Item = Job>) {
        // Outcomes are written by a task of their own, so sending never waits for the
        // database.
        let (outcomes, mut written) = tokio::sync::mpsc::channel::<Outcomes>(1024);
        let db = self.db.clone();
        let writer = tokio::spawn(async move {
            let mut buffer = Vec::new();
            while written.recv_many(&mut buffer, 512).await > 0 {
                // The latest state of each log wins (a log's deliveries only progress).
                let mut latest: HashMap<i64, Outcomes> = HashMap::new();
                for outcome in buffer.drain(..) {
                    latest.insert(outcome.log_id, outcome);
                }
                let rows: Vec<Outcomes> = latest.into_values().collect();
                match trigger_logs::record_deliveries(&db, &rows).await {
                    Ok(n) if (n as usize) < rows.len() => {
                        tracing::warn!(
                            fenced = rows.len() - n as usize,
                            "delivery outcomes not recorded: their lease was lost and they were taken over"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, rows = rows.len(),
                            "delivery outcomes could not be recorded; they stay pending and are resumed");
                    }
                }
            }
        });
        self.deliver_fairly(jobs, &outcomes).await;
        drop(outcomes);
        if let Err(error) = writer.await {
            tracing::error!(%error, "the delivery recorder stopped");
        }
    }

    /// Runs `jobs` as they come, owners taking turns ([`FairQueue`]): at most
    /// [`fair_queue::PER_OWNER`] of one owner's and [`DELIVERY_CONCURRENCY`] in all at
    /// once, so another owner's trigger never waits behind one owner's slow channels.
    /// A delivery waiting between attempts gives its place back and queues for it again.
    async fn deliver_fairly(
        &self,
        jobs: impl futures_util::Stream<Item = Job>,
        outcomes: &tokio::sync::mpsc::Sender<Outcomes>,
    ) {
        /// What waits in the queue: a trigger to start, or a retry to let go on.
        enum Work {
            Start(Box<Job>),
            Resume(tokio::sync::oneshot::Sender<()>),
        }
        let mut queue = FairQueue::new(fair_queue::PER_OWNER, DELIVERY_CONCURRENCY);
        let mut running = futures_util::stream::FuturesUnordered::new();
        let (places, mut requests) = tokio::sync::mpsc::unbounded_channel();
        let mut jobs = std::pin::pin!(jobs);
        let mut more = true;
        loop {
            while let Some((owner, work)) = queue.next() {
                match work {
                    Work::Start(job) => {
                        let channels = job.targets.iter().flatten().count();
                        let queue = OwnerPlaces {
                            owner,
                            requests: places.clone(),
                        };
                        let place = Place::new(Arc::new(queue), channels);
                        let delivery = self.deliver_job(*job, place.clone(), outcomes.clone());
                        running.push(async move {
                            delivery.await;
                            (owner, place.is_held())
                        });
                    }
                    Work::Resume(grant) => {
                        if grant.send(()).is_err() {
                            // Stopped while it waited: the place is free again.
                            queue.finished(&owner);
                        }
                    }
                }
            }
            if !more && running.is_empty() && queue.is_idle() {
                return;
            }
            tokio::select! {
                job = jobs.next(), if more => match job {
                    Some(job) => queue.push(job.owner, Work::Start(Box::new(job))),
                    None => more = false,
                },
                Some((owner, held)) = running.next(), if !running.is_empty() => {
                    if held {
                        queue.finished(&owner);
                    }
                }
                Some(request) = requests.recv() => match request {
                    PlaceRequest::Lent(owner) => queue.finished(&owner),
                    PlaceRequest::Wanted(owner, grant) => queue.push(owner, Work::Resume(grant)),
                },
            }
        }
    }

    /// Delivers one job to all its channels concurrently, handing the log's deliveries
    /// to the writer as each channel finishes.
    async fn deliver_job(
        &self,
        job: Job,
        place: Place,
        outcomes: tokio::sync::mpsc::Sender<Outcomes>,
    ) {
        let alert = OutgoingAlert {
            dedup_key: &job.dedup_key,
            text: &job.text,
            event: &job.event,
            owner: Some(job.owner),
            place: Some(&place),
        };
        let deliveries = Arc::new(Mutex::new(job.deliveries.clone()));
        let outcome = |deliveries: &Arc<Mutex<Vec<Delivery>>>| Outcomes {
            log_id: job.log_id,
            deliveries: deliveries.lock().expect("deliveries lock").clone(),
            lease_name: job.lease.name.clone(),
            lease_token: job.lease.token,
        };
        if job.resumed {
            // Deliveries the resume decided on (a changed channel) are recorded first.
            let _ = outcomes.send(outcome(&deliveries)).await;
        }

        let (strategy_id, frequency) = (job.strategy_id, job.frequency.as_str());
        let sends = job.targets.iter().enumerate().filter_map(|(i, target)| {
            let channel = target.as_ref()?;
            let deliveries = deliveries.clone();
            let outcomes = outcomes.clone();
            let alert = &alert;
            let outcome = &outcome;
            Some(async move {
                let mut delivery = self.notifier.deliver(channel, alert).await;
                if delivery.status == DeliveryStatus::Delivered {
                    crate::failpoint::reached("after_accept").await;
                }
                let recorded = deliveries.lock().expect("deliveries lock")[i].clone();
                // What the claim recorded identifies the channel (legacy rows: none).
                delivery.fingerprint = recorded.fingerprint;
                delivery.attempts += recorded.attempts;
                if job.maybe_sent {
                    // The previous holder may have sent it before it died.
                    delivery.ambiguous += 1;
                }
                self.account(strategy_id, frequency, &delivery);
                deliveries.lock().expect("deliveries lock")[i] = delivery;
                let _ = outcomes.send(outcome(&deliveries)).await;
            })
        });
        futures_util::future::join_all(sends).await;
    }

    /// Counts a delivery's outcome and logs it, findable by strategy.
    pub(super) fn account(&self, strategy_id: Uuid, frequency: &str, delivery: &Delivery) {
        let status = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending => {
                // Interrupted by shutdown: another replica finishes it.
                tracing::info!(strategy_id = %strategy_id, frequency,
                    channel = %delivery.channel, "delivery left pending for another replica");
                return;
            }
        };
        self.metrics
            .scheduler
            .deliveries
            .with_label_values(&[&delivery.channel, status])
            .inc();
        if delivery.ambiguous > 0 {
            self.metrics
                .scheduler
                .deliveries_ambiguous
                .with_label_values(&[&delivery.channel])
                .inc_by(u64::from(delivery.ambiguous));
            tracing::warn!(strategy_id = %strategy_id, frequency,
                channel = %delivery.channel, unanswered = delivery.ambiguous,
                "a request went unanswered: the channel may have received a duplicate");
        }
        if delivery.status == DeliveryStatus::Delivered {
            tracing::info!(strategy_id = %strategy_id, frequency,
                channel = %delivery.channel, attempts = delivery.attempts, "alert delivered");
        } else {
            tracing::warn!(strategy_id = %strategy_id, frequency,
                channel = %delivery.channel, attempts = delivery.attempts,
                error = delivery.error.as_deref().unwrap_or(""), "delivery failed");
        }
    }
}
