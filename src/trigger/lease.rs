//! This replica's delivery lease (DESIGN §5, §9): every trigger it claims, or takes over
//! from a dead replica, is delivered under it. It is renewed while the replica lives;
//! a replica that dies (or pauses past its expiry) loses it, and only then may another
//! replica resume its deliveries. Every outcome write checks its token.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::storage::leases::{self, Lease};

/// How long a delivery lease lives without renewal: a replica that stops renewing is
/// taken over this long after its last renewal.
pub const DELIVERY_LEASE_TTL: Duration = Duration::from_secs(30);

/// The lease deliveries run under, acquired on first use and kept renewed.
#[derive(Debug)]
pub struct DeliveryLease {
    db: PgPool,
    name: String,
    holder: String,
    ttl: Duration,
    held: Mutex<Option<Lease>>,
}

impl DeliveryLease {
    /// The lease of replica `replica` (a name of its own: `deliveries:<replica>`).
    pub fn new(db: PgPool, replica: &str, ttl: Duration) -> Self {
        Self {
            db,
            name: format!("deliveries:{replica}"),
            holder: replica.to_owned(),
            ttl,
            held: Mutex::new(None),
        }
    }

    /// The lease, acquired or renewed when less than half its time is left.
    pub async fn current(&self) -> Result<Lease, sqlx::Error> {
        let mut held = self.held.lock().await;
        let half = chrono::Duration::from_std(self.ttl / 2).unwrap_or_default();
        if let Some(lease) = held.as_ref()
            && lease.expires_at - chrono::Utc::now() > half
        {
            return Ok(lease.clone());
        }
        let renewed = match held.as_ref() {
            Some(lease) => leases::renew(&self.db, lease, self.ttl).await?,
            None => None,
        };
        let lease = match renewed {
            Some(lease) => lease,
            // Never held, or lapsed: a new holding with a new token. What was claimed
            // under the old token is no longer ours to record (it is resumed).
            None => leases::acquire(&self.db, &self.name, &self.holder, self.ttl)
                .await?
                .ok_or_else(|| sqlx::Error::Protocol(format!("lease {} is held", self.name)))?,
        };
        *held = Some(lease.clone());
        Ok(lease)
    }

    /// Renews the lease every third of its lifetime until `shutdown`.
    pub async fn keep(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.ttl / 3) => {}
            }
            if self.held.lock().await.is_none() {
                continue;
            }
            if let Err(error) = self.force_renew().await {
                tracing::warn!(%error, "delivery lease not renewed");
            }
        }
    }

    async fn force_renew(&self) -> Result<(), sqlx::Error> {
        let mut held = self.held.lock().await;
        let renewed = match held.as_ref() {
            Some(lease) => leases::renew(&self.db, lease, self.ttl).await?,
            None => return Ok(()),
        };
        if renewed.is_none() {
            tracing::warn!(lease = %self.name,
                "delivery lease lapsed; its deliveries may be resumed elsewhere");
        }
        *held = renewed;
        Ok(())
    }

    /// Gives the lease up (at shutdown): another replica resumes what is still pending
    /// at once instead of waiting for it to lapse.
    pub async fn release(&self) {
        let mut held = self.held.lock().await;
        if let Some(lease) = held.take()
            && let Err(error) = leases::release(&self.db, &lease).await
        {
            tracing::warn!(%error, "delivery lease not released");
        }
    }
}
