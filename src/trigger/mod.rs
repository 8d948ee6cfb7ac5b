//! Triggering: what happens after a strategy's tree is true. [`decide`] applies the
//! trigger mode, cooldown and expiry of DESIGN.md §5 and names the claim (`dedup_key`)
//! that makes delivery exactly-once across replicas and restarts; [`render`] turns a
//! trigger into its message. Claiming and delivery build on them (the rest of issue 5).

mod decision;
mod handler;
pub mod message;

pub use decision::{Decision, Suppression, TriggerContext, decide};
pub use handler::{
    DELIVERY_CONCURRENCY, FIRST_CLAIM_CHUNK, MAX_CLAIM_CHUNK, TriggerHandler, TriggerRequest,
};
pub use message::{AlertFacts, ConditionFacts, Rendered, render};
