//! Notifications: the channels of DESIGN.md §6 and the transport that delivers one
//! rendered alert to one channel — Telegram (Bot API `sendMessage`), Slack and Discord
//! (incoming webhooks) and signed webhooks — with retries for network errors, 5xx and
//! 429 (`Retry-After` honoured), a bounded number of attempts, and a guard that refuses
//! user-supplied URLs resolving to loopback, private or link-local addresses. Email and
//! the trigger handler that drives deliveries are the rest of issue 5.

mod address_guard;
mod channel;
mod delivery;

pub use address_guard::{AddressGuard, GuardError};
pub use channel::{Channel, ChannelError, parse_channels};
pub use delivery::{Delivery, DeliveryStatus, Notifier, NotifierSettings, OutgoingAlert, sign};
