//! Triggering: what happens after a strategy's tree is true. [`decide`] applies the
//! trigger mode, cooldown and expiry of DESIGN.md §5 and names the claim (`dedup_key`)
//! under which a trigger is claimed once across replicas and restarts; the handler
//! claims triggers and the [`Deliverer`] delivers their messages (rendered by
//! `crate::message`).

mod decision;
mod deliverer;
mod fair_queue;
mod handler;
mod job;
mod lease;
mod resume;
mod resume_monitor;

pub use decision::{Decision, Suppression, TriggerContext, decide};
pub use deliverer::{DELIVERY_CONCURRENCY, Deliverer};
pub use handler::{
    FIRST_CLAIM_CHUNK, MAX_CLAIM_CHUNK, TriggerHandler, TriggerRequest, TriggerTiming,
};
pub use lease::{DELIVERY_LEASE_TTL, DeliveryLease};
pub use resume::{CHANNEL_CHANGED, RESUME_MAX_AGE};
pub use resume_monitor::DeliveryResumeMonitor;
