//! Fuzzes parsing and validating strategies: any logic tree text, frequency, trigger
//! mode and any condition kinds and params must compile or be rejected with a
//! validation error — never panic, overflow the stack or run away with memory.
//!
//! The input is split on NUL bytes: tree, frequency, trigger mode, then (kind, params)
//! pairs. Conditions get fixed ids `00000000-0000-0000-0000-00000000000N`, so a tree can
//! refer to them.
//!
//!     cargo fuzz run compile_strategy -s none -- -max_total_time=600
#![no_main]

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use monitoring_service::conditions::SymbolInterner;
use monitoring_service::engine::{BatchContext, Tri};
use monitoring_service::strategy::{CompiledStrategy, ConditionRow, ResolvedStrategy, StrategyRow};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let tree = parts.next().unwrap_or_default().to_owned();
    let frequency = parts.next().unwrap_or("1m").to_owned();
    let trigger_mode = parts.next().unwrap_or("every_time").to_owned();
    let id = Uuid::from_u128(0xF0F0);
    let mut conditions = Vec::new();
    while let (Some(kind), Some(params)) = (parts.next(), parts.next()) {
        conditions.push(ConditionRow {
            id: Uuid::from_u128(conditions.len() as u128 + 1),
            strategy_id: id,
            kind: kind.to_owned(),
            params: Some(params.to_owned()),
        });
    }
    let resolved = ResolvedStrategy {
        row: StrategyRow {
            id,
            user_id: id,
            name: "fuzz".into(),
            status: "active".into(),
            logic_tree: Some(tree),
            frequency,
            trigger_mode,
            cooldown_seconds: 0,
            channels: Some("[]".into()),
            message_template: None,
            expires_at: None,
            error: None,
            updated_at: Utc::now(),
        },
        conditions,
    };
    if let Ok(strategy) = CompiledStrategy::compile(&resolved, &mut SymbolInterner::default()) {
        // A compiled strategy evaluates on an empty snapshot to unknown or a known value,
        // without panicking.
        let ctx = BatchContext::default();
        let result = strategy.evaluate(&ctx, &|_| None);
        assert!(matches!(result, Tri::True | Tri::False | Tri::Unknown));
        let mut needs = monitoring_service::market::DataNeeds::default();
        strategy.needs(&mut needs);
    }
});
