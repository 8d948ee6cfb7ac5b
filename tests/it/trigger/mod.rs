//! Triggers and their delivery: claims, leases, every channel, hostile receivers, secrets.

mod delivery_leases;
mod email;
mod hostile_receivers;
mod notifications;
mod notify_test;
mod secrets;
mod triggers;
