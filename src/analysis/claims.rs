//! Claiming closes: each candle close of a series with monitored schedules becomes one
//! `pending` decision row per schedule (one statement per series and close), queued
//! for the worker. Also keeps the schedule book current, catches up the latest close
//! after downtime, and takes over claims a crashed replica left pending.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::book::Book;
use super::{AnalysisCore, Job};
use crate::market::{CandleClosed, SeriesKey};
use crate::storage::monitoring_decisions::{self, ClaimRequest};
use crate::storage::workflow_schedules::{self, ScheduleRow};

/// How often the book is read again without being asked, and stale claims looked for.
const RESYNC: Duration = Duration::from_secs(10);
/// A claim is taken over once pending this much longer than a call may take.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(5);

/// Claims each close of a followed series, until `shutdown`.
pub(super) async fn follow_closes(
    inner: Arc<AnalysisCore>,
    mut closes: broadcast::Receiver<CandleClosed>,
    shutdown: CancellationToken,
) {
    use tokio::sync::broadcast::error::TryRecvError;
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            close = closes.recv() => close,
        };
        let mut batch = Vec::new();
        match first {
            Ok(close) => batch.push((close.series, close.open_time_ms)),
            // The dropped closes are older than what follows: only the latest counts.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "close events dropped")
            }
            Err(RecvError::Closed) => return,
        }
        // Closes that arrive together (a boundary closes every series of an interval
        // at once) are claimed in one statement.
        loop {
            match closes.try_recv() {
                Ok(close) => batch.push((close.series, close.open_time_ms)),
                Err(TryRecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "close events dropped")
                }
                Err(_) => break,
            }
        }
        if let Err(error) = inner.on_closes(&batch).await {
            tracing::warn!(%error, "closes not claimed");
        }
    }
}

/// Loads the book (retrying), catches up the latest close of each series, then reloads
/// when asked or every [`RESYNC`], taking over stale claims each time.
pub(super) async fn keep_current(inner: Arc<AnalysisCore>, shutdown: CancellationToken) {
    let mut delays =
        crate::outbound::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match inner.reload_book().await {
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, "schedules not loaded; retrying")
            }
        }
        if !delays.pause(&shutdown).await {
            return;
        }
    }
    if let Err(error) = inner.catch_up().await {
        tracing::warn!(%error, "catch-up after start failed");
    }
    loop {
        if let Err(error) = inner.resume_stale().await {
            tracing::warn!(%error, "stale claims not resumed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = inner.reload.notified() => {}
            () = tokio::time::sleep(RESYNC) => {}
        }
        if let Err(error) = inner.reload_book().await {
            tracing::warn!(%error, "schedules not reloaded");
        }
    }
}

impl AnalysisCore {
    /// Reads the monitored schedules and follows their series.
    pub(super) async fn reload_book(&self) -> Result<usize, sqlx::Error> {
        let rows = workflow_schedules::active(&self.db).await?;
        let book = Book::of(rows);
        let held = book.len();
        if book.unusable > 0 {
            tracing::warn!(
                unusable = book.unusable,
                "schedules with an interval or symbol the candle feed cannot follow are not analysed"
            );
        }
        self.market.set_streams_of("analysis", book.series());
        self.book.replace(book);
        Ok(held)
    }

    /// Closes of series (each the candle opened at its time): claims them for their
    /// schedules — one statement per candle time — unless a close is older than its
    /// series' latest closed candle (a backfill after downtime) or analysis is paused.
    pub(super) async fn on_closes(
        &self,
        closes: &[(SeriesKey, i64)],
    ) -> Result<usize, sqlx::Error> {
        let book = self.book.get();
        let now_ms = self.market.clock().now_ms();
        let mut by_candle: BTreeMap<i64, Vec<(SeriesKey, ScheduleRow)>> = BTreeMap::new();
        for (series, open_time) in closes {
            let Some(schedules) = book.by_series.get(series) else {
                continue;
            };
            if let Ok(mut latest) = self.latest.lock() {
                let entry = latest.entry(series.clone()).or_insert(*open_time);
                *entry = (*entry).max(*open_time);
            }
            let skipped = |reason: &str| {
                self.metrics
                    .skipped
                    .with_label_values(&[reason])
                    .inc_by(schedules.len() as u64);
            };
            if self.is_paused() {
                skipped("paused");
                continue;
            }
            if *open_time < series.interval.last_closed_open(now_ms) {
                skipped("stale");
                continue;
            }
            by_candle
                .entry(*open_time)
                .or_default()
                .extend(schedules.iter().map(|s| (series.clone(), s.clone())));
        }
        let mut claimed = 0;
        for (open_time, schedules) in by_candle {
            claimed += self.claim(open_time, &schedules).await?;
        }
        Ok(claimed)
    }

