//! The state writer: a batch's evaluated states written in one statement — and under
//! automatic sharding, a batch evaluates only the strategies of the shards held when it
//! starts, and writes their triggers and state only while each shard's lease is still
//! held under the token it started with.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;

use uuid::Uuid;

use super::{BatchError, Plan};
use crate::metrics::Metrics;
use crate::sharding::Ownership;
use crate::storage::leases::{self, Fence};
use crate::storage::strategy_state::{self, StateUpdate};
use crate::strategy::store;

/// Writes batches' states, fenced on the shards' leases under automatic sharding.
#[derive(Debug)]
pub(super) struct StateWriter {
    db: PgPool,
    metrics: Arc<Metrics>,
    /// `SHARD_COUNT=auto`: the shards held.
    ownership: Option<Arc<Ownership>>,
}

impl StateWriter {
    pub(super) fn new(db: PgPool, metrics: Arc<Metrics>) -> Self {
        Self {
            db,
            metrics,
            ownership: None,
        }
    }

    /// Fences on the leases of the shards `ownership` holds.
    pub(super) fn with_ownership(mut self, ownership: Arc<Ownership>) -> Self {
        self.ownership = Some(ownership);
        self
    }

    /// Leaves out of `plan` the strategies of shards not held, and answers the fence of
    /// each one kept (nothing outside automatic sharding).
    pub(super) fn fences(&self, plan: &mut Plan) -> HashMap<Uuid, Fence> {
        let Some(ownership) = &self.ownership else {
            return HashMap::new();
        };
        let mut fences = HashMap::with_capacity(plan.strategies.len());
        plan.strategies.retain(|strategy| {
            let fence = ownership.fence_for(strategy.user_id);
            if let Some(fence) = &fence {
                fences.insert(strategy.id, fence.clone());
            }
            fence.is_some()
        });
        fences
    }

    /// Writes the evaluated states: in one statement, or, under automatic sharding, in
    /// a transaction that first locks the leases still held and writes only their
    /// strategies' states (a replica that lost a shard cannot overwrite the state its
    /// new holder writes).
    pub(super) async fn save(
        &self,
        plan: &Plan,
        updates: &[StateUpdate],
        fences: &HashMap<Uuid, Fence>,
    ) -> Result<(), BatchError> {
        match self.save_once(plan, updates, fences).await {
            Err(BatchError::Storage(error)) if strategy_state::is_deleted_strategy(&error) => {
                // Deleted since they were evaluated: written again without them.
                let ids: Vec<Uuid> = updates.iter().map(|u| u.strategy_id).collect();
                let existing = store::existing(&self.db, &ids).await?;
                let kept: Vec<StateUpdate> = updates
                    .iter()
                    .filter(|u| existing.contains(&u.strategy_id))
                    .cloned()
                    .collect();
                self.save_once(plan, &kept, fences).await
            }
            result => result,
        }
    }

    async fn save_once(
        &self,
        plan: &Plan,
        updates: &[StateUpdate],
        fences: &HashMap<Uuid, Fence>,
    ) -> Result<(), BatchError> {
        if self.ownership.is_none() {
            strategy_state::save(&self.db, plan.started_at, updates).await?;
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let wanted: Vec<Fence> = fences.values().cloned().collect();
        let live = leases::lock_live(&mut tx, &wanted).await?;
        let (kept, dropped): (Vec<StateUpdate>, Vec<StateUpdate>) = updates
            .iter()
            .cloned()
            .partition(|u| fences.get(&u.strategy_id).is_some_and(|f| live.contains(f)));
        if !dropped.is_empty() {
            self.metrics.shards.fenced.inc_by(dropped.len() as u64);
            tracing::info!(
                fenced = dropped.len(),
                "states not written: their shard's lease is no longer held here"
            );
        }
        strategy_state::save(&mut *tx, plan.started_at, &kept).await?;
        tx.commit().await?;
        Ok(())
    }
}
