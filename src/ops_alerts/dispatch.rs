//! Notifications of operational alerts: every replica runs a dispatcher, and each
//! message is claimed by exactly one of them. A route's messages are assembled under a
//! per-route advisory lock, in the transaction that marks the alerts notified and
//! records the claim; the message is then sent through the notifiers (address guard,
//! retries, flood control) and marked sent. A replica that dies between claim and send
//! leaves a claim that lapses and is taken over: a message is sent at least once, and
//! twice only when a replica dies after sending and before marking it sent.
//!
//! Grouping: new alerts of a route wait until the oldest of them has waited
//! `OPS_ALERT_GROUP_WAIT_SECONDS`, then go out as one message listing them (with any
//! repeats due). A firing, unacknowledged alert is repeated every
//! `OPS_ALERT_REPEAT_SECONDS`; a notified alert that resolves gets one resolved message,
//! resolutions being grouped the same way.
//! Silences are checked again at each claim: a silenced alert is never sent.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::notice::{self, NoticeKind};
use super::{OpsAlerts, Routes, Severity};
use crate::metrics::AlertMetrics;
use crate::notify::{DeliveryStatus, Notifier, OutgoingAlert};
use crate::storage::ops_alert_notifications::{self as notifications, NotificationRow};
use crate::storage::ops_alerts::{self, AlertRow};

/// How often each replica looks for messages to send.
const TICK: Duration = Duration::from_secs(1);
/// A message not sent after this many claims is given up (recorded `abandoned`).
const MAX_ATTEMPTS: i32 = 5;
/// Passes between two refreshes of `monitoring_ops_alerts`.
const COUNT_EVERY: u32 = 5;

/// The grouping and repeat intervals.
#[derive(Debug, Clone, Copy)]
pub struct DispatchTiming {
    /// `OPS_ALERT_GROUP_WAIT_SECONDS`.
    pub group_wait: Duration,
    /// `OPS_ALERT_REPEAT_SECONDS`.
    pub repeat: Duration,
    /// `OPS_ALERT_CLAIM_SECONDS`: how long a replica has to send a message it claimed
    /// before another takes it over (longer than a delivery's retries can take).
    pub claim_hold: Duration,
}

/// Sends operational alerts to their severity's route.
pub struct Dispatcher {
    db: PgPool,
    alerts: OpsAlerts,
    notifier: Notifier,
    routes: Routes,
    timing: DispatchTiming,
    metrics: AlertMetrics,
}

impl Dispatcher {
    pub fn new(
        alerts: OpsAlerts,
        notifier: Notifier,
        routes: Routes,
        timing: DispatchTiming,
        metrics: AlertMetrics,
    ) -> Self {
        Self {
            db: alerts.pool().clone(),
            alerts,
            notifier,
            routes,
            timing,
            metrics,
        }
    }

