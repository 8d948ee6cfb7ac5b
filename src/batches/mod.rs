//! Batches: strategies are evaluated in batches, one per frequency, at wall-clock
//! boundaries (a `5m` batch at :00, :05, …; a cron frequency at its cron times).
//!
//! A batch ([`BatchRunner::run`]) prefetches the union of its strategies' data needs,
//! evaluates every strategy ([`evaluate`], the one path simulate shares), claims the
//! triggers, writes their runtime state in one statement, and records one
//! `monitor_ledger` row. Batches of one frequency never overlap: a tick that finds
//! the previous batch still running is skipped and counted. The `batch:<frequency>`
//! monitors fire them; they follow the index, so buckets appear and disappear with
//! reloads.

mod batch;
mod bucket_monitors;
mod candle_closes;
mod evaluation;
mod expiry_monitor;
mod follow;
mod last_run;
mod ledger_queue;
mod shards;
mod simulation;

pub use batch::{BatchError, BatchReport, BatchRunner};
pub use bucket_monitors::{BatchMonitor, follow_buckets};
pub use candle_closes::run_candle_closes;
pub use evaluation::{Moment, Outcome, closes_on_timer, evaluate, fires_on_close};
pub use expiry_monitor::ExpiryMonitor;
pub use follow::follow_index;
pub use last_run::LastRun;
pub use shards::{catch_up, follow_shards};
pub use simulation::{Simulation, simulate};

/// The bounded metric label of a frequency: cron expressions are user input.
pub fn frequency_label(frequency: &crate::frequency::Frequency) -> String {
    match frequency {
        crate::frequency::Frequency::Cron(_) => "cron".to_owned(),
        other => other.to_string(),
    }
}
