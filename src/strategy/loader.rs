//! Loads strategies from Postgres (through the Redis cache when configured), compiles
//! them, records validation outcomes, and publishes the result to the index.
//!
//! A full reload costs one query for ids and versions, then two queries for whatever
//! changed since the last load (nothing, usually), whatever their number. A reload of
//! given ids costs those two queries for just those ids. Reloads are serialised so two
//! never interleave their read-modify-publish.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;
use utoipa::ToSchema;
use uuid::Uuid;

use super::cache;
use super::index::{StrategyError, StrategyIndex};
use super::store::{self, ShardFilter, StatusChange};
use super::{CompiledStrategy, ResolvedStrategy};
use crate::conditions::SymbolInterner;
use crate::metrics::StrategyMetrics;

/// What a reload did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ReloadReport {
    /// Strategies in the index afterwards.
    pub loaded: usize,
    /// Strategies compiled by this reload (new or changed versions).
    pub reloaded: usize,
    /// Strategies that left the index (deleted, paused, expired, moved shard).
    pub removed: usize,
    /// Changed strategies read from the Redis cache instead of Postgres.
    pub cache_hits: usize,
    /// Strategies that failed validation, with their message.
    pub errors: Vec<ReloadError>,
    pub duration_ms: f64,
}

/// One strategy that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReloadError {
    pub strategy_id: Uuid,
    pub error: String,
}

/// The next index as a reload builds it: the strategies and errors kept from the
/// current one, and for a partial reload the ids that may differ from it.
struct NextIndex {
    strategies: HashMap<Uuid, Arc<CompiledStrategy>>,
    errors: HashMap<Uuid, StrategyError>,
    changed: Option<HashSet<Uuid>>,
}

/// Builds and refreshes the [`StrategyIndex`].
pub struct StrategyLoader {
    db: PgPool,
    redis: Option<ConnectionManager>,
    shard: ShardFilter,
    index: Arc<StrategyIndex>,
    /// Serialises reloads; also keeps the symbol interner shared across them.
    reloading: Mutex<SymbolInterner>,
    /// Whether the cache's entries from before channels were left out were removed.
    legacy_purged: std::sync::atomic::AtomicBool,
    metrics: Option<StrategyMetrics>,
}

