//! Evaluation speed: 100,000 strategies of three conditions against a prepared batch
//! context (the tree alone, and the whole path a batch takes: conditions, tree, trigger
//! decision, state update), one strategy of 50 conditions with its report (simulate's
//! path), and preparing the context (every distinct indicator computed once).
//!
//!     cargo bench --bench evaluation

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use monitoring_service::batches::{Moment, evaluate};
use monitoring_service::conditions::SymbolInterner;
use monitoring_service::logic_tree::{BatchContext, Tri};
use monitoring_service::strategy::{CompiledStrategy, ConditionRow};
use serde_json::json;
use uuid::Uuid;

#[path = "fixtures.rs"]
mod fixtures;

fn fifty_conditions() -> CompiledStrategy {
    let mut resolved = fixtures::resolved(0);
    let ids: Vec<Uuid> = (0..50u128)
        .map(|k| Uuid::from_u128(0xABCD_0000 + k))
        .collect();
    resolved.conditions = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let (kind, params) = fixtures::condition_params(k, k % 3);
            ConditionRow {
                id: *id,
                strategy_id: resolved.row.id,
                kind: kind.into(),
                params: Some(params.to_string()),
            }
        })
        .collect();
    let leaves: Vec<_> = ids.iter().map(|id| json!({"condition": id})).collect();
    resolved.row.logic_tree =
        Some(json!({"or": [{"and": leaves[..25]}, {"and": leaves[25..]}]}).to_string());
    CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()).unwrap()
}

fn benches(c: &mut Criterion) {
    let strategies = fixtures::compiled(100_000);
    let snapshot = Arc::new(fixtures::snapshot());
    let keys: Vec<_> = strategies
        .iter()
        .flat_map(|s| s.indicator_keys().cloned())
        .collect();
    let ctx = BatchContext::prepare(snapshot.clone(), keys.iter());
    let no_memory = |_: usize| None;

    let mut group = c.benchmark_group("evaluation");
    group.sample_size(20);
    group.bench_function("100k_strategies_3_conditions", |b| {
        b.iter(|| {
            let mut fired = 0usize;
            for strategy in &strategies {
                fired += usize::from(strategy.evaluate(black_box(&ctx), &no_memory) == Tri::True);
            }
            black_box(fired)
        })
    });
    // A fixed period: 2026-11-23T10:00:00Z.
    let due = chrono::DateTime::from_timestamp_millis(1_795_392_000_000).unwrap();
    group.bench_function("100k_strategies_batch_path", |b| {
        b.iter(|| {
            let mut firing = 0usize;
            for strategy in &strategies {
                let moment = Moment::period(strategy, due);
                let outcome = evaluate(strategy, black_box(&ctx), None, &moment);
                firing += usize::from(outcome.result == Tri::True);
            }
            black_box(firing)
        })
    });
    let big = fifty_conditions();
    let big_keys: Vec<_> = big.indicator_keys().cloned().collect();
    let big_ctx = BatchContext::prepare(snapshot.clone(), big_keys.iter());
    group.bench_function("one_strategy_50_conditions_all_evaluated", |b| {
        b.iter(|| {
            let moment = Moment::period(&big, due);
            let outcome = evaluate(&big, black_box(&big_ctx), None, &moment);
            black_box(outcome.report(&big))
        })
    });
    group.bench_function("prepare_context_for_100k_strategies", |b| {
        b.iter(|| black_box(BatchContext::prepare(snapshot.clone(), keys.iter()).indicator_count()))
    });
    group.finish();
}

criterion_group!(evaluation, benches);
criterion_main!(evaluation);
