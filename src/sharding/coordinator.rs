//! Keeps this replica's share of the virtual shards current: every step it renews its
//! heartbeat, reads the live replicas, renews the leases it holds, gives away (between
//! batches) the shards rendezvous hashing now assigns elsewhere, and takes the shards
//! assigned to it whose lease is free or lapsed. On shutdown it releases everything at
//! once, so its successors need not wait for a lapse.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{AutoSharding, Ownership, lease_name, rendezvous, shard_of_lease};
use crate::metrics::ShardMetrics;
use crate::storage::{leases, replicas};

/// A replica silent this long is forgotten by the registry.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// What one step changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Live replicas, this one included.
    pub live: usize,
    pub acquired: usize,
    pub released: usize,
    /// Leases that lapsed before this replica renewed them (it was paused or cut off).
    pub lost: usize,
    /// Shards assigned here whose previous holder has not released them yet.
    pub waiting: usize,
    pub held: usize,
}

/// Runs this replica's part of automatic sharding.
#[derive(Debug, Clone)]
pub struct Coordinator {
    db: PgPool,
    ownership: Arc<Ownership>,
    settings: AutoSharding,
    version: String,
    metrics: ShardMetrics,
}

impl Coordinator {
    pub fn new(
        db: PgPool,
        ownership: Arc<Ownership>,
        settings: AutoSharding,
        metrics: ShardMetrics,
    ) -> Self {
        Self {
            db,
            ownership,
            settings,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            metrics,
        }
    }

    /// The shards held and the leases behind them.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// One round: heartbeat, renew, give away, take.
    pub async fn step(&self) -> Result<StepReport, sqlx::Error> {
        let me = self.ownership.replica().to_owned();
        let ttl = self.settings.lease_ttl;
        replicas::heartbeat(&self.db, &me, &self.version).await?;
        let mut live: Vec<String> = replicas::live(&self.db, ttl)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if !live.contains(&me) {
            live.push(me.clone());
        }
        let wanted = rendezvous::assigned(&me, &live);

        let held = self.ownership.leases();
        let renewed = leases::renew_many(&self.db, &held, ttl).await?;
        let still: BTreeSet<String> = renewed.iter().map(|l| l.name.clone()).collect();
        let lost: Vec<u16> = held
            .iter()
            .filter(|l| !still.contains(&l.name))
            .filter_map(|l| shard_of_lease(&l.name))
            .collect();
        let (keep, give): (Vec<_>, Vec<_>) = renewed
            .into_iter()
            .partition(|l| shard_of_lease(&l.name).is_some_and(|shard| wanted.contains(&shard)));
        let mut report = StepReport {
            live: live.len(),
            lost: lost.len(),
            released: give.len(),
            ..StepReport::default()
        };
        if !give.is_empty() || !lost.is_empty() {
            // Between batches: a batch under way finishes (claims and state written)
            // before its shards go.
            let _exclusive = self.ownership.exclusive().await;
            let mut dropped = lost.clone();
            dropped.extend(give.iter().filter_map(|l| shard_of_lease(&l.name)));
            self.ownership.update(Vec::new(), &dropped);
            leases::release_many(&self.db, &give).await?;
        }
        if !lost.is_empty() {
            tracing::warn!(
                lost = lost.len(),
                "shard leases lapsed before they were renewed: their strategies moved"
            );
        }
        self.ownership.update(keep, &[]);

        let holding: BTreeSet<u16> = self.ownership.held().into_iter().collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|shard| !holding.contains(shard))
            .map(|&shard| lease_name(shard))
            .collect();
        let taken = leases::acquire_many(&self.db, &missing, &me, ttl).await?;
        report.acquired = taken.len();
        report.waiting = missing.len() - taken.len();
        self.ownership.update(taken, &[]);
        report.held = self.ownership.held().len();
        self.observe(&report);
        if report.acquired + report.released + report.lost > 0 {
            tracing::info!(
                live = report.live,
                acquired = report.acquired,
                released = report.released,
                lost = report.lost,
                waiting = report.waiting,
                held = report.held,
                "shards rebalanced"
            );
        }
        Ok(report)
    }

    fn observe(&self, report: &StepReport) {
        let m = &self.metrics;
        m.held.set(i64::try_from(report.held).unwrap_or(i64::MAX));
        m.live_replicas
            .set(i64::try_from(report.live).unwrap_or(i64::MAX));
        for (kind, n) in [
            ("acquired", report.acquired),
            ("released", report.released),
            ("lost", report.lost),
        ] {
            m.handoffs.with_label_values(&[kind]).inc_by(n as u64);
        }
    }

    /// Steps until `shutdown`, then leaves: every shard released between batches and
    /// the registration removed.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.step_every());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut forget = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = forget.tick() => {
                    if let Err(error) = replicas::forget_silent(&self.db, FORGET_AFTER).await {
                        tracing::warn!(%error, "could not forget silent replicas");
                    }
                }
                _ = ticker.tick() => {
                    if let Err(error) = self.step().await {
                        tracing::warn!(%error,
                            "shard step failed; fencing keeps a lapsed shard's writes out");
                    }
                }
            }
        }
        self.leave().await;
    }

    /// Releases every shard (between batches) and leaves the registry, so the others
    /// take the shards over at their next step instead of after a lapse.
    pub async fn leave(&self) {
        let _exclusive = self.ownership.exclusive().await;
        let held = self.ownership.leases();
        let dropped = self.ownership.held();
        self.ownership.update(Vec::new(), &dropped);
        if let Err(error) = leases::release_many(&self.db, &held).await {
            tracing::warn!(%error, "could not release the shards");
        }
        if let Err(error) = replicas::leave(&self.db, self.ownership.replica()).await {
            tracing::warn!(%error, "could not leave the registry");
        }
        self.metrics
            .handoffs
            .with_label_values(&["released"])
            .inc_by(held.len() as u64);
        self.metrics.held.set(0);
        tracing::info!(released = held.len(), "left the shard registry");
    }
}
