//! The queue of claimed closes and the calls: at most `ANALYSIS_RATE_PER_MINUTE`
//! started a minute (governor, evenly spaced) and `ANALYSIS_MAX_CONCURRENCY` at once;
//! a close whose series has closed again before its call starts is skipped. Each
//! answer is written with its schedule's transition in one transaction, then
//! published; a failure is recorded on the claim and counted in the schedule's error
//! streak, which at `ANALYSIS_MAX_CONSECUTIVE_ERRORS` puts it in `error` and raises the
//! one `analysis_failing` alert.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use governor::{Quota, RateLimiter};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::{AnalysisRequest, CallError, CandleJson};
use super::transition;
use super::{AnalysisCore, DECISIONS_CHANNEL, FAILING_RULE, Job};
use crate::market::{DataNeed, DataNeeds};
use crate::ops_alerts::Severity;
use crate::storage::monitoring_decisions::{self, Completion};
use crate::storage::workflow_schedules::{self, ScheduleRow};

/// Starts calls for queued jobs within the budget, until `shutdown`. Jobs left in the
/// queue, and calls cut short by the shutdown, stay `pending` in Postgres and are taken
/// over after the timeout. Calls run under `tasks`, so shutdown waits for them.
pub(super) async fn dispatch(
    inner: Arc<AnalysisCore>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let rate = NonZeroU32::new(inner.settings.rate_per_minute.max(1)).expect("at least 1");
    // A burst of one: calls are spaced evenly over the minute.
    let limiter = RateLimiter::direct(Quota::per_minute(rate).allow_burst(NonZeroU32::MIN));
    let slots = Arc::new(Semaphore::new(inner.settings.max_concurrency.max(1)));
    loop {
        let job = tokio::select! {
            () = shutdown.cancelled() => return,
            job = jobs.recv() => job,
        };
        let Some(job) = job else { return };
        inner.metrics.queue_depth.dec();
        if inner.superseded(&job) {
            inner.skip_superseded(job, &mut jobs).await;
            continue;
        }
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = limiter.until_ready() => {}
        }
        if inner.superseded(&job) {
            drop(permit);
            inner.skip_superseded(job, &mut jobs).await;
            continue;
        }
        inner.metrics.in_flight.inc();
        let (inner, shutdown) = (inner.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => inner.metrics.in_flight.dec(),
                () = call(inner.clone(), job, permit) => {}
            }
        });
    }
}

/// One call and its outcome.
async fn call(inner: Arc<AnalysisCore>, job: Job, permit: OwnedSemaphorePermit) {
    if let Err(error) = inner.analyse(&job).await {
        tracing::warn!(%error, schedule_id = %job.schedule_id,
            "analysis outcome not recorded; the claim is resumed after the timeout");
    }
    inner.metrics.in_flight.dec();
    drop(permit);
}

impl AnalysisCore {
    /// Whether the series of `job` has closed again since its candle.
    fn superseded(&self, job: &Job) -> bool {
        let latest_seen = self
            .latest
            .lock()
            .ok()
            .and_then(|latest| latest.get(&job.series).copied());
        let latest_closed = job
            .series
            .interval
            .last_closed_open(self.market.clock().now_ms());
        latest_seen.max(Some(latest_closed)) > Some(job.candle_open_time)
    }

    /// Skips `job` and every job queued right behind it that is superseded too, in
    /// one statement.
    async fn skip_superseded(&self, job: Job, jobs: &mut mpsc::UnboundedReceiver<Job>) {
        let mut ids = vec![job.decision_id];
        let mut kept = Vec::new();
        while ids.len() < 10_000 {
            let Ok(next) = jobs.try_recv() else { break };
            self.metrics.queue_depth.dec();
            if self.superseded(&next) {
                ids.push(next.decision_id);
            } else {
                kept.push(next);
                break;
            }
        }
        if let Err(error) = self.finish_skipped(&ids, "superseded").await {
            tracing::warn!(%error, "skipped claims not recorded");
        }
        // A job taken out that still stands goes back in line (at its end: rare).
        for job in kept {
            self.enqueue_again(job);
        }
    }

