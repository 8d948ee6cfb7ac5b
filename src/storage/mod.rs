//! Storage: the Postgres pool with its embedded migrations, and the optional Redis
//! connection. Both are connected with a bounded retry at startup so that the service
//! can start before its dependencies in an orchestrator, and give up with a clear
//! message instead of hanging.

pub mod postgres;
pub mod redis;
mod startup_retry;

pub use startup_retry::StartupError;
