//! The virtual shards this replica holds now, with the lease of each: what the loader
//! filters on, what batches evaluate, and the fence their writes check.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, watch};
use uuid::Uuid;

use super::hash::SHARD_HASH_SQL;
use super::{VIRTUAL_SHARDS, virtual_shard};
use crate::storage::leases::{Fence, Lease};

/// The shards held by this replica, shared by the coordinator (which changes it), the
/// loader and the batches (which read it).
#[derive(Debug)]
pub struct Ownership {
    replica: String,
    held: Mutex<BTreeMap<u16, Lease>>,
    /// Batches work under a read guard; the coordinator releases shards under the write
    /// guard, so a shard is never given away in the middle of a batch.
    working: RwLock<()>,
    /// Bumped whenever the set of shards held changes.
    changes: watch::Sender<u64>,
}

impl Ownership {
    /// Nothing held yet, for `replica` (the holder name of its leases).
    pub fn new(replica: &str) -> Self {
        Self {
            replica: replica.to_owned(),
            held: Mutex::default(),
            working: RwLock::new(()),
            changes: watch::channel(0).0,
        }
    }

    /// The holder name of this replica's leases.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The shards held, in order.
    pub fn held(&self) -> Vec<u16> {
        self.lock().keys().copied().collect()
    }

    /// The leases held.
    pub fn leases(&self) -> Vec<Lease> {
        self.lock().values().cloned().collect()
    }

    /// The fence of `user_id`'s shard, when this replica holds it.
    pub fn fence_for(&self, user_id: Uuid) -> Option<Fence> {
        self.lock().get(&virtual_shard(user_id)).map(Fence::from)
    }

    /// Whether this replica holds `user_id`'s shard.
    pub fn owns(&self, user_id: Uuid) -> bool {
        self.lock().contains_key(&virtual_shard(user_id))
    }

    /// The SQL condition "the row's `user_id` is in a shard held", built from the
    /// shard numbers only (never from input text).
    pub fn sql(&self) -> String {
        let held = self.held();
        if held.is_empty() {
            return "FALSE".to_owned();
        }
        let list: Vec<String> = held.iter().map(u16::to_string).collect();
        format!(
            "({SHARD_HASH_SQL} % {VIRTUAL_SHARDS} IN ({}))",
            list.join(",")
        )
    }

    /// Held while a batch works on the shards held: the coordinator waits for it
    /// before giving any shard away.
    pub async fn working(&self) -> RwLockReadGuard<'_, ()> {
        self.working.read().await
    }

    /// Changes whenever the shards held change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Excludes batches while shards are given away.
    pub(super) async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.working.write().await
    }

    /// Replaces the leases of the shards in `leases` (taken or renewed) and forgets
    /// `dropped`; tells subscribers when the set of shards changed.
    pub(super) fn update(&self, leases: Vec<Lease>, dropped: &[u16]) {
        let changed = {
            let mut held = self.lock();
            let before: Vec<u16> = held.keys().copied().collect();
            for shard in dropped {
                held.remove(shard);
            }
            for lease in leases {
                if let Some(shard) = super::shard_of_lease(&lease.name) {
                    held.insert(shard, lease);
                }
            }
            before.len() != held.len() || !before.iter().eq(held.keys())
        };
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, Lease>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