    fn enqueue_again(&self, job: Job) {
        if self.queue.send(job).is_ok() {
            self.metrics.queue_depth.inc();
        }
    }

    /// Marks claims skipped for `reason` and counts them.
    pub(super) async fn finish_skipped(
        &self,
        ids: &[uuid::Uuid],
        reason: &'static str,
    ) -> Result<(), sqlx::Error> {
        let skipped = monitoring_decisions::skip_many(&self.db, ids, reason).await?;
        self.metrics
            .skipped
            .with_label_values(&[reason])
            .inc_by(skipped);
        Ok(())
    }

    /// Calls the llm-proxy for `job` and records the outcome.
    async fn analyse(&self, job: &Job) -> Result<(), sqlx::Error> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let schedule = match workflow_schedules::get(&self.db, job.schedule_id).await? {
            Some(s) if s.is_active && s.status == "monitoring" => s,
            _ => return self.finish_skipped(&[job.decision_id], "inactive").await,
        };
        let started = Instant::now();
        let outcome = match self.candles(job).await {
            Some(candles) => {
                let request = AnalysisRequest {
                    operation: "analyze-signal",
                    signal_id: schedule.entity_id,
                    trader_id: schedule.trader_id,
                    symbol: job.series.symbol.to_string(),
                    interval: job.series.interval.to_string(),
                    candle_open_time: job.candle_open_time,
                    reanalysis: schedule.reanalysis_count + 1,
                    candles,
                };
                client.analyze(&request).await
            }
            None => Err(CallError::Invalid(
                "the candles to send are unavailable".to_owned(),
            )),
        };
        let elapsed = started.elapsed();
        let label = match &outcome {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.metrics.calls.with_label_values(&[label]).inc();
        self.metrics
            .latency
            .with_label_values(&[label])
            .observe(elapsed.as_secs_f64());
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        match outcome {
            Ok(answer) => self.record_decision(job, answer, latency_ms).await,
            Err(error) => {
                self.record_failure(job, &schedule, &error, latency_ms)
                    .await
            }
        }
    }

    /// The last `ANALYSIS_CANDLES` closed candles up to the job's, from the kline
    /// cache (fetched through it when the feed does not hold them).
    async fn candles(&self, job: &Job) -> Option<Vec<CandleJson>> {
        let mut needs = DataNeeds::default();
        needs.add(DataNeed::Candles(job.series.clone(), self.settings.candles));
        let fetched = self.market.fetch(&needs).await;
        let series = fetched.snapshot.candles(&job.series)?;
        let end = series
            .open_time
            .partition_point(|&t| t <= job.candle_open_time);
        if end == 0 || series.open_time[end - 1] != job.candle_open_time {
            return None;
        }
        let start = end.saturating_sub(self.settings.candles);
        Some(
            (start..end)
                .map(|i| CandleJson {
                    open_time: series.open_time[i],
                    open: series.open[i],
                    high: series.high[i],
                    low: series.low[i],
                    close: series.close[i],
                    volume: series.volume[i],
                })
                .collect(),
        )
    }

