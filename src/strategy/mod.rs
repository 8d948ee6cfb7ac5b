//! Strategies: rows from Postgres, validated and compiled into their runtime form,
//! kept in an atomically swapped in-memory index that the loader fills.

mod cache;
mod compiled;
mod index;
pub mod live_reload;
mod loader;
mod resolved;
pub mod store;
mod trigger_mode;

pub use compiled::{CompiledStrategy, MAX_CONDITIONS};
pub use index::{IndexSnapshot, StrategyError, StrategyIndex};
pub use loader::{ReloadError, ReloadReport, StrategyLoader};
pub use resolved::{ConditionRow, ResolvedStrategy, StrategyRow};
pub use store::{Shard, ShardFilter};
pub use trigger_mode::TriggerMode;

#[cfg(test)]
mod validation_tests;
