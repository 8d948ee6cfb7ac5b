//! The monitor registry: which monitors this replica runs, and running one — scheduled
//! or asked for by name — with everything a run owes: the enabled and snooze settings
//! (scheduled runs), no overlap with its previous run (a `skipped` ledger row), a
//! singleton's claim of the cycle and its lease across replicas, a panic or error
//! caught and recorded as `failed`, the ledger row and the heartbeat.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;

use super::{Cadence, Monitor, Outcome, RunReport, RunStatus};
use crate::storage::leases;
use crate::storage::ledger::{self, LedgerEntry};
use crate::storage::monitor_heartbeat::{self, HeartbeatRow};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule, for the boundary given (strategy buckets) or now.
    Scheduled(Option<DateTime<Utc>>),
    /// An operator, by name.
    Manual,
}

/// Why a run asked for did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no monitor is named {0}")]
    Unknown(String),
    #[error("{0} is running")]
    Running(String),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A monitor as listed: its settings, its last run and its health badge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorView {
    pub name: String,
    pub interval_seconds: Option<i32>,
    pub enabled: bool,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub last_run: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    /// `ok`, `stale` (no run for two intervals), `error` (last run failed), `snoozed`
    /// or `disabled`.
    pub health: &'static str,
    pub singleton: bool,
    pub running: bool,
}

/// The monitors of this replica; cheap to share.
pub struct Registry {
    db: PgPool,
    replica: String,
    monitors: RwLock<BTreeMap<String, Arc<dyn Monitor>>>,
    running: Mutex<BTreeSet<String>>,
    /// The heartbeat rows as last read (every second by the schedule, and after each
    /// change through the routes): what scheduled runs are judged by, so a run never
    /// waits on Postgres to learn whether it may run.
    settings: RwLock<BTreeMap<String, HeartbeatRow>>,
    /// Bumped on every registration change, for the schedule.
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("monitors", &self.names())
            .finish_non_exhaustive()
    }
}

/// Removes a name from the running set when the run ends, however it ends.
struct RunningGuard<'a> {
    running: &'a Mutex<BTreeSet<String>>,
    name: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.name);
        }
    }
}

/// How long a singleton's run lease lasts without being released (a replica that dies
/// mid-run frees it after this).
const RUN_LEASE: Duration = Duration::from_secs(600);

impl Registry {
    pub fn new(db: PgPool, replica: String) -> Self {
        Self {
            db,
            replica,
            monitors: RwLock::default(),
            running: Mutex::default(),
            settings: RwLock::default(),
            changes: watch::channel(0).0,
        }
    }

