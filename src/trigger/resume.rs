//! Resuming deliveries a dead replica left pending: only triggers whose lease lapsed
//! (or that never had one), whatever their age up to [`RESUME_MAX_AGE`], taken over
//! under this replica's lease in one statement with no lock held while delivering. Each
//! pending delivery goes to the channel the claim recorded (matched by fingerprint,
//! whatever the strategy's status now); one edited or removed since is recorded
//! `failed` ("channel changed") and not sent.

use std::time::Duration;

use sqlx::PgPool;

use super::deliverer::Deliverer;
use super::job::{Job, trigger_event};
use super::lease::DeliveryLease;
use crate::notify::{Channel, Delivery, DeliveryStatus, parse_channels};
use crate::storage::trigger_logs::{self, PendingLog};
use crate::strategy::store::{self, DeliveryTarget};
use uuid::Uuid;

/// Triggers older than this are not resumed: an alert a day late misleads more than it
/// helps.
pub const RESUME_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Triggers taken over per round.
const RESUME_BATCH: i64 = 100;

/// The error a delivery records when its channel was edited or removed after the claim.
pub const CHANNEL_CHANGED: &str = "channel changed since the trigger was claimed";

/// Takes over and delivers every trigger whose lease lapsed with deliveries still
/// pending, under `lease`; answers how many deliveries were sent. Returns once they
/// are recorded.
pub(super) async fn resume_pending(
    db: &PgPool,
    lease: &DeliveryLease,
    deliverer: &Deliverer,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    loop {
        let lease = lease.current().await?;
        let taken = trigger_logs::take_lapsed(db, &lease, RESUME_MAX_AGE, RESUME_BATCH).await?;
        if taken.is_empty() {
            return Ok(sent);
        }
        let mut jobs = Vec::with_capacity(taken.len());
        for log in taken {
            let target = store::delivery_target(db, log.strategy_id).await?;
            let job = resume_job(deliverer, log, target, &lease);
            let channels = job.targets.iter().flatten().count();
            tracing::info!(strategy_id = %job.strategy_id, frequency = %job.frequency,
                dedup_key = %job.dedup_key, channels, "resumed pending deliveries");
            sent += channels;
            jobs.push(job);
        }
        // Durably before the first request (one statement for the round).
        let ids: Vec<i64> = jobs.iter().map(|job| job.log_id).collect();
        if let Err(error) = trigger_logs::mark_sending(db, &ids, &lease).await {
            tracing::warn!(%error, "could not record that sending began");
        }
        deliverer
            .deliver_jobs(futures_util::stream::iter(jobs))
            .await;
    }
}

/// The job resuming `log`: each pending delivery matched to the strategy's channel
/// with the same fingerprint (by position and kind for rows claimed before
/// fingerprints were recorded).
fn resume_job(
    deliverer: &Deliverer,
    log: PendingLog,
    target: Option<DeliveryTarget>,
    lease: &crate::storage::leases::Lease,
) -> Job {
    let (channels, frequency, owner) = match target {
        Some(target) => (
            parse_channels(&target.channels).unwrap_or_default(),
            target.frequency,
            target.user_id,
        ),
        // The strategy is gone: nothing is sent, every delivery fails below.
        None => (Vec::new(), "unknown".to_owned(), Uuid::nil()),
    };
    let mut deliveries = log.deliveries.0;
    let mut targets = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter_mut().enumerate() {
        if delivery.status != DeliveryStatus::Pending {
            targets.push(None);
            continue;
        }
        match matching(&channels, i, delivery) {
            Some(channel) => targets.push(Some(channel.clone())),
            None => {
                *delivery = Delivery {
                    status: DeliveryStatus::Failed,
                    error: Some(CHANNEL_CHANGED.into()),
                    ..delivery.clone()
                };
                deliverer.account(log.strategy_id, &frequency, delivery);
                targets.push(None);
            }
        }
    }
    let text = log.message.unwrap_or_default();
    Job {
        log_id: log.id,
        strategy_id: log.strategy_id,
        owner,
        frequency,
        event: trigger_event(&log.snapshot.0, &log.dedup_key, &text),
        dedup_key: log.dedup_key,
        text,
        targets,
        deliveries,
        lease: lease.clone(),
        resumed: true,
        maybe_sent: log.sending_at.is_some(),
    }
}

/// The channel delivery `i` was claimed for, if the strategy still has it.
fn matching<'a>(channels: &'a [Channel], i: usize, delivery: &Delivery) -> Option<&'a Channel> {
    match &delivery.fingerprint {
        Some(fingerprint) => channels.iter().find(|c| &c.fingerprint() == fingerprint),
        None => channels.get(i).filter(|c| c.kind() == delivery.channel),
    }
}
