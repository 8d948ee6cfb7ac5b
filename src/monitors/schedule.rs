//! The schedule: one `tokio-cron-scheduler` job per monitor. An interval monitor's job
//! repeats every `interval_seconds` of its heartbeat row; the rows are read every
//! second and a job whose interval changed (an UPDATE or the PATCH route, on any
//! replica) is registered again, so the change holds from the next cycle without a
//! restart. A strategy bucket's job is a cron job on its frequency's boundaries
//! (`1m` → `0 * * * * *`, a cron frequency → itself); the scheduler checks its jobs
//! every 500 ms, so a batch starts within about half a second of its boundary, and
//! runs for that boundary. Jobs are added and removed as monitors (buckets) come and go.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Cadence;
use super::registry::{Registry, RunError, Trigger};
use crate::frequency::Frequency;
use crate::storage::monitor_heartbeat;

/// How a job was registered: what, when changed, makes it registered again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobKey {
    Every(u64),
    Cron(String),
}

/// The cron expression (seconds first, UTC) of a frequency's boundaries; `None` for
/// `candle_close`.
pub fn cron_of(frequency: &Frequency) -> Option<String> {
    match frequency {
        Frequency::Every(seconds) => Some(match *seconds {
            s if s < 60 => format!("*/{s} * * * * *"),
            s if s < 3600 => format!("0 */{} * * * *", s / 60),
            s if s < 86_400 => format!("0 0 */{} * * *", s / 3600),
            _ => "0 0 0 * * *".to_owned(),
        }),
        Frequency::Cron(expression) => Some(expression.to_string()),
        Frequency::CandleClose => None,
    }
}

/// Fires the registry's monitors on time.
pub struct Schedule {
    scheduler: JobScheduler,
    registry: Arc<Registry>,
    jobs: BTreeMap<String, (Uuid, JobKey)>,
    /// Whether strategy buckets are scheduled (`ENABLE_SCHEDULER`).
    with_buckets: bool,
}

impl Schedule {
    /// Starts the scheduler; jobs follow the registry until `shutdown`.
    pub async fn run(registry: Arc<Registry>, with_buckets: bool, shutdown: CancellationToken) {
        let scheduler = match JobScheduler::new().await {
            Ok(scheduler) => scheduler,
            Err(error) => {
                tracing::error!(%error, "the job scheduler did not start; no monitor runs on time");
                return;
            }
        };
        if let Err(error) = scheduler.start().await {
            tracing::error!(%error, "the job scheduler did not start; no monitor runs on time");
            return;
        }
        let mut schedule = Schedule {
            scheduler,
            registry,
            jobs: BTreeMap::new(),
            with_buckets,
        };
        let mut changes = schedule.registry.changes();
        loop {
            schedule.sync().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = changes.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let _ = schedule.scheduler.shutdown().await;
    }

    /// Makes the jobs match the registry and the heartbeat rows' intervals.
    async fn sync(&mut self) {
        let rows = monitor_heartbeat::all(self.registry.db()).await;
        let intervals: BTreeMap<String, i32> = match &rows {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| Some((row.monitor_name.clone(), row.interval_seconds?)))
                .collect(),
            // Postgres unreachable: the jobs stay as they are.
            Err(_) => self
                .jobs
                .iter()
                .filter_map(|(name, (_, key))| match key {
                    JobKey::Every(s) => Some((name.clone(), i32::try_from(*s).ok()?)),
                    JobKey::Cron(_) => None,
                })
                .collect(),
        };
        let last_runs: BTreeMap<String, chrono::DateTime<Utc>> = match &rows {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| Some((row.monitor_name.clone(), row.last_run?)))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        if let Ok(rows) = rows {
            self.registry.remember_settings(rows);
        }
        let mut wanted: BTreeMap<String, JobKey> = BTreeMap::new();
        for name in self.registry.names() {
            let Some(monitor) = self.registry.get(&name) else {
                continue;
            };
            let key = match monitor.cadence() {
                Cadence::Interval(default) => {
                    let every = intervals
                        .get(&name)
                        .map_or(default.as_secs(), |s| u64::try_from(*s).unwrap_or(1));
                    JobKey::Every(every.max(1))
                }
                Cadence::Boundaries(frequency) if self.with_buckets => match cron_of(&frequency) {
                    Some(cron) => JobKey::Cron(cron),
                    None => continue,
                },
                Cadence::Boundaries(_) | Cadence::Events => continue,
            };
            wanted.insert(name, key);
        }
        let stale: Vec<String> = self
            .jobs
            .iter()
            .filter(|(name, (_, key))| wanted.get(*name) != Some(key))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((id, _)) = self.jobs.remove(&name)
                && let Err(error) = self.scheduler.remove(&id).await
            {
                tracing::warn!(monitor = %name, %error, "job not removed");
            }
        }
        for (name, key) in wanted {
            if self.jobs.contains_key(&name) {
                continue;
            }
            match self.add(&name, &key).await {
                Ok(id) => {
                    tracing::debug!(monitor = %name, ?key, "job registered");
                    // A job first fires an interval after it is registered: a monitor
                    // already due (never run, or not for an interval — a restart, a
                    // shortened interval) runs now.
                    if let JobKey::Every(seconds) = key {
                        let due = last_runs.get(&name).is_none_or(|last| {
                            Utc::now() - *last >= chrono::Duration::seconds(seconds as i64)
                        });
                        if due {
                            let registry = self.registry.clone();
                            let name = name.clone();
                            tokio::spawn(async move {
                                fire(&registry, &name, Trigger::Scheduled(None)).await
                            });
                        }
                    }
                    self.jobs.insert(name, (id, key));
                }
                Err(error) => {
                    tracing::warn!(monitor = %name, %error, "job not registered")
                }
            }
        }
    }

    async fn add(
        &self,
        name: &str,
        key: &JobKey,
    ) -> Result<Uuid, tokio_cron_scheduler::JobSchedulerError> {
        let registry = self.registry.clone();
        let name = name.to_owned();
        let job = match key {
            JobKey::Every(seconds) => {
                Job::new_repeated_async(Duration::from_secs(*seconds), move |_, _| {
                    let (registry, name) = (registry.clone(), name.clone());
                    Box::pin(async move { fire(&registry, &name, Trigger::Scheduled(None)).await })
                })?
            }
            JobKey::Cron(cron) => {
                let frequency = match self.registry.get(&name).map(|m| m.cadence()) {
                    Some(Cadence::Boundaries(frequency)) => frequency,
                    _ => Frequency::CandleClose,
                };
                Job::new_async(cron.as_str(), move |_, _| {
                    let (registry, name, frequency) =
                        (registry.clone(), name.clone(), frequency.clone());
                    Box::pin(async move {
                        // The boundary this firing belongs to: the latest at or before now.
                        let boundary = frequency.latest_at_or_before(Utc::now());
                        fire(&registry, &name, Trigger::Scheduled(boundary)).await;
                    })
                })?
            }
        };
        self.scheduler.add(job).await
    }
}

