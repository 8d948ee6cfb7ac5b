//! Notifications: the channels of DESIGN.md §6 and the transport that delivers one
//! rendered alert to one channel — Telegram (Bot API `sendMessage`), Slack and Discord
//! (incoming webhooks), signed webhooks and email over SMTP — with retries for network
//! errors, 5xx and 429 (`Retry-After` honoured), a bounded number of attempts, and a
//! guard that refuses user-supplied URLs resolving to loopback, private or link-local
//! addresses; and the messages themselves ([`message`]: a strategy's template, or the
//! default). The trigger handler (`crate::trigger`) drives deliveries.

mod address_guard;
mod channel;
mod delivery;
mod destination_hosts;
mod email;
mod flood;
mod outgoing;
mod place;

pub use address_guard::{AddressGuard, GuardError};
pub use channel::{Channel, ChannelError, parse_channels};
pub use delivery::{Delivery, DeliveryStatus, INTERRUPTED, Notifier, NotifierSettings, sign};
pub use destination_hosts::{BREAKER_OPEN, BREAKER_THRESHOLD, PER_HOST_ATTEMPTS};
pub use email::{EmailSender, SendFailure, SmtpConfig, SmtpTls, subject};
pub use flood::{FloodControl, FloodRates, Rate};
pub use outgoing::OutgoingAlert;
pub use place::{Place, PlaceQueue};
