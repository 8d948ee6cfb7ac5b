//! Re-sends of posted alerts, written behind. Prometheus re-sends every firing alert
//! every minute from every replica of an HA pair, and a re-send changes nothing but
//! the episode's `last_seen_at` and `ends_at` (and annotations). A re-send of an alert
//! this replica saw open within [`KNOWN_FOR`], whose stored and new ends are both more
//! than [`END_MARGIN`] away, is answered from memory and written with every other one received since
//! within a second ([`OpsAlerts::flush_refreshes`], one statement), and at shutdown.
//! New alerts, resolutions and everything else are committed before the answer.
//!
//! What that costs: a replica killed in that second loses those refreshes — the
//! episodes stay open (their end is minutes away) and the next re-send refreshes them.
//! A refresh whose episode closed meanwhile opens a new one only if it was received
//! after that close (a firing re-send older than a resolution does not reopen it).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::OpsAlerts;
use crate::storage::ops_alerts::{self, PostedRow};

/// How long an episode this replica wrote or refreshed counts as known open.
pub const KNOWN_FOR: Duration = Duration::from_secs(30);
/// A re-send of an alert whose stored end is this close is written at once.
pub const END_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// An episode this replica knows open: its end, and when that was last confirmed.
#[derive(Debug, Clone, Copy)]
struct Known {
    ends_at: DateTime<Utc>,
    confirmed: Instant,
}

#[derive(Debug, Default)]
struct Buffers {
    known: HashMap<String, Known>,
    /// The latest re-send of each fingerprint not written yet.
    pending: HashMap<String, PostedRow>,
}

/// This replica's known-open episodes and buffered re-sends.
#[derive(Debug, Default)]
pub struct Refreshes {
    buffers: Mutex<Buffers>,
}

impl Refreshes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffers> {
        self.buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Buffers the rows that re-send a known-open episode (returns how many) and
    /// returns the others, to be written now.
    pub fn buffer_known(
        &self,
        rows: Vec<PostedRow>,
        now: DateTime<Utc>,
    ) -> (usize, Vec<PostedRow>) {
        let mut buffers = self.lock();
        let mut buffered = 0;
        let mut direct = Vec::new();
        for row in rows {
            let known = buffers.known.get(&row.fingerprint).is_some_and(|known| {
                known.confirmed.elapsed() < KNOWN_FOR
                    && known.ends_at > now + END_MARGIN
                    && row.ends_at > now + END_MARGIN
            });
            if known {
                buffered += 1;
                buffers.pending.insert(row.fingerprint.clone(), row);
            } else {
                direct.push(row);
            }
        }
        (buffered, direct)
    }

    /// Records episodes seen open now, with their ends.
    pub fn remember<'a>(&self, open: impl IntoIterator<Item = (&'a str, DateTime<Utc>)>) {
        let mut buffers = self.lock();
        let confirmed = Instant::now();
        for (fingerprint, ends_at) in open {
            buffers
                .known
                .insert(fingerprint.to_owned(), Known { ends_at, confirmed });
        }
    }

    /// Forgets `fingerprints` (resolved): no buffered re-send of them is written.
    pub fn forget(&self, fingerprints: &[String]) {
        let mut buffers = self.lock();
        for fingerprint in fingerprints {
            buffers.known.remove(fingerprint);
            buffers.pending.remove(fingerprint);
        }
    }

    /// Takes the buffered re-sends, and drops what is no longer known.
    fn take_pending(&self) -> Vec<PostedRow> {
        let mut buffers = self.lock();
        buffers
            .known
            .retain(|_, known| known.confirmed.elapsed() < KNOWN_FOR);
        buffers.pending.drain().map(|(_, row)| row).collect()
    }

    /// Puts back re-sends a failed write did not store, unless newer ones came since.
    fn requeue(&self, rows: Vec<PostedRow>) {
        let mut buffers = self.lock();
        for row in rows {
            buffers
                .pending
                .entry(row.fingerprint.clone())
                .or_insert(row);
        }
    }
}

impl OpsAlerts {
    /// Writes the buffered re-sends: refreshes their open episodes in one statement;
    /// one whose episode closed meanwhile opens a new episode if it was received after
    /// that close, and is dropped otherwise. Returns how many were written.
    pub async fn flush_refreshes(&self) -> Result<usize, sqlx::Error> {
        let mut rows = self.refreshes.take_pending();
        if rows.is_empty() {
            return Ok(0);
        }
        rows.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        let written = self.write_refreshes(&rows).await;
        if written.is_err() {
            self.refreshes.requeue(rows);
        }
        written
    }

    async fn write_refreshes(&self, rows: &[PostedRow]) -> Result<usize, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        let refreshed: HashSet<String> = ops_alerts::refresh_open(&mut conn, rows)
            .await?
            .into_iter()
            .collect();
        self.refreshes.remember(
            rows.iter()
                .filter(|row| refreshed.contains(&row.fingerprint))
                .map(|row| (row.fingerprint.as_str(), row.ends_at)),
        );
        let closed: Vec<&PostedRow> = rows
            .iter()
            .filter(|row| !refreshed.contains(&row.fingerprint))
            .collect();
        if closed.is_empty() {
            return Ok(rows.len());
        }
        let fingerprints: Vec<String> = closed.iter().map(|r| r.fingerprint.clone()).collect();
        let last_closed: HashMap<String, DateTime<Utc>> =
            ops_alerts::last_closed(&mut conn, &fingerprints)
                .await?
                .into_iter()
                .collect();
        let (reopen, stale): (Vec<&PostedRow>, Vec<&PostedRow>) =
            closed.into_iter().partition(|row| {
                last_closed
                    .get(&row.fingerprint)
                    .is_none_or(|at| row.seen_at > *at)
            });
        let stale: Vec<String> = stale.iter().map(|r| r.fingerprint.clone()).collect();
        self.refreshes.forget(&stale);
        let reopen: Vec<PostedRow> = reopen.into_iter().cloned().collect();
        if !reopen.is_empty() {
            self.store_posted(&mut conn, &reopen).await?;
        }
        Ok(rows.len() - stale.len())
    }

    /// Keeps posted alerts current until shutdown: every `every`, writes the buffered
    /// re-sends and resolves the alerts past their end; at shutdown, writes the
    /// buffered re-sends once more.
    pub async fn run_posted_upkeep(
        self,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            if let Err(error) = self.flush_refreshes().await {
                tracing::warn!(%error, "writing re-sent posted alerts failed; retrying");
            }
            if let Err(error) = self.expire_ended().await {
                tracing::warn!(%error, "resolving ended posted alerts failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        if let Err(error) = self.flush_refreshes().await {
            tracing::warn!(%error, "writing re-sent posted alerts at shutdown failed");
        }
    }
}
