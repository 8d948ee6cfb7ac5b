//! Applies a batch of ticks in one transaction: stores them, locks each engine's state
//! row (in id order), evaluates every rule on each tick in order against the engine's
//! thresholds, raises or resolves alerts as rules start or stop holding, and writes the
//! state back. Alerts are raised inside the transaction — under the engine's row lock,
//! so replicas taking alternate ticks of one engine agree — and announced after commit.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::rules::{Defaults, Input, RULES, Verdict};
use super::thresholds::{Setting, setting};
use super::tick::Tick;
use crate::ops_alerts::{OpsAlerts, RaiseOutcome, Severity};
use crate::storage::alert_thresholds::{self, ThresholdRow};
use crate::storage::engine_metrics::{self, MetricsRow};
use crate::storage::engine_state::{self, EngineStateRow};
use crate::storage::ops_alerts::AlertRow;

/// A tick and when it was received (server clock).
#[derive(Debug, Clone)]
pub struct Received {
    pub tick: Tick,
    pub received_at: DateTime<Utc>,
}

/// What committed and must now be announced.
#[derive(Debug)]
pub enum Change {
    Raised(RaiseOutcome),
    Resolved(AlertRow),
}

/// Applies ticks and judges heartbeats.
#[derive(Clone)]
pub struct Applier {
    db: PgPool,
    alerts: OpsAlerts,
    defaults: Defaults,
    /// `monitoring_ops_rule_evaluation_seconds`.
    evaluation: prometheus::Histogram,
}

/// The labels of an engine's alerts.
pub fn engine_labels(engine_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("component".to_owned(), "engine".to_owned()),
        ("engine_id".to_owned(), engine_id.to_owned()),
    ])
}

/// The severity a state row records `rule` as holding at.
pub fn held(state: &EngineStateRow, rule: &str) -> Option<Severity> {
    state.holding.get(rule)?.as_str().and_then(Severity::parse)
}

/// Records `rule` as holding at `severity` (or not, with `None`).
pub fn set_held(state: &mut EngineStateRow, rule: &str, severity: Option<Severity>) {
    if !state.holding.is_object() {
        state.holding = Value::Object(Default::default());
    }
    let map = state.holding.as_object_mut().expect("an object");
    match severity {
        Some(severity) => map.insert(rule.to_owned(), Value::from(severity.as_str())),
        None => map.remove(rule),
    };
}

impl Applier {
    pub fn new(
        db: PgPool,
        alerts: OpsAlerts,
        defaults: Defaults,
        evaluation: prometheus::Histogram,
    ) -> Self {
        Self {
            db,
            alerts,
            defaults,
            evaluation,
        }
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn alerts(&self) -> &OpsAlerts {
        &self.alerts
    }

    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Applies `ticks` in one transaction; answers, for each tick, the ids of the alerts
    /// its holding rules raised (opened or still firing).
    pub async fn apply(&self, ticks: &[Received]) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let rows: Vec<MetricsRow> = ticks
            .iter()
            .map(|r| MetricsRow {
                engine_id: r.tick.engine_id.clone(),
                recorded_at: r.tick.timestamp.unwrap_or(r.received_at),
                received_at: r.received_at,
                metrics: serde_json::to_value(&r.tick).unwrap_or_default(),
            })
            .collect();
        engine_metrics::insert_many(&mut tx, &rows).await?;
        let mut engines: Vec<String> = rows.iter().map(|r| r.engine_id.clone()).collect();
        engines.sort();
        engines.dedup();
        let mut states: HashMap<String, EngineStateRow> = engine_state::lock(&mut tx, &engines)
            .await?
            .into_iter()
            .map(|row| (row.engine_id.clone(), row))
            .collect();
        let thresholds = alert_thresholds::all(&mut tx).await?;
        let mut answers = Vec::with_capacity(ticks.len());
        let mut changes = Vec::new();
        for (received, row) in ticks.iter().zip(rows) {
            let Some(state) = states.get_mut(&row.engine_id) else {
                answers.push(Vec::new());
                continue;
            };
            state.last_received_at = state.last_received_at.max(Some(received.received_at));
            if state
                .last_recorded_at
                .is_some_and(|last| row.recorded_at < last)
            {
                // Older than what the engine already told us: stored, not judged.
                answers.push(Vec::new());
                continue;
            }
            state.last_recorded_at = Some(row.recorded_at);
            state.last_metrics = Some(row.metrics);
            let raised = self
                .judge(
                    &mut tx,
                    received,
                    row.recorded_at,
                    state,
                    &thresholds,
                    &mut changes,
                )
                .await?;
            answers.push(raised);
        }
        let states: Vec<EngineStateRow> = states.into_values().collect();
        engine_state::save(&mut tx, &states).await?;
        tx.commit().await?;
        self.announce(changes).await;
        Ok(answers)
    }

    /// Evaluates every rule on one tick and moves its alerts; answers the ids raised.
    async fn judge(
        &self,
        tx: &mut sqlx::PgConnection,
        received: &Received,
        at: DateTime<Utc>,
        state: &mut EngineStateRow,
        thresholds: &[ThresholdRow],
        changes: &mut Vec<Change>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let engine_id = received.tick.engine_id.as_str();
        let started = Instant::now();
        let verdicts: Vec<(&'static str, Verdict)> = RULES
            .iter()
            .map(|rule| {
                let verdict = match setting(rule, engine_id, thresholds, &self.defaults) {
                    Setting::Off => Verdict::Clear,
                    Setting::On(levels) => (rule.evaluate)(&Input {
                        tick: &received.tick,
                        at,
                        levels: &levels,
                        max_total_exposure: self.defaults.max_total_exposure,
                    }),
                };
                (rule.name, verdict)
            })
            .collect();
        self.evaluation.observe(started.elapsed().as_secs_f64());
        let labels = engine_labels(engine_id);
        let mut raised = Vec::new();
        for (rule, verdict) in verdicts {
            let before = held(state, rule);
            match verdict {
                Verdict::Absent => {}
                Verdict::Clear => {
                    if before.is_some() {
                        self.resolve(tx, rule, &labels, changes).await?;
                        set_held(state, rule, None);
                    }
                }
                Verdict::Holds(finding) => {
                    if before.is_some_and(|s| s != finding.severity) {
                        // Another level: the old episode ends, a new one opens.
                        self.resolve(tx, rule, &labels, changes).await?;
                    }
                    let outcome = self
                        .alerts
                        .raise_in(
                            tx,
                            rule,
                            &labels,
                            finding.severity,
                            &finding.title,
                            &finding.message,
                            &finding.context,
                        )
                        .await?;
                    set_held(state, rule, Some(finding.severity));
                    raised.push(outcome.alert.alert_id.clone());
                    changes.push(Change::Raised(outcome));
                }
            }
        }
        Ok(raised)
    }

    async fn resolve(
        &self,
        tx: &mut sqlx::PgConnection,
        rule: &str,
        labels: &BTreeMap<String, String>,
        changes: &mut Vec<Change>,
    ) -> Result<(), sqlx::Error> {
        if let Some(alert) = self.alerts.resolve_in(tx, rule, labels).await? {
            changes.push(Change::Resolved(alert));
        }
        Ok(())
    }

    /// Announces committed changes (log, journal, stream).
    pub async fn announce(&self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Raised(outcome) => self.alerts.announce_raise(&outcome).await,
                Change::Resolved(alert) => self.alerts.announce_resolved(&alert).await,
            }
        }
    }
}
