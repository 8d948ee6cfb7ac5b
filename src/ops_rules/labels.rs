//! Bounded engine labels for metrics: the engines configured (`OPS_EXPECTED_ENGINES`)
//! plus the first [`MAX_SEEN`] others seen keep their id; any further engine is `other`.

use std::collections::HashSet;
use std::sync::Mutex;

/// Engines beyond the configured ones that get a label of their own.
pub const MAX_SEEN: usize = 100;

/// The label policy.
#[derive(Debug, Default)]
pub struct EngineLabels {
    configured: HashSet<String>,
    seen: Mutex<HashSet<String>>,
}

impl EngineLabels {
    pub fn new(configured: &[String]) -> Self {
        Self {
            configured: configured.iter().cloned().collect(),
            seen: Mutex::default(),
        }
    }

    /// The label of `engine_id`.
    pub fn label<'a>(&self, engine_id: &'a str) -> &'a str {
        if self.configured.contains(engine_id) {
            return engine_id;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(engine_id) {
            return engine_id;
        }
        if seen.len() < MAX_SEEN {
            seen.insert(engine_id.to_owned());
            return engine_id;
        }
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_hundred_unconfigured_engines_then_other() {
        let labels = EngineLabels::new(&["live-1".to_owned()]);
        for i in 0..MAX_SEEN {
            let id = format!("e{i}");
            assert_eq!(labels.label(&id), id);
        }
        assert_eq!(labels.label("late"), "other");
        assert_eq!(labels.label("e7"), "e7", "a seen engine keeps its label");
        assert_eq!(
            labels.label("live-1"),
            "live-1",
            "configured engines always do"
        );
    }
}
