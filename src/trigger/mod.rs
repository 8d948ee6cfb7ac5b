//! Triggering: what happens after a strategy's tree is true. [`decide`] applies the
//! trigger mode, cooldown and expiry of DESIGN.md §5 and names the claim (`dedup_key`)
//! that makes delivery exactly-once across replicas and restarts. Claiming, rendering
//! and delivery build on it (the rest of issue 5).

mod decision;

pub use decision::{Decision, Suppression, TriggerContext, decide};
