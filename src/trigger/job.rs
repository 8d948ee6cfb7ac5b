//! A delivery job: one claimed (or resumed) trigger with its channels, its deliveries as
//! they stand and the lease it runs under, and the JSON event webhooks receive for it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::notify::{Channel, Delivery};
use crate::storage::leases::Lease;

/// One trigger to deliver.
#[derive(Debug, Clone)]
pub struct Job {
    pub log_id: i64,
    pub strategy_id: Uuid,
    /// The strategy's owner (`user_id`): deliveries are shared fairly among owners.
    pub owner: Uuid,
    /// For logs and metrics.
    pub frequency: String,
    pub dedup_key: String,
    pub text: String,
    /// The JSON event webhooks receive.
    pub event: Value,
    /// Per delivery: the channel to send to now, or `None` (already final).
    pub targets: Vec<Option<Channel>>,
    /// The trigger log's deliveries as they stand.
    pub deliveries: Vec<Delivery>,
    /// The lease the job runs under; every outcome write checks its token.
    pub lease: Lease,
    /// Taken over from a replica whose lease lapsed.
    pub resumed: bool,
    /// Taken over after the previous holder began sending: each channel sent again may
    /// be a duplicate (counted as ambiguous).
    pub maybe_sent: bool,
}

/// The JSON trigger event webhooks receive, from the trigger log's snapshot: the same
/// for the first delivery and for one resumed after a crash.
pub(super) fn trigger_event(snapshot: &Value, dedup_key: &str, message: &str) -> Value {
    json!({
        "event": "strategy.triggered",
        "dedup_key": dedup_key,
        "strategy_id": snapshot.get("strategy_id"),
        "strategy_name": snapshot.get("strategy_name"),
        "triggered_at": snapshot.get("triggered_at"),
        "late": snapshot.get("late").and_then(Value::as_bool).unwrap_or(false),
        "message": message,
        "conditions": snapshot.get("conditions"),
    })
}