impl std::fmt::Debug for StrategyLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyLoader")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl StrategyLoader {
    pub fn new(
        db: PgPool,
        redis: Option<ConnectionManager>,
        shard: impl Into<ShardFilter>,
        index: Arc<StrategyIndex>,
    ) -> Self {
        Self {
            db,
            redis,
            shard: shard.into(),
            index,
            reloading: Mutex::new(SymbolInterner::default()),
            legacy_purged: std::sync::atomic::AtomicBool::new(false),
            metrics: None,
        }
    }

    /// Counts and times reloads, and exports the index's size, in `metrics`.
    pub fn with_metrics(mut self, metrics: StrategyMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn observe(&self, kind: &str, started: Instant, result: &Result<ReloadReport, sqlx::Error>) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics.reloads.with_label_values(&[kind, outcome]).inc();
        metrics
            .reload_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        let index = self.index.snapshot();
        let loaded = i64::try_from(index.strategies.len()).unwrap_or(i64::MAX);
        let errors = i64::try_from(index.errors.len()).unwrap_or(i64::MAX);
        metrics
            .strategies
            .with_label_values(&["loaded"])
            .set(loaded);
        metrics.strategies.with_label_values(&["error"]).set(errors);
    }

    pub fn index(&self) -> &Arc<StrategyIndex> {
        &self.index
    }

    /// Reloads every strategy of this shard, compiling only new or changed versions.
    #[tracing::instrument(skip_all)]
    pub async fn reload_all(&self) -> Result<ReloadReport, sqlx::Error> {
        let started = Instant::now();
        let result = self.reload_everything(started).await;
        self.observe("full", started, &result);
        result
    }

    async fn reload_everything(&self, started: Instant) -> Result<ReloadReport, sqlx::Error> {
        let mut interner = self.reloading.lock().await;
        store::expire(&self.db, &self.shard).await?;
        let current = self.index.snapshot();
        if let Some(redis) = &self.redis
            && !self
                .legacy_purged
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            cache::purge_legacy(&mut redis.clone()).await;
        }
        if current.strategies.is_empty() && current.errors.is_empty() && self.redis.is_none() {
            // Cold start without a cache: everything is new, so read it all directly
            // rather than ids first.
            return self.cold_load(&mut interner, started).await;
        }
        let versions = store::versions(&self.db, &self.shard).await?;

        let mut strategies = HashMap::with_capacity(versions.len());
        let mut errors = HashMap::new();
        let mut changed = Vec::new();
        for (&id, &version) in &versions {
            if let Some(strategy) = current.strategies.get(&id).filter(|s| s.version == version) {
                strategies.insert(id, strategy.clone());
            } else if let Some(error) = current.errors.get(&id).filter(|e| e.version == version) {
                errors.insert(id, error.clone());
            } else {
                changed.push((id, version));
            }
        }
        let removed = current
            .strategies
            .keys()
            .chain(current.errors.keys())
            .filter(|id| !versions.contains_key(id))
            .count();

        let (resolved, cache_hits) = self.resolve(&changed).await?;
        let base = ReloadReport {
            removed,
            cache_hits,
            ..ReloadReport::default()
        };
        let next = NextIndex {
            strategies,
            errors,
            changed: None,
        };
        self.publish(&resolved, &mut interner, next, base, started)
            .await
    }

    async fn cold_load(
        &self,
        interner: &mut SymbolInterner,
        started: Instant,
    ) -> Result<ReloadReport, sqlx::Error> {
        let resolved = store::fetch_loadable(&self.db, &self.shard).await?;
        let strategies = HashMap::with_capacity(resolved.len());
        let next = NextIndex {
            strategies,
            errors: HashMap::new(),
            changed: None,
        };
        self.publish(&resolved, interner, next, ReloadReport::default(), started)
            .await
    }

    /// Marks the shard's strategies past `expires_at` as `expired` and takes them out
    /// of the index; returns how many. Run every 30 s, so a strategy's status says
    /// `expired` within a minute of its expiry (evaluation never fires past it anyway).
    pub async fn expire_due(&self) -> Result<usize, sqlx::Error> {
        let expired = store::expire(&self.db, &self.shard).await?;
        if !expired.is_empty() {
            tracing::info!(expired = expired.len(), "strategies expired");
            self.reload_ids(&expired).await?;
        }
        Ok(expired.len())
    }

    /// Reloads only `ids`: a changed one is recompiled, a deleted, paused, expired or
    /// foreign-shard one leaves the index. Costs two queries whatever the index size.
    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    pub async fn reload_ids(&self, ids: &[Uuid]) -> Result<ReloadReport, sqlx::Error> {
        let started = Instant::now();
        let result = self.reload_only(ids, started).await;
        self.observe("ids", started, &result);
        result
    }

    async fn reload_only(
        &self,
        ids: &[Uuid],
        started: Instant,
    ) -> Result<ReloadReport, sqlx::Error> {
        let mut interner = self.reloading.lock().await;
        let fetched = store::fetch(&self.db, ids).await?;
        let now = chrono::Utc::now();
        let loadable: Vec<ResolvedStrategy> = fetched
            .into_iter()
            .filter(|r| {
                matches!(r.row.status.as_str(), "active" | "error")
                    && r.row.expires_at.is_none_or(|at| at > now)
                    && self.shard.owns(r.row.user_id)
            })
            .collect();
        let staying: HashSet<Uuid> = loadable.iter().map(|r| r.row.id).collect();
        let current = self.index.snapshot();
        let mut strategies = current.strategies.clone();
        let mut errors = current.errors.clone();
        let mut removed = 0;
        for id in ids {
            let was_loaded = strategies.remove(id).is_some() | errors.remove(id).is_some();
            removed += usize::from(was_loaded && !staying.contains(id));
        }
        let base = ReloadReport {
            removed,
            ..ReloadReport::default()
        };
        let next = NextIndex {
            strategies,
            errors,
            changed: Some(ids.iter().copied().collect()),
        };
        let report = self
            .publish(&loadable, &mut interner, next, base, started)
            .await;
        // Dropping the replaced version releases every strategy it held (a cache
        // miss each): done off this request's path.
        tokio::task::spawn_blocking(move || drop(current));
        report
    }

    /// Compiles `resolved` into `strategies` / `errors`, records status changes,
    /// publishes the new index and completes `report` — the common end of every reload.
    async fn publish(
        &self,
        resolved: &[ResolvedStrategy],
        interner: &mut SymbolInterner,
        next: NextIndex,
        report: ReloadReport,
        started: Instant,
    ) -> Result<ReloadReport, sqlx::Error> {
        let NextIndex {
            mut strategies,
            mut errors,
            changed,
        } = next;
        let compiled = self
            .compile_and_record(resolved, interner, &mut strategies, &mut errors)
            .await?;
        let published = match &changed {
            Some(changed) => self.index.publish_changes(strategies, errors, changed),
            None => self.index.publish(strategies, errors),
        };
        let report = ReloadReport {
            loaded: published.strategies.len(),
            reloaded: compiled.reloaded,
            errors: compiled.errors,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..report
        };
        tracing::info!(
            generation = published.generation,
            loaded = report.loaded,
            reloaded = report.reloaded,
            removed = report.removed,
            errors = report.errors.len(),
            cache_hits = report.cache_hits,
            duration_ms = report.duration_ms,
            "strategies reloaded"
        );
        Ok(report)
    }

    /// The resolved forms of `changed`: from the Redis cache where present, the rest
    /// from Postgres (then cached).
    async fn resolve(
        &self,
        changed: &[(Uuid, chrono::DateTime<chrono::Utc>)],
    ) -> Result<(Vec<ResolvedStrategy>, usize), sqlx::Error> {
        let Some(mut redis) = self.redis.clone() else {
            let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
            return Ok((store::fetch(&self.db, &ids).await?, 0));
        };
        let cached = cache::get_many(&mut redis, changed).await;
        let mut hits = Vec::with_capacity(changed.len());
        let mut missing = Vec::new();
        for ((id, _), hit) in changed.iter().zip(cached) {
            match hit {
                Some(strategy) => hits.push(strategy),
                None => missing.push(*id),
            }
        }
        // The cache holds no channels (their secrets stay in Postgres): read them for
        // the versions found; a version replaced meanwhile is read whole.
        let versions: Vec<_> = hits.iter().map(|s| (s.row.id, s.row.updated_at)).collect();
        let mut channels = store::channels_at(&self.db, &versions).await?;
        let mut resolved = Vec::with_capacity(changed.len());
        for mut strategy in hits {
            match channels.remove(&strategy.row.id) {
                Some(text) => {
                    strategy.row.channels = text;
                    resolved.push(strategy);
                }
                None => missing.push(strategy.row.id),
            }
        }
        let hits = resolved.len();
        let fetched = store::fetch(&self.db, &missing).await?;
        cache::put_many(&mut redis, &fetched).await;
        resolved.extend(fetched);
        Ok((resolved, hits))
    }

    /// Compiles `resolved` into `strategies` / `errors` and records status changes.
    async fn compile_and_record(
        &self,
        resolved: &[ResolvedStrategy],
        interner: &mut SymbolInterner,
        strategies: &mut HashMap<Uuid, Arc<CompiledStrategy>>,
        errors: &mut HashMap<Uuid, StrategyError>,
    ) -> Result<ReloadReport, sqlx::Error> {
        let mut report = ReloadReport::default();
        let mut status_changes = Vec::new();
        for strategy in resolved {
            let row = &strategy.row;
            match CompiledStrategy::compile(strategy, interner) {
                Ok(compiled) => {
                    if row.status == "error" {
                        status_changes.push(StatusChange {
                            id: row.id,
                            version: row.updated_at,
                            error: None,
                        });
                    }
                    strategies.insert(row.id, Arc::new(compiled));
                    report.reloaded += 1;
                }
                Err(err) => {
                    let message = err.to_string();
                    if row.status != "error" || row.error.as_deref() != Some(message.as_str()) {
                        status_changes.push(StatusChange {
                            id: row.id,
                            version: row.updated_at,
                            error: Some(message.clone()),
                        });
                    }
                    tracing::warn!(strategy_id = %row.id, error = %message, "strategy is invalid");
                    report.errors.push(ReloadError {
                        strategy_id: row.id,
                        error: message.clone(),
                    });
                    errors.insert(
                        row.id,
                        StrategyError {
                            version: row.updated_at,
                            message,
                        },
                    );
                }
            }
        }
        store::record_statuses(&self.db, &status_changes).await?;
        Ok(report)
    }
}
