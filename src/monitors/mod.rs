//! Monitors (DESIGN §13): the framework every periodic job runs in. It knows no job:
//! each lives with its feature (`batch:<frequency>`, its bucket follower and `expiry` in
//! `batches`, `delivery_resume` in `trigger`, `ops_rules` and `retention` in
//! `ops_rules`, `platform_health`, `analysis`) and the composition root registers it. A monitor says its name, its cadence and whether it runs on
//! one replica at a time, and runs; the [`Registry`] runs it (never overlapping its
//! previous run, a panic or error caught and recorded), writes its `monitor_ledger` row
//! and its `monitor_heartbeat`, and the [`Schedule`] fires it on `tokio-cron-scheduler`
//! with the interval read live from its heartbeat row.

mod registry;
mod schedule;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::frequency::Frequency;

pub use registry::{MonitorView, Registry, RunError, Trigger};
pub use schedule::{Schedule, cron_of};

/// How a monitor's runs are timed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Every `interval_seconds` of its heartbeat row, read at each cycle; the given
    /// interval is the row's default.
    Interval(Duration),
    /// At the wall-clock boundaries of a strategy frequency (`1m` at :00); only
    /// `enabled` and `snoozed_until` apply.
    Boundaries(Frequency),
    /// Driven by events (candle closes); only `enabled` and `snoozed_until` apply.
    Events,
}

impl Cadence {
    /// Whether operators may set an interval for it.
    pub fn takes_interval(&self) -> bool {
        matches!(self, Cadence::Interval(_))
    }
}

/// How a run went, as the ledger's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    /// Done, but not all of it (some data unavailable, a step skipped).
    Partial,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub status: RunStatus,
    pub evaluated: usize,
    pub triggered: usize,
    pub errors: usize,
    /// The rest, or why it was partial.
    pub details: Value,
    /// The monitor wrote its own ledger row (strategy batches do).
    pub recorded: bool,
}

impl RunReport {
    /// An `ok` run with `details`.
    pub fn ok(details: Value) -> Self {
        Self {
            status: RunStatus::Ok,
            evaluated: 0,
            triggered: 0,
            errors: 0,
            details,
            recorded: false,
        }
    }
}

/// A run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ran(RunReport),
    /// Nothing to do on this replica this time (another replica holds the work):
    /// nothing is recorded.
    NotHere,
}

/// A periodic job. Registering one is one line: `registry.register(Arc::new(…))`.
pub trait Monitor: Send + Sync + 'static {
    /// Its name: the ledger's `name` and the heartbeat's key.
    fn name(&self) -> String;
    fn cadence(&self) -> Cadence;
    /// Runs on one replica per cycle across replicas (claimed in its heartbeat row),
    /// never on two at once (a lease while it runs).
    fn singleton(&self) -> bool {
        false
    }
    /// One run. `scheduled`: the boundary it belongs to, for runs the schedule started
    /// at a boundary. An `Err` is recorded as a failed run with the message.
    fn run(&self, scheduled: Option<DateTime<Utc>>) -> BoxFuture<'_, Result<Outcome, String>>;
}
