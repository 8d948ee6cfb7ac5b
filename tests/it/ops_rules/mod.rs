//! Engine ticks and their rules, hostile ticks included.

mod engine_ticks;
mod hostile_ticks;
