//! Every request the simulator served, by provider and endpoint, with its real time,
//! so tests can count upstream calls and check when they happened.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::faults::Provider;

/// One served request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub provider: Provider,
    pub endpoint: String,
    /// Real Unix milliseconds.
    pub at_ms: i64,
    /// The query string, for tests that check parameters.
    pub query: String,
}

/// The request log.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    pub fn record(&self, provider: Provider, endpoint: &str, query: &str) {
        self.records
            .lock()
            .expect("request log lock")
            .push(RequestRecord {
                provider,
                endpoint: endpoint.to_owned(),
                at_ms: crate::clock::real_now_ms(),
                query: query.to_owned(),
            });
    }

    /// Requests to `endpoint` of `provider` (all endpoints when `None`).
    pub fn count(&self, provider: Provider, endpoint: Option<&str>) -> usize {
        self.records
            .lock()
            .expect("request log lock")
            .iter()
            .filter(|r| r.provider == provider && endpoint.is_none_or(|e| r.endpoint == e))
            .count()
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.records.lock().expect("request log lock").clone()
    }

    /// Counts by provider, then endpoint.
    pub fn counts(&self) -> BTreeMap<Provider, BTreeMap<String, usize>> {
        let mut counts: BTreeMap<Provider, BTreeMap<String, usize>> = BTreeMap::new();
        for record in self.records.lock().expect("request log lock").iter() {
            *counts
                .entry(record.provider)
                .or_default()
                .entry(record.endpoint.clone())
                .or_default() += 1;
        }
        counts
    }

    pub fn clear(&self) {
        self.records.lock().expect("request log lock").clear();
    }
}
