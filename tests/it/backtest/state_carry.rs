//! The walk carries state in memory by `StoredState::apply`; these are the answers the
//! table's own upserts give (`save`, `record_claimed`), step by step.

use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, rsi_below};
use monitoring_service::storage::strategy_state::{self, StateUpdate, StoredState};

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
}

#[sqlx::test]
async fn applying_an_update_in_memory_equals_the_tables_upsert(pool: PgPool) {
    let (id, conditions) = insert_strategy(&pool, Uuid::new_v4(), &[rsi_below(30.0)], None).await;
    let update = |result: Option<bool>,
                  previous: Option<f64>,
                  errors: i32,
                  candle: Option<i64>,
                  period: Option<i64>| {
        let mut map = Map::new();
        if let Some(value) = previous {
            map.insert(conditions[0].to_string(), json!(value));
        }
        StateUpdate {
            strategy_id: id,
            result,
            previous: map,
            consecutive_errors: errors,
            candle_open_time: candle.map(at),
            period: period.map(at),
        }
    };
    let steps = [
        (update(Some(false), Some(31.5), 0, None, Some(1)), None),
        (
            update(Some(true), Some(29.0), 0, Some(2), None),
            Some(at(3)),
        ),
        (update(None, None, 1, None, Some(4)), None),
        (update(Some(true), None, 0, None, None), Some(at(5))),
    ];
    let mut memory = StoredState::default();
    for (step, (update, triggered_at)) in steps.iter().enumerate() {
        match triggered_at {
            None => strategy_state::save(&pool, at(10), std::slice::from_ref(update))
                .await
                .unwrap(),
            Some(when) => {
                let mut tx = pool.begin().await.unwrap();
                strategy_state::record_claimed(&mut tx, at(10), &[(update, *when)])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
        memory.apply(update, *triggered_at);
        let stored = strategy_state::load(&pool, &[id])
            .await
            .unwrap()
            .remove(&id)
            .unwrap();
        assert_eq!(memory, stored, "step {step}");
    }
    assert_eq!(memory.last_triggered_at, Some(at(5)));
    assert_eq!(
        memory.previous[&conditions[0]], 29.0,
        "kept when not given again"
    );
}
