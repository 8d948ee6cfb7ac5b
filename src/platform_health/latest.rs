//! The latest health snapshot this replica knows, which its routes answer from: the
//! newest of the one stored by whichever replica ran the cycle and the one it took
//! itself (while Postgres is unreachable every replica checks for itself).

use std::sync::{Arc, RwLock};

use super::snapshot::Snapshot;

/// Shared by the cycle (which offers snapshots) and the routes (which read them).
#[derive(Debug, Clone, Default)]
pub struct LatestSnapshot(Arc<RwLock<Option<Arc<Snapshot>>>>);

impl LatestSnapshot {
    /// The snapshot held, if any cycle has completed.
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.0.read().map_or(None, |held| held.clone())
    }

    /// Keeps `snapshot` unless the one held is newer; answers whether it was kept.
    pub fn offer(&self, snapshot: Snapshot) -> bool {
        let Ok(mut held) = self.0.write() else {
            return false;
        };
        if held
            .as_ref()
            .is_some_and(|h| h.timestamp > snapshot.timestamp)
        {
            return false;
        }
        *held = Some(Arc::new(snapshot));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Snapshot {
        Snapshot {
            status: "OK".to_owned(),
            timestamp: chrono::DateTime::from_timestamp(seconds, 0).unwrap(),
            targets: Default::default(),
            critical_failures: Vec::new(),
            ess_tripped: false,
            alerts: Default::default(),
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let latest = LatestSnapshot::default();
        assert!(latest.get().is_none());
        assert!(latest.offer(at(10)));
        assert!(!latest.offer(at(5)));
        assert_eq!(latest.get().unwrap().timestamp.timestamp(), 10);
        assert!(
            latest.offer(at(10)),
            "the same moment: the one offered last"
        );
        assert!(latest.offer(at(11)));
        assert_eq!(latest.get().unwrap().timestamp.timestamp(), 11);
    }
}