    /// Adds (or replaces) a monitor; its heartbeat row is created on first sight with
    /// its default interval (a failure is logged: the row is created at its first run).
    pub async fn register(&self, monitor: Arc<dyn Monitor>) {
        let name = monitor.name();
        let interval = match monitor.cadence() {
            Cadence::Interval(every) => Some(seconds(every)),
            Cadence::Boundaries(_) | Cadence::Events => None,
        };
        if let Err(error) = monitor_heartbeat::ensure(&self.db, &name, interval).await {
            tracing::warn!(monitor = %name, %error, "heartbeat row not created yet");
        }
        if let Ok(mut monitors) = self.monitors.write() {
            monitors.insert(name, monitor);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// Removes a monitor (a strategy bucket that emptied).
    pub fn unregister(&self, name: &str) {
        let removed = self
            .monitors
            .write()
            .is_ok_and(|mut monitors| monitors.remove(name).is_some());
        if removed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Monitor>> {
        self.monitors.read().ok()?.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.monitors
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Registration changes, for the schedule.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    /// Keeps `rows` as the monitors' settings.
    pub fn remember_settings(&self, rows: Vec<HeartbeatRow>) {
        if let Ok(mut settings) = self.settings.write() {
            *settings = rows
                .into_iter()
                .map(|row| (row.monitor_name.clone(), row))
                .collect();
        }
    }

    /// Reads the heartbeat rows again (after a change through the routes); answers them.
    pub async fn reload_settings(&self) -> Result<Vec<HeartbeatRow>, sqlx::Error> {
        let rows = monitor_heartbeat::all(&self.db).await?;
        self.remember_settings(rows.clone());
        Ok(rows)
    }

    /// Whether `name` is disabled or snoozed now (what an event-driven monitor checks
    /// before acting on an event).
    pub fn is_paused(&self, name: &str) -> bool {
        self.setting(name).is_some_and(|row| {
            !row.enabled
                || row
                    .snoozed_until
                    .is_some_and(|until| until > chrono::Utc::now())
        })
    }

    fn setting(&self, name: &str) -> Option<HeartbeatRow> {
        self.settings.read().ok()?.get(name).cloned()
    }

    fn is_running(&self, name: &str) -> bool {
        self.running.lock().is_ok_and(|r| r.contains(name))
    }

    /// The registered monitors with their heartbeat rows, as listed.
    pub async fn list(&self) -> Result<Vec<MonitorView>, sqlx::Error> {
        let rows: BTreeMap<String, HeartbeatRow> = self
            .reload_settings()
            .await?
            .into_iter()
            .map(|row| (row.monitor_name.clone(), row))
            .collect();
        let now = Utc::now();
        let monitors: Vec<(String, Arc<dyn Monitor>)> = self
            .monitors
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(monitors
            .into_iter()
            .map(|(name, monitor)| {
                let row = rows.get(&name).cloned().unwrap_or(HeartbeatRow {
                    monitor_name: name.clone(),
                    last_run: None,
                    last_status: None,
                    interval_seconds: None,
                    enabled: true,
                    snoozed_until: None,
                });
                view(
                    &row,
                    &monitor.cadence(),
                    monitor.singleton(),
                    self.is_running(&name),
                    now,
                )
            })
            .collect())
    }

    /// Runs the monitor named `name`. A scheduled run of a disabled or snoozed monitor,
    /// or of a singleton whose cycle another replica claimed, does nothing and answers
    /// `None`; otherwise the run's ledger row.
    pub async fn run(&self, name: &str, trigger: Trigger) -> Result<Option<Value>, RunError> {
        let monitor = self
            .get(name)
            .ok_or_else(|| RunError::Unknown(name.to_owned()))?;
        let cadence = monitor.cadence();
        let settings = self.setting(name);
        if let (Trigger::Scheduled(_), Some(row)) = (trigger, &settings) {
            let snoozed = row.snoozed_until.is_some_and(|until| until > Utc::now());
            if !row.enabled || snoozed {
                return Ok(None);
            }
        }
        let Some(_guard) = self.mark_running(name) else {
            if let Trigger::Scheduled(_) = trigger {
                self.record_skipped(name, "previous run still running")
                    .await;
            }
            return Err(RunError::Running(name.to_owned()));
        };
        let singleton_lease = if monitor.singleton() {
            if let Trigger::Scheduled(_) = trigger {
                let interval = settings
                    .as_ref()
                    .and_then(|row| row.interval_seconds)
                    .or_else(|| interval_of(&cadence))
                    .map_or(1.0, f64::from);
                // One replica per cycle: the first to claim it.
                if !monitor_heartbeat::claim_cycle(&self.db, name, interval).await? {
                    return Ok(None);
                }
            }
            let lease_name = format!("monitor-run:{name}");
            match leases::acquire(&self.db, &lease_name, &self.replica, RUN_LEASE).await? {
                Some(lease) => Some(lease),
                None if trigger == Trigger::Manual => {
                    return Err(RunError::Running(name.to_owned()));
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let scheduled = match trigger {
            Trigger::Scheduled(at) => at,
            Trigger::Manual => None,
        };
        let started_at = Utc::now();
        let clock = std::time::Instant::now();
        let outcome = AssertUnwindSafe(monitor.run(scheduled))
            .catch_unwind()
            .await;
        let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
        if let Some(lease) = &singleton_lease
            && let Err(error) = leases::release(&self.db, lease).await
        {
            tracing::warn!(monitor = name, %error, "run lease not released; it lapses");
        }
        let report = match outcome {
            Ok(Ok(Outcome::Ran(report))) => report,
            Ok(Ok(Outcome::NotHere)) => return Ok(None),
            Ok(Err(message)) => failed(json!({"error": message})),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                tracing::error!(monitor = name, panic = %message, "monitor panicked");
                failed(json!({"error": format!("panicked: {message}")}))
            }
        };
        if report.status == RunStatus::Failed {
            tracing::warn!(monitor = name, details = %report.details, "monitor run failed");
        }
        if !report.recorded {
            let entry = LedgerEntry {
                name: name.to_owned(),
                started_at,
                duration_ms,
                evaluated: report.evaluated,
                triggered: report.triggered,
                errors: report.errors,
                skipped: 0,
                status: report.status.as_str(),
                details: report.details.clone(),
            };
            ledger::record(&self.db, &entry).await?;
        }
        monitor_heartbeat::finish(
            &self.db,
            name,
            interval_of(&cadence),
            started_at,
            report.status.as_str(),
        )
        .await?;
        Ok(ledger::latest_since(&self.db, name, started_at).await?)
    }

    fn mark_running(&self, name: &str) -> Option<RunningGuard<'_>> {
        let mut running = self.running.lock().ok()?;
        running.insert(name.to_owned()).then(|| RunningGuard {
            running: &self.running,
            name: name.to_owned(),
        })
    }

    async fn record_skipped(&self, name: &str, reason: &str) {
        let entry = LedgerEntry::skipped(name.to_owned(), reason);
        if let Err(error) = ledger::record(&self.db, &entry).await {
            tracing::warn!(monitor = name, %error, "skipped run not recorded");
        }
    }
}

fn failed(details: Value) -> RunReport {
    RunReport {
        status: RunStatus::Failed,
        errors: 1,
        ..RunReport::ok(details)
    }
}

fn seconds(every: Duration) -> i32 {
    i32::try_from(every.as_secs().clamp(1, 86_400)).unwrap_or(86_400)
}

fn interval_of(cadence: &Cadence) -> Option<i32> {
    match cadence {
        Cadence::Interval(every) => Some(seconds(*every)),
        _ => None,
    }
}

/// A monitor's listing from its row: the next run and the health badge.
pub fn view(
    row: &HeartbeatRow,
    cadence: &Cadence,
    singleton: bool,
    running: bool,
    now: DateTime<Utc>,
) -> MonitorView {
    let period = match cadence {
        Cadence::Interval(_) => row.interval_seconds.map(i64::from),
        Cadence::Boundaries(frequency) => frequency.period_seconds().map(i64::from),
        Cadence::Events => None,
    };
    let next_run = match cadence {
        Cadence::Interval(_) => period.map(|p| {
            row.last_run
                .map_or(now, |last| last + chrono::Duration::seconds(p))
                .max(now)
        }),
        Cadence::Boundaries(frequency) => frequency.next_after(now),
        Cadence::Events => None,
    };
    let snoozed = row.snoozed_until.is_some_and(|until| until > now);
    let stale = match (period, row.last_run) {
        (Some(p), Some(last)) => now - last > chrono::Duration::seconds(2 * p),
        _ => false,
    };
    let health = if !row.enabled {
        "disabled"
    } else if snoozed {
        "snoozed"
    } else if row.last_status.as_deref() == Some("failed") {
        "error"
    } else if stale {
        "stale"
    } else {
        "ok"
    };
    MonitorView {
        name: row.monitor_name.clone(),
        interval_seconds: row.interval_seconds,
        enabled: row.enabled,
        snoozed_until: row.snoozed_until,
        last_run: row.last_run,
        last_status: row.last_status.clone(),
        next_run: if row.enabled && !snoozed {
            next_run
        } else {
            None
        },
        health,
        singleton,
        running,
    }
}
