//! The alert as it leaves: what every channel's transport needs of one trigger.

use serde_json::Value;

/// The alert as every channel needs it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingAlert<'a> {
    /// The trigger's claim; webhooks get it as `X-Idempotency-Key`.
    pub dedup_key: &'a str,
    /// The rendered message (plain text).
    pub text: &'a str,
    /// The JSON trigger event webhooks receive.
    pub event: &'a Value,
    /// Whose alert it is (a strategy's `user_id`): each owner gets a bounded share of
    /// the Telegram bot's rate. `None` for operational alerts and tests.
    pub owner: Option<uuid::Uuid>,
    /// The place the delivery holds in its caller's queue, given back while it waits
    /// between attempts; `None`: no queue.
    pub place: Option<&'a super::place::Place>,
}
