//! The recorder: what a batch leaves behind — its metrics, its last run, its ledger row
//! and its log line, for a batch that finished and for one that failed — and the
//! bucket gauges that follow the index.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{BatchError, BatchReport, Plan};
use crate::batches::frequency_label;
use crate::batches::last_run::{LastRun, LastRuns};
use crate::batches::ledger_queue::LedgerQueue;
use crate::frequency::Frequency;
use crate::market::PrefetchReport;
use crate::metrics::Metrics;
use crate::storage::ledger::LedgerEntry;
use crate::strategy::IndexSnapshot;

/// Records batches: their metrics, last runs and ledger rows.
#[derive(Debug)]
pub(super) struct Recorder {
    metrics: Arc<Metrics>,
    last_runs: LastRuns,
    /// Ledger rows, kept while Postgres cannot take them.
    ledger: LedgerQueue,
    /// The frequency labels whose batch gauges are exported now.
    exported: Mutex<BTreeSet<String>>,
}

impl Recorder {
    pub(super) fn new(metrics: Arc<Metrics>, db: sqlx::PgPool) -> Self {
        Self {
            metrics,
            last_runs: LastRuns::default(),
            ledger: LedgerQueue::new(db),
            exported: Mutex::new(BTreeSet::new()),
        }
    }

    /// The last run of the batch `name`.
    pub(super) fn last_run(&self, name: &str) -> Option<LastRun> {
        self.last_runs.get(name)
    }

    /// Exports each bucket's period and drops the gauges of buckets that are gone
    /// (so "no batch for 3 intervals" never fires for a frequency nobody uses).
    pub(super) fn follow_buckets(&self, index: &IndexSnapshot) {
        let metrics = &self.metrics.scheduler;
        let mut present = BTreeSet::new();
        for frequency in index.by_frequency.keys() {
            if *frequency == Frequency::CandleClose {
                continue;
            }
            let label = frequency_label(frequency);
            if let Some(period) = frequency.period_seconds() {
                metrics
                    .batch_interval
                    .with_label_values(&[&label])
                    .set(i64::from(period));
            }
            present.insert(label);
        }
        let mut exported = self.exported.lock().expect("exported lock");
        // A new bucket counts from now: one that never runs is then noticed too.
        for new in present.difference(&exported) {
            metrics
                .last_batch
                .with_label_values(&[new])
                .set(Utc::now().timestamp() as f64);
        }
        for gone in exported.difference(&present) {
            let _ = metrics.batch_interval.remove_label_values(&[gone]);
            let _ = metrics.last_batch.remove_label_values(&[gone]);
        }
        *exported = present;
    }

    /// How late the evaluation came after its due time.
    pub(super) fn observe_latency(&self, plan: &Plan) {
        let late = (Utc::now() - plan.due)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 1e6;
        self.metrics
            .scheduler
            .evaluation_latency
            .with_label_values(&[&plan.label])
            .observe(late.max(0.0));
    }

    /// Metrics, the last run, the ledger row and the log line of a finished batch.
    pub(super) async fn record(
        &self,
        plan: &Plan,
        report: &BatchReport,
        prefetch: &PrefetchReport,
    ) -> Result<(), BatchError> {
        let metrics = &self.metrics.scheduler;
        let label = plan.label.as_str();
        metrics
            .batch_duration
            .with_label_values(&[label])
            .observe(report.duration_ms / 1000.0);
        metrics
            .lacking_data
            .with_label_values(&[label])
            .set(report.lacking_data as i64);
        let status = if report.data_failures == 0 {
            "ok"
        } else {
            "partial"
        };
        metrics.batches.with_label_values(&[label, status]).inc();
        metrics
            .last_batch
            .with_label_values(&[label])
            .set(Utc::now().timestamp() as f64);
        self.last_runs.record(
            &plan.name,
            LastRun {
                started_at: plan.started_at,
                due: plan.due,
                duration_ms: report.duration_ms,
                evaluated: report.evaluated,
                triggered: report.triggered,
                errors: report.errors,
                data_failures: report.data_failures,
                cache_hit_rate: prefetch.hit_rate(),
                status,
            },
        );
        self.write_ledger(LedgerEntry {
            name: format!("batch:{}", plan.name),
            started_at: plan.started_at,
            duration_ms: report.duration_ms,
            evaluated: report.evaluated,
            triggered: report.triggered,
            errors: report.errors,
            skipped: 0,
            status,
            details: json!({
                "data_failures": report.data_failures,
                "lacking_data": report.lacking_data,
                "demand": prefetch.demand,
                "fetched": prefetch.fetched,
            }),
        })
        .await;
        tracing::info!(
            frequency = %plan.name,
            evaluated = report.evaluated,
            triggered = report.triggered,
            errors = report.errors,
            duration_ms = report.duration_ms,
            "batch evaluated"
        );
        Ok(())
    }

    /// Counts a failed batch and writes its ledger row.
    pub(super) async fn record_failure(
        &self,
        name: &str,
        label: &str,
        started_at: DateTime<Utc>,
        error: &BatchError,
    ) {
        self.metrics
            .scheduler
            .batches
            .with_label_values(&[label, "failed"])
            .inc();
        let duration = Utc::now() - started_at;
        self.write_ledger(LedgerEntry {
            name: format!("batch:{name}"),
            started_at,
            duration_ms: duration.num_microseconds().unwrap_or(0) as f64 / 1000.0,
            evaluated: 0,
            triggered: 0,
            errors: 0,
            skipped: 0,
            status: "failed",
            details: json!({"error": error.to_string()}),
        })
        .await;
    }

    /// Writes a ledger row (with any waiting before it); when Postgres cannot take it,
    /// it waits for the next write.
    pub(super) async fn write_ledger(&self, entry: LedgerEntry) {
        if let Err(error) = self.ledger.write(entry).await {
            tracing::warn!(
                %error,
                waiting = self.ledger.waiting(),
                "ledger row kept until Postgres answers"
            );
        }
    }
}
