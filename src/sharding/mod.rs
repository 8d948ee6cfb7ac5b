//! Automatic sharding (`SHARD_COUNT=auto`, DESIGN §9): a user's strategies live in one of
//! [`VIRTUAL_SHARDS`] virtual shards (`hash(user_id) mod 256`); the live replicas divide
//! the virtual shards among themselves by [`rendezvous`] hashing; a replica works a
//! shard only while it holds its lease (`shard:<n>` in `leases`), takes one over only
//! after its previous holder released it or let it lapse, and every write made for a
//! shard's strategies checks the lease's token ([`Ownership::fence_for`]).
//!
//! The [`Coordinator`] keeps this replica's registration, leases and [`Ownership`]
//! current; the loader filters on the shards held, batches evaluate only strategies of
//! held shards, under [`Ownership::working`], so a shard is released only between
//! batches.

mod coordinator;
pub mod hash;
mod ownership;
pub mod rendezvous;

use std::time::Duration;

use uuid::Uuid;

pub use coordinator::{Coordinator, StepReport};
pub use ownership::Ownership;

/// How many virtual shards the users are spread over: enough for an even division
/// among a few dozen replicas, few enough to lease each one separately.
pub const VIRTUAL_SHARDS: u16 = 256;

/// The default lease time of a shard: how long a killed or paused replica's shards can
/// stay unworked.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// The virtual shard of `user_id`.
pub fn virtual_shard(user_id: Uuid) -> u16 {
    // The remainder is below 256.
    (hash::shard_hash(user_id) % u32::from(VIRTUAL_SHARDS)) as u16
}

/// The lease name of virtual shard `shard`.
pub fn lease_name(shard: u16) -> String {
    format!("shard:{shard}")
}

/// The virtual shard a lease name stands for, when it names one.
pub fn shard_of_lease(name: &str) -> Option<u16> {
    name.strip_prefix("shard:")?
        .parse()
        .ok()
        .filter(|s| *s < VIRTUAL_SHARDS)
}

/// Automatic sharding's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoSharding {
    /// `SHARD_LEASE_SECONDS`: the lease of each shard and the heartbeat's lifetime; a
    /// replica renews both every fifth of it.
    pub lease_ttl: Duration,
}

impl Default for AutoSharding {
    fn default() -> Self {
        Self {
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

impl AutoSharding {
    /// How often the coordinator renews and rebalances.
    pub fn step_every(&self) -> Duration {
        (self.lease_ttl / 5).max(Duration::from_millis(200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_round_trip() {
        assert_eq!(lease_name(7), "shard:7");
        assert_eq!(shard_of_lease("shard:7"), Some(7));
        assert_eq!(shard_of_lease("shard:256"), None);
        assert_eq!(shard_of_lease("delivery:x"), None);
    }

    #[test]
    fn the_virtual_shard_is_the_hash_mod_256() {
        // md5("00000000-…") starts 9f89c84a: 0x4a = 74.
        assert_eq!(virtual_shard(Uuid::nil()), 0x4a);
    }
}
