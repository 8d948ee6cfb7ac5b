//! The platform status rules of DESIGN §11, as pure functions: how one check's answer
//! makes its target `OK`, `DEGRADED` or `DOWN`, and how the targets together (with an
//! emergency stop, `ess.tripped`) make the system `OK`, `DEGRADED` or `CRITICAL`.

use serde::{Deserialize, Serialize};

use crate::ops_alerts::PlatformStatus;

/// What a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Postgres, Redis, the Binance API: always critical.
    Infrastructure,
    /// A platform service of `HEALTH_TARGETS`, critical or not.
    Service,
}

/// A target's health after one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Health {
    Ok,
    Degraded,
    Down,
}

/// The latency limits (`HEALTH_LATENCY_DEGRADED_MS`, `HEALTH_LATENCY_CRITICAL_MS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub degraded_ms: f64,
    pub critical_ms: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            degraded_ms: 1000.0,
            critical_ms: 5000.0,
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An HTTP answer with this status code.
    Http(u16),
    /// A PING or a query that answered.
    Answered,
    /// Timeout, refused, a failed PING or query.
    Failed,
}

/// One target's health from its answer and latency: a failure, or slower than the
/// critical latency, is DOWN; an HTTP 5xx, or slower than the degraded latency, is
/// DEGRADED; any other HTTP status outside 2xx/3xx is DOWN (the endpoint refused us).
pub fn classify(answer: &Answer, latency_ms: f64, limits: &Limits) -> Health {
    let by_answer = match answer {
        Answer::Failed => Health::Down,
        Answer::Http(code) if (500..600).contains(code) => Health::Degraded,
        Answer::Http(code) if !(200..400).contains(code) => Health::Down,
        Answer::Http(_) | Answer::Answered => Health::Ok,
    };
    let by_latency = if latency_ms > limits.critical_ms {
        Health::Down
    } else if latency_ms > limits.degraded_ms {
        Health::Degraded
    } else {
        Health::Ok
    };
    by_answer.max(by_latency)
}

/// One target as the system status sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub critical: bool,
    pub health: Health,
    pub latency_ms: f64,
}

