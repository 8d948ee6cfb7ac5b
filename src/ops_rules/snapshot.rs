//! Snapshots of the engines' latest metrics: every `METRICS_SNAPSHOT_INTERVAL` seconds
//! a file `METRICS_SNAPSHOT_DIR/metrics_<UTC timestamp>.json` with each engine's latest
//! tick, written whole (a temporary file renamed into place); files older than
//! `METRICS_RETENTION_DAYS` are removed with the rows.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

use crate::storage::engine_state;

const PREFIX: &str = "metrics_";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// Writes one snapshot into `dir` (created when missing); answers its path.
pub async fn write(db: &PgPool, dir: &Path, now: DateTime<Utc>) -> std::io::Result<PathBuf> {
    let engines = engine_state::latest(db)
        .await
        .map_err(std::io::Error::other)?;
    let mut by_engine = Map::new();
    for engine in engines {
        by_engine.insert(
            engine.engine_id,
            json!({"recorded_at": engine.last_recorded_at, "received_at": engine.last_received_at,
                   "metrics": engine.last_metrics}),
        );
    }
    let document = json!({"generated_at": now, "engines": Value::Object(by_engine)});
    let path = dir.join(format!("{PREFIX}{}.json", now.format(STAMP)));
    let temporary = dir.join(format!(".{PREFIX}{}.tmp", now.format(STAMP)));
    let bytes = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
    tokio::fs::create_dir_all(dir).await?;
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, &path).await?;
    Ok(path)
}

/// Removes the snapshots in `dir` taken more than `days` days before `now`; answers
/// how many. Other files are left alone.
pub fn remove_older_than(dir: &Path, days: u32, now: DateTime<Utc>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let horizon = now - chrono::Duration::days(i64::from(days));
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.strip_suffix(".json"))
                .and_then(|stamp| NaiveDateTime::parse_from_str(stamp, STAMP).ok());
            stamp.is_some_and(|taken| taken.and_utc() < horizon)
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_snapshots_are_removed() {
        let dir = std::env::temp_dir().join(format!("snapshots-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let now: DateTime<Utc> = "2026-12-02T12:00:00Z".parse().unwrap();
        for name in [
            "metrics_20261202T115900Z.json",
            "metrics_20261102T120001Z.json",
            "metrics_20261102T115959Z.json",
            "metrics_20250101T000000Z.json",
            "notes.json",
        ] {
            std::fs::write(dir.join(name), "{}").unwrap();
        }
        assert_eq!(remove_older_than(&dir, 30, now), 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "metrics_20261102T120001Z.json",
                "metrics_20261202T115900Z.json",
                "notes.json"
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