    /// Writes the decision and the transition in one transaction, then publishes it.
    async fn record_decision(
        &self,
        job: &Job,
        answer: super::Answer,
        latency_ms: f64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let Some(schedule) = workflow_schedules::lock(&mut tx, job.schedule_id).await? else {
            return Ok(());
        };
        let completion = Completion {
            decision: answer.decision.as_str(),
            confidence: Some(answer.confidence),
            reasoning: Some(&answer.reasoning),
            response: Some(&answer.raw),
            latency_ms: Some(latency_ms),
        };
        if !monitoring_decisions::complete(&mut tx, job.decision_id, &completion).await? {
            // Completed by a replica that took the claim over meanwhile.
            return Ok(());
        }
        // An answer that comes back after a later close's (or after the schedule left
        // monitoring) is stored but moves nothing and is not published.
        let current = schedule.status == "monitoring"
            && schedule
                .last_candle_time
                .is_none_or(|t| t < job.candle_open_time);
        if !current {
            tx.commit().await?;
            self.metrics.skipped.with_label_values(&["outdated"]).inc();
            return Ok(());
        }
        let progress = transition::progress(&schedule, answer.decision, job.candle_open_time);
        workflow_schedules::save_progress(&mut tx, schedule.id, &progress).await?;
        tx.commit().await?;

        self.metrics
            .decisions
            .with_label_values(&[answer.decision.as_str()])
            .inc();
        if let Some(usage) = answer.usage {
            self.metrics
                .tokens
                .with_label_values(&["prompt"])
                .inc_by(usage.prompt_tokens);
            self.metrics
                .tokens
                .with_label_values(&["completion"])
                .inc_by(usage.completion_tokens);
        }
        tracing::info!(schedule_id = %schedule.id,
            signal_id = %schedule.entity_id, decision = answer.decision.as_str(),
            confidence = answer.confidence, status = %progress.status,
            candle_open_time = job.candle_open_time, "signal analysed");
        self.publish(&schedule, &answer, job.candle_open_time, &progress.status)
            .await;
        if progress.status != "monitoring" {
            self.reload.notify_one();
        }
        // The endpoint answers again: the failing alert, if open, resolves.
        if let Err(error) = self.alerts.resolve(FAILING_RULE, &failing_labels()).await {
            tracing::warn!(%error, "analysis_failing not resolved");
        }
        Ok(())
    }

    /// Records a failed call: on the claim, in the schedule's streak, and in the alert
    /// when the schedule went to `error`.
    async fn record_failure(
        &self,
        job: &Job,
        schedule: &ScheduleRow,
        error: &CallError,
        latency_ms: f64,
    ) -> Result<(), sqlx::Error> {
        let reason = error.to_string();
        let mut tx = self.db.begin().await?;
        let completion = Completion {
            decision: "failed",
            confidence: None,
            reasoning: Some(&reason),
            response: None,
            latency_ms: Some(latency_ms),
        };
        let completed =
            monitoring_decisions::complete(&mut tx, job.decision_id, &completion).await?;
        tx.commit().await?;
        if !completed {
            return Ok(());
        }
        let max = self.settings.max_consecutive_errors;
        let streak = workflow_schedules::record_error(&self.db, schedule.id, max).await?;
        tracing::warn!(schedule_id = %schedule.id,
            kind = error.kind(), error = %reason, streak = ?streak.map(|s| s.0), "analysis failed");
        if let Some((_, true)) = streak {
            self.reload.notify_one();
            let in_error = workflow_schedules::count_in_error(&self.db).await?;
            let context = json!({"schedules_in_error": in_error, "last_error": error.kind(),
                                 "max_consecutive_errors": max});
            self.alerts
                .raise(
                    FAILING_RULE,
                    &failing_labels(),
                    Severity::Warning,
                    "Signal analysis failing",
                    &format!(
                        "{in_error} signal schedule(s) stopped after {max} failed analyses in a row (last: {})",
                        error.kind()
                    ),
                    &context,
                )
                .await?;
        }
        Ok(())
    }

    /// `signal.decision` on Redis: synapse-api acts on it.
    async fn publish(
        &self,
        schedule: &ScheduleRow,
        answer: &super::Answer,
        candle_open_time: i64,
        status: &str,
    ) {
        let Some(mut redis) = self.redis.clone() else {
            return;
        };
        let message = json!({"signal_id": schedule.entity_id, "trader_id": schedule.trader_id,
            "decision": answer.decision.as_str(), "confidence": answer.confidence,
            "candle_open_time": candle_open_time, "status": status});
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(DECISIONS_CHANNEL)
            .arg(message.to_string())
            .query_async(&mut redis)
            .await;
        if let Err(error) = published {
            tracing::warn!(kind = ?error.kind(), "signal.decision not published");
        }
    }
}

/// The one fingerprint of the endpoint's failing alert.
fn failing_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("component".to_owned(), "analysis".to_owned())])
}