    /// After a start: the latest closed candle of each series, for the schedules
    /// already in the cycle (analysed at a close before) whose last analysed candle is
    /// older — the close they missed while no replica ran. Older missed closes are
    /// not analysed (stale candles cost tokens for nothing).
    pub(super) async fn catch_up(&self) -> Result<usize, sqlx::Error> {
        if self.is_paused() {
            return Ok(0);
        }
        let now_ms = self.market.clock().now_ms();
        let book = self.book.get();
        let mut by_candle: BTreeMap<i64, Vec<(SeriesKey, ScheduleRow)>> = BTreeMap::new();
        for (series, schedules) in &book.by_series {
            let latest = series.interval.last_closed_open(now_ms);
            by_candle.entry(latest).or_default().extend(
                schedules
                    .iter()
                    .filter(|s| s.last_candle_time.is_some_and(|t| t < latest))
                    .map(|s| (series.clone(), s.clone())),
            );
        }
        let mut claimed = 0;
        for (open_time, schedules) in by_candle {
            claimed += self.claim(open_time, &schedules).await?;
        }
        Ok(claimed)
    }

    /// Claims `open_time` for the eligible `schedules` (each with its series) in one
    /// statement and queues what this replica claimed.
    async fn claim(
        &self,
        open_time: i64,
        schedules: &[(SeriesKey, ScheduleRow)],
    ) -> Result<usize, sqlx::Error> {
        let mut requests = Vec::with_capacity(schedules.len());
        let mut series_of = HashMap::with_capacity(schedules.len());
        let mut other_traders = 0;
        for (series, schedule) in schedules {
            if !self.settings.allows(schedule.trader_id) {
                other_traders += 1;
                continue;
            }
            if schedule.last_candle_time.is_some_and(|t| t >= open_time) {
                continue;
            }
            requests.push(ClaimRequest {
                schedule_id: schedule.id,
                entity_id: schedule.entity_id,
                trader_id: schedule.trader_id,
            });
            series_of.insert(schedule.id, series);
        }
        if other_traders > 0 {
            self.metrics
                .skipped
                .with_label_values(&["trader"])
                .inc_by(other_traders);
        }
        if requests.is_empty() {
            return Ok(0);
        }
        let claimed =
            monitoring_decisions::claim(&self.db, &requests, open_time, &self.replica).await?;
        if !claimed.is_empty() {
            crate::failpoint::reached("analysis_after_claim").await;
        }
        for (schedule_id, decision_id) in &claimed {
            let Some(series) = series_of.get(schedule_id) else {
                continue;
            };
            self.enqueue(Job {
                decision_id: *decision_id,
                schedule_id: *schedule_id,
                series: (*series).clone(),
                candle_open_time: open_time,
            });
        }
        tracing::debug!(
            open_time_ms = open_time,
            claimed = claimed.len(),
            "closes claimed"
        );
        Ok(claimed.len())
    }

    fn enqueue(&self, job: Job) {
        if self.queue.send(job).is_ok() {
            self.metrics.queue_depth.inc();
        }
    }

    /// Takes over claims pending longer than a call may take and queues them (the
    /// worker skips those whose series has closed since).
    pub(super) async fn resume_stale(&self) -> Result<usize, sqlx::Error> {
        let older_than = self.settings.timeout + TAKEOVER_MARGIN;
        let stale =
            monitoring_decisions::take_over_stale(&self.db, older_than, &self.replica, 1000)
                .await?;
        let book = self.book.get();
        let mut resumed = 0;
        for (schedule_id, decision_id, candle_open_time) in stale {
            let series = match book.find(schedule_id).and_then(super::series_of) {
                Some(series) => series,
                None => {
                    // No longer monitored: nothing to analyse.
                    self.finish_skipped(&[decision_id], "inactive").await?;
                    continue;
                }
            };
            tracing::info!(%schedule_id, candle_open_time, "resuming a claim left pending");
            self.enqueue(Job {
                decision_id,
                schedule_id,
                series,
                candle_open_time,
            });
            resumed += 1;
        }
        Ok(resumed)
    }
}
