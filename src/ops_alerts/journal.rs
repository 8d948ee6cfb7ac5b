//! The alert log: one JSON line per alert event in `ALERT_LOG_DIR/<UTC date>.jsonl`,
//! append-only. Lines are queued by the raise (never waiting on the disk) and written
//! by one background task, which creates the directory when missing; a failing disk is
//! counted (`monitoring_alert_log_errors_total`) and logged, never fatal. Files older
//! than the retention are removed by [`remove_older_than`].

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use prometheus::IntCounter;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::storage::ops_alerts::AlertRow;

/// Lines kept waiting for the disk before new ones are dropped (and counted).
const QUEUE: usize = 10_000;

/// One alert event as a log line: the seed's fields (`timestamp`, `severity`, `rule`,
/// `message`, `context`, `acknowledged`) plus `alert_id`, `event` and `component`.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub timestamp: DateTime<Utc>,
    pub severity: String,
    pub rule: String,
    pub message: String,
    pub context: Value,
    pub acknowledged: bool,
    pub alert_id: String,
    /// `raised`, `resolved`, `cleared` or `acknowledged`.
    pub event: &'static str,
    pub component: String,
}

impl EventLine {
    pub fn of(alert: &AlertRow, event: &'static str) -> Self {
        Self {
            timestamp: Utc::now(),
            severity: alert.severity.clone(),
            rule: alert.rule.clone(),
            message: alert.message.clone(),
            context: alert.context.clone(),
            acknowledged: alert.acknowledged,
            alert_id: alert.alert_id.clone(),
            event,
            component: alert.component.clone(),
        }
    }
}

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Journal {
    lines: Option<mpsc::Sender<EventLine>>,
    errors: IntCounter,
}

impl Journal {
    /// A journal writing under `dir` (none: lines are dropped silently), its writer
    /// spawned on the current runtime.
    pub fn start(dir: Option<PathBuf>, errors: IntCounter) -> Self {
        let Some(dir) = dir else {
            return Self {
                lines: None,
                errors,
            };
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_lines(dir, receiver, errors.clone()));
        Self {
            lines: Some(sender),
            errors,
        }
    }

    /// Queues `line`; a full queue (the disk far behind) drops it and counts an error.
    pub fn record(&self, line: EventLine) {
        if let Some(lines) = &self.lines
            && lines.try_send(line).is_err()
        {
            self.errors.inc();
        }
    }
}

/// Appends each line to its day's file until every sender is gone.
async fn write_lines(dir: PathBuf, mut lines: mpsc::Receiver<EventLine>, errors: IntCounter) {
    while let Some(line) = lines.recv().await {
        let dir = dir.clone();
        let written = tokio::task::spawn_blocking(move || append(&dir, &line)).await;
        if let Err(error) = written.map_err(|e| e.to_string()).and_then(|r| r) {
            errors.inc();
            tracing::warn!(%error, "alert log line not written");
        }
    }
}

fn append(dir: &Path, line: &EventLine) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.jsonl", line.timestamp.format("%Y-%m-%d")));
    let mut text = serde_json::to_string(line).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Removes the day files of `dir` older than `days` before `today`; returns how many.
pub fn remove_older_than(dir: &Path, days: u32, today: NaiveDate) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let oldest_kept = today - chrono::Duration::days(i64::from(days));
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                return false;
            };
            day < oldest_kept && std::fs::remove_file(entry.path()).is_ok()
        })
        .count()
}