    /// Dispatches until shutdown, and keeps `monitoring_ops_alerts` current.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut passes = 0u32;
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "alert notification pass failed");
            }
            if passes.is_multiple_of(COUNT_EVERY)
                && let Err(error) = self.count().await
            {
                tracing::warn!(%error, "counting alert episodes failed");
            }
            passes = passes.wrapping_add(1);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// One pass: claims and sends every message due now; returns how many were sent.
    pub async fn pass(&self) -> Result<usize, sqlx::Error> {
        let mut sent = 0;
        for (severity, channels) in &self.routes {
            if channels.is_empty() {
                continue;
            }
            for kind in [NoticeKind::Firing, NoticeKind::Resolved] {
                if let Some((claim, alerts)) = self.claim(*severity, kind).await? {
                    self.send(&claim, &alerts).await?;
                    sent += 1;
                }
            }
        }
        for claim in
            notifications::take_over_lapsed(&self.db, self.timing.claim_hold, MAX_ATTEMPTS).await?
        {
            tracing::warn!(
                notification = claim.id,
                attempts = claim.attempts,
                "taking over an alert message whose replica did not send it"
            );
            let alerts = ops_alerts::by_ids(&self.db, &claim.alert_ids).await?;
            self.send(&claim, &alerts).await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Claims the route's next message of `kind`, if one is due: marks its alerts and
    /// records the claim in one transaction, under the route's lock.
    async fn claim(
        &self,
        severity: Severity,
        kind: NoticeKind,
    ) -> Result<Option<(NotificationRow, Vec<AlertRow>)>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        if !notifications::try_lock_route(&mut tx, severity.as_str()).await? {
            return Ok(None);
        }
        let due = match kind {
            NoticeKind::Firing => {
                ops_alerts::due_firing(&mut tx, severity.as_str(), self.timing.repeat).await?
            }
            NoticeKind::Resolved => ops_alerts::due_resolved(&mut tx, severity.as_str()).await?,
        };
        if due.is_empty() {
            return Ok(None);
        }
        let silenced = self.alerts.silenced_now(&mut tx, &due).await?;
        let (quiet, loud): (Vec<_>, Vec<_>) = due
            .into_iter()
            .zip(silenced)
            .partition(|(_, silenced)| *silenced);
        let quiet: Vec<String> = quiet.into_iter().map(|(a, _)| a.alert_id).collect();
        let loud: Vec<AlertRow> = loud.into_iter().map(|(a, _)| a).collect();
        let chosen = match kind {
            NoticeKind::Firing => {
                ops_alerts::set_silenced(&mut tx, &quiet, true).await?;
                let ids: Vec<String> = loud.iter().map(|a| a.alert_id.clone()).collect();
                ops_alerts::set_silenced(&mut tx, &ids, false).await?;
                self.firing_due_now(loud)
            }
            NoticeKind::Resolved => {
                // A silenced alert's resolution is not announced either.
                ops_alerts::mark_resolved_notified(&mut tx, &quiet).await?;
                self.resolved_due_now(loud)
            }
        };
        if chosen.is_empty() {
            tx.commit().await?;
            return Ok(None);
        }
        let ids: Vec<String> = chosen.iter().map(|a| a.alert_id.clone()).collect();
        match kind {
            NoticeKind::Firing => ops_alerts::mark_notified(&mut tx, &ids).await?,
            NoticeKind::Resolved => ops_alerts::mark_resolved_notified(&mut tx, &ids).await?,
        }
        let claim = notifications::insert(
            &mut tx,
            severity.as_str(),
            kind.as_str(),
            &ids,
            self.timing.claim_hold,
        )
        .await?;
        tx.commit().await?;
        crate::failpoint::reached("ops_alert_after_claim").await;
        Ok(Some((claim, chosen)))
    }

    /// Of the unsilenced firing alerts due, those to send now: nothing while the new
    /// ones are still gathering (the oldest has not waited the group wait) and no
    /// repeat is due; else all of them, in one message.
    fn firing_due_now(&self, loud: Vec<AlertRow>) -> Vec<AlertRow> {
        let group_wait = chrono::Duration::from_std(self.timing.group_wait).unwrap_or_default();
        let now = Utc::now();
        let repeat_due = loud.iter().any(|a| a.notified_at.is_some());
        let gathered = loud
            .iter()
            .filter(|a| a.notified_at.is_none())
            .any(|a| a.started_at + group_wait <= now);
        if repeat_due || gathered {
            loud
        } else {
            Vec::new()
        }
    }

    /// Of the unsilenced resolutions due, those to send now: nothing until the oldest
    /// has waited the group wait (a storm of resolutions is one message), then all.
    fn resolved_due_now(&self, loud: Vec<AlertRow>) -> Vec<AlertRow> {
        let group_wait = chrono::Duration::from_std(self.timing.group_wait).unwrap_or_default();
        let now = Utc::now();
        let gathered = loud
            .iter()
            .filter_map(|a| a.resolved_at)
            .any(|resolved| resolved + group_wait <= now);
        if gathered { loud } else { Vec::new() }
    }

    /// Sends a claimed message to every channel of its route and marks it sent.
    async fn send(&self, claim: &NotificationRow, alerts: &[AlertRow]) -> Result<(), sqlx::Error> {
        let (Some(kind), Some(severity)) = (
            NoticeKind::parse(&claim.kind),
            Severity::parse(&claim.severity),
        ) else {
            return notifications::mark_sent(&self.db, claim.id, "unknown kind").await;
        };
        let channels = self.routes.get(&severity).map_or(&[][..], Vec::as_slice);
        if alerts.is_empty() || channels.is_empty() {
            return notifications::mark_sent(&self.db, claim.id, "nothing to send").await;
        }
        let text = notice::text(kind, &claim.severity, alerts);
        let event = notice::event(kind, &claim.severity, claim.id, alerts);
        let key = format!("ops-alert-notification-{}", claim.id);
        let outgoing = OutgoingAlert {
            dedup_key: &key,
            text: &text,
            event: &event,
            owner: None,
            place: None,
        };
        let mut failed = 0;
        for channel in channels {
            let delivery = self.notifier.deliver(channel, &outgoing).await;
            let outcome = if delivery.status == DeliveryStatus::Delivered {
                "delivered"
            } else {
                failed += 1;
                "failed"
            };
            self.metrics
                .notifications
                .with_label_values(&[kind.as_str(), outcome])
                .inc();
        }
        tracing::info!(notification = claim.id, kind = kind.as_str(),
            severity = %claim.severity, alerts = alerts.len(), failed, "alert message sent");
        let outcome = if failed == 0 {
            "delivered".to_owned()
        } else {
            format!("{failed} of {} channels failed", channels.len())
        };
        notifications::mark_sent(&self.db, claim.id, &outcome).await
    }

    /// Refreshes `monitoring_ops_alerts{rule, severity, state}`.
    async fn count(&self) -> Result<(), sqlx::Error> {
        let counts = ops_alerts::counts(&self.db).await?;
        let gauge = &self.metrics.episodes;
        gauge.reset();
        for (rule, severity, state, count) in counts {
            gauge
                .with_label_values(&[super::rule_label(&rule), &severity, &state])
                .add(count);
        }
        Ok(())
    }
}
