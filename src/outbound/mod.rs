//! Outbound calls, one way for everyone who makes them (notify, analysis, platform
//! health, market sources, the CLI): [`client_builder`] sets what every client of ours
//! shares, and [`Backoff`] is the one retry schedule, with [`retry_after_seconds`] for
//! the server's own word on when to come back.

mod backoff;
mod client;

pub use backoff::{Backoff, retry_after_seconds};
pub use client::{USER_AGENT, client_builder};
