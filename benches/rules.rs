//! The operational rules' speed: every rule of `RULES` on one full tick (the seed's),
//! with the levels resolved against a thresholds table of ten rows, as the tick path
//! does; and parsing the tick's body.
//!
//!     cargo bench --bench rules

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use monitoring_service::ops_rules::rules::{Defaults, Input, RULES};
use monitoring_service::ops_rules::thresholds::{Setting, setting};
use monitoring_service::ops_rules::tick;
use monitoring_service::storage::alert_thresholds::ThresholdRow;

const BODY: &str = r#"{"engine_id": "live-1", "timestamp": "2026-12-02T12:34:56Z",
 "heartbeat": {"last_tick": "2026-12-02T12:34:56Z", "uptime_seconds": 3600},
 "positions": {"count": 3, "total_value": 150000.0, "symbols": ["RELIANCE", "TCS", "INFY"]},
 "pnl": {"daily": 2500.5, "unrealized": 1200.0, "realized": 1300.5},
 "risk": {"circuit_breaker_active": false, "daily_loss_pct": -0.25, "max_position_value": 50000.0},
 "sentiment": {"last_score": 0.65, "provider_errors_1h": 0, "cache_hit_rate": 0.85},
 "connectivity": {"breeze_authenticated": true, "last_api_call": "2026-12-02T12:34:50Z"},
 "artifacts": {"teacher_model_age_hours": 12, "student_model_age_hours": 6}}"#;

fn benches(c: &mut Criterion) {
    let tick = tick::parse(BODY.as_bytes()).unwrap();
    let defaults = Defaults::default();
    let thresholds: Vec<ThresholdRow> = (0..10)
        .map(|i| ThresholdRow {
            rule: RULES[i % RULES.len()].name.to_owned(),
            engine_id: (i % 2 == 0).then(|| format!("engine-{i}")),
            low: Some(1.0),
            medium: Some(2.0),
            high: Some(3.0),
            enabled: true,
        })
        .collect();
    let at = tick.timestamp.unwrap();
    let mut group = c.benchmark_group("rules");
    group.bench_function("every_rule_on_one_tick", |b| {
        b.iter(|| {
            let mut holding = 0usize;
            for rule in RULES {
                if let Setting::On(levels) = setting(rule, "live-1", &thresholds, &defaults) {
                    let verdict = (rule.evaluate)(&Input {
                        tick: black_box(&tick),
                        at,
                        levels: &levels,
                        max_total_exposure: defaults.max_total_exposure,
                    });
                    holding += usize::from(matches!(
                        verdict,
                        monitoring_service::ops_rules::rules::Verdict::Holds(_)
                    ));
                }
            }
            black_box(holding)
        })
    });
    group.bench_function("parse_one_tick", |b| {
        b.iter(|| black_box(tick::parse(black_box(BODY.as_bytes())).unwrap()))
    });
    group.finish();
}

criterion_group!(rules, benches);
criterion_main!(rules);