/// The system status: CRITICAL if a critical service or any infrastructure is DOWN,
/// the slowest check exceeds the critical latency, or the emergency stop is tripped;
/// else DEGRADED if anything is DEGRADED, a non-critical service is DOWN, or the
/// slowest check exceeds the degraded latency; else OK.
pub fn system_status(targets: &[Judged<'_>], ess_tripped: bool, limits: &Limits) -> PlatformStatus {
    let slowest = targets.iter().map(|t| t.latency_ms).fold(0.0, f64::max);
    let critical_down = targets
        .iter()
        .any(|t| t.health == Health::Down && (t.kind == Kind::Infrastructure || t.critical));
    if critical_down || slowest > limits.critical_ms || ess_tripped {
        return PlatformStatus::Critical;
    }
    let anything_wrong = targets.iter().any(|t| t.health != Health::Ok);
    if anything_wrong || slowest > limits.degraded_ms {
        return PlatformStatus::Degraded;
    }
    PlatformStatus::Ok
}

/// The targets that make the system CRITICAL (critical or infrastructure, DOWN).
pub fn critical_failures<'a>(targets: &[Judged<'a>]) -> Vec<&'a str> {
    targets
        .iter()
        .filter(|t| t.health == Health::Down && (t.kind == Kind::Infrastructure || t.critical))
        .map(|t| t.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        degraded_ms: 1000.0,
        critical_ms: 5000.0,
    };

    #[test]
    fn each_answer_and_latency_classifies_as_the_seed_says() {
        let rows = [
            (Answer::Http(200), 20.0, Health::Ok),
            (Answer::Http(204), 999.0, Health::Ok),
            (Answer::Http(301), 10.0, Health::Ok),
            (Answer::Http(200), 1000.0, Health::Ok),
            (Answer::Http(200), 1000.5, Health::Degraded),
            (Answer::Http(200), 1500.0, Health::Degraded),
            (Answer::Http(200), 5000.0, Health::Degraded),
            (Answer::Http(200), 5000.5, Health::Down),
            (Answer::Http(200), 6000.0, Health::Down),
            (Answer::Http(503), 10.0, Health::Degraded),
            (Answer::Http(500), 1500.0, Health::Degraded),
            (Answer::Http(503), 6000.0, Health::Down),
            (Answer::Http(404), 10.0, Health::Down),
            (Answer::Http(401), 10.0, Health::Down),
            (Answer::Answered, 2.0, Health::Ok),
            (Answer::Answered, 1200.0, Health::Degraded),
            (Answer::Failed, 1.0, Health::Down),
            (Answer::Failed, 5001.0, Health::Down),
        ];
        for (answer, latency, expected) in rows {
            assert_eq!(
                classify(&answer, latency, &LIMITS),
                expected,
                "{answer:?} in {latency} ms"
            );
        }
    }

    fn target(
        name: &str,
        kind: Kind,
        critical: bool,
        health: Health,
        latency_ms: f64,
    ) -> Judged<'_> {
        Judged {
            name,
            kind,
            critical,
            health,
            latency_ms,
        }
    }

    #[test]
    fn the_system_status_of_each_combination() {
        use Health::{Degraded, Down, Ok};
        use Kind::{Infrastructure, Service};
        let healthy = || {
            vec![
                target("postgres", Infrastructure, true, Ok, 2.0),
                target("redis", Infrastructure, true, Ok, 1.0),
                target("binance_api", Infrastructure, true, Ok, 80.0),
                target("main_backend", Service, true, Ok, 30.0),
                target("reports", Service, false, Ok, 40.0),
            ]
        };
        // (what changes, ess tripped, expected status, expected critical failures)
        type Change = fn(&mut Vec<Judged<'static>>);
        let rows: Vec<(&str, Change, bool, PlatformStatus, Vec<&str>)> = vec![
            ("all healthy", |_| {}, false, PlatformStatus::Ok, vec![]),
            (
                "emergency stop",
                |_| {},
                true,
                PlatformStatus::Critical,
                vec![],
            ),
            (
                "infrastructure down",
                |t| t[1].health = Down,
                false,
                PlatformStatus::Critical,
                vec!["redis"],
            ),
            (
                "infrastructure degraded",
                |t| t[2].health = Degraded,
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "critical service down",
                |t| t[3].health = Down,
                false,
                PlatformStatus::Critical,
                vec!["main_backend"],
            ),
            (
                "critical service degraded",
                |t| t[3].health = Degraded,
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "non-critical service down",
                |t| t[4].health = Down,
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "non-critical service degraded",
                |t| t[4].health = Degraded,
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "slowest over degraded",
                |t| t[0].latency_ms = 1500.0,
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "non-critical service taking 6 s: DOWN, and the slowest check makes it CRITICAL",
                |t| {
                    t[4].health = Down;
                    t[4].latency_ms = 6000.0;
                },
                false,
                PlatformStatus::Critical,
                vec![],
            ),
            (
                "non-critical down and infrastructure degraded",
                |t| {
                    t[4].health = Down;
                    t[0].health = Degraded;
                },
                false,
                PlatformStatus::Degraded,
                vec![],
            ),
            (
                "everything down",
                |t| t.iter_mut().for_each(|t| t.health = Down),
                true,
                PlatformStatus::Critical,
                vec!["postgres", "redis", "binance_api", "main_backend"],
            ),
        ];
        for (what, change, ess, expected, failures) in rows {
            let mut targets = healthy();
            change(&mut targets);
            assert_eq!(system_status(&targets, ess, &LIMITS), expected, "{what}");
            assert_eq!(critical_failures(&targets), failures, "{what}");
        }
    }
}