async fn fire(registry: &Registry, name: &str, trigger: Trigger) {
    match registry.run(name, trigger).await {
        Ok(_) | Err(RunError::Running(_)) | Err(RunError::Unknown(_)) => {}
        Err(error) => {
            tracing::warn!(monitor = name, %error, "monitor run not recorded")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fixed_frequency_fires_on_its_own_boundaries() {
        use croner::parser::{CronParser, Seconds, Year};
        for text in ["10s", "30s", "1m", "5m", "15m", "30m", "1h", "4h", "1d"] {
            let frequency = Frequency::parse(text).unwrap();
            let cron = CronParser::builder()
                .seconds(Seconds::Required)
                .year(Year::Disallowed)
                .build()
                .parse(&cron_of(&frequency).unwrap())
                .unwrap();
            let mut at = chrono::DateTime::parse_from_rfc3339("2026-12-02T23:59:31.5Z")
                .unwrap()
                .with_timezone(&Utc);
            for _ in 0..50 {
                let ours = frequency.next_after(at).unwrap();
                // Whole seconds: the scheduler keeps its ticks as whole seconds.
                let theirs = cron.find_next_occurrence(&at, false).unwrap();
                assert_eq!(theirs.timestamp(), ours.timestamp(), "{text} after {at}");
                at = ours;
            }
        }
        assert_eq!(cron_of(&Frequency::CandleClose), None);
        // The boundary a late firing runs for: the latest at or before it, whole.
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let every_two_minutes = Frequency::parse("15 */2 * * * *").unwrap();
        assert_eq!(
            every_two_minutes.latest_at_or_before(at("2026-12-02T10:02:15.700Z")),
            Some(at("2026-12-02T10:02:15Z"))
        );
        assert_eq!(
            every_two_minutes.latest_at_or_before(at("2026-12-02T10:03:59Z")),
            Some(at("2026-12-02T10:02:15Z"))
        );
        assert_eq!(
            Frequency::parse("5m")
                .unwrap()
                .latest_at_or_before(at("2026-12-02T10:05:00.400Z")),
            Some(at("2026-12-02T10:05:00Z"))
        );
        let cron = Frequency::parse("15 */2 * * * *").unwrap();
        assert_eq!(cron_of(&cron).as_deref(), Some("15 */2 * * * *"));
    }
}
