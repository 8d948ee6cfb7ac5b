//! Triggering: what happens after a strategy's tree is true. [`decide`] applies the
//! trigger mode, cooldown and expiry of DESIGN.md §5 and names the claim (`dedup_key`)
//! under which a trigger is claimed once across replicas and restarts; the handler
//! claims triggers and delivers their messages (rendered by `notify::message`).

mod decision;
mod delivery;
mod fair_queue;
mod handler;
mod lease;
mod resume;

pub use crate::notify::{AlertFacts, ConditionFacts, Rendered, render};
pub use decision::{Decision, Suppression, TriggerContext, decide};
pub use handler::{
    DELIVERY_CONCURRENCY, FIRST_CLAIM_CHUNK, MAX_CLAIM_CHUNK, TriggerHandler, TriggerRequest,
};
pub use lease::{DELIVERY_LEASE_TTL, DeliveryLease};
pub use resume::{CHANNEL_CHANGED, RESUME_MAX_AGE};
