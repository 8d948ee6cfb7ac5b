//! Replicas sharing work: shards, leases and rolling restarts.

mod rolling;
mod shards;
