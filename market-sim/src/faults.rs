//! Fault injection, switchable at run time: added latency, error statuses (429 with
//! `Retry-After`, 418, 5xx) and malformed bodies, per provider and optionally per
//! endpoint, for a number of requests or until cleared.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The upstream a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Binance,
    Coingecko,
    Ethereum,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer normally, `ms` later.
    Latency { ms: u64 },
    /// Answer with this status (and `Retry-After` seconds, and a body, when given).
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
        #[serde(default)]
        body: Option<String>,
    },
    /// Answer 200 with a body that is not what the documentation promises.
    Malformed {
        #[serde(default)]
        body: Option<String>,
    },
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub provider: Provider,
    /// Only requests to this path (e.g. `/api/v3/klines`); all paths when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests it affects; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

/// The active faults, applied first-added first.
#[derive(Debug, Default)]
pub struct FaultBook {
    faults: Mutex<Vec<Fault>>,
}

impl FaultBook {
    pub fn push(&self, fault: Fault) {
        self.faults.lock().expect("faults lock").push(fault);
    }

    pub fn clear(&self) {
        self.faults.lock().expect("faults lock").clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.faults.lock().expect("faults lock").clone()
    }

    /// The faults that apply to one request, consuming one use of each. Latency
    /// faults combine with one answer-changing fault.
    pub fn take(&self, provider: Provider, endpoint: &str) -> Vec<FaultKind> {
        let mut faults = self.faults.lock().expect("faults lock");
        let mut hits = Vec::new();
        let mut answered = false;
        for fault in faults.iter_mut() {
            let applies = fault.provider == provider
                && fault.endpoint.as_deref().is_none_or(|e| e == endpoint)
                && fault.times != Some(0);
            let changes_answer = !matches!(fault.kind, FaultKind::Latency { .. });
            if !applies || (changes_answer && answered) {
                continue;
            }
            answered |= changes_answer;
            if let Some(times) = &mut fault.times {
                *times -= 1;
            }
            hits.push(fault.kind.clone());
        }
        faults.retain(|f| f.times != Some(0));
        hits
    }
}
