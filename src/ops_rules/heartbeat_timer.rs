//! The heartbeat check, run every few seconds by the `ops_rules` monitor on one replica
//! per cycle: engines not heard from (server clock of receipt) for their threshold —
//! and engines of `OPS_EXPECTED_ENGINES` never heard from at all — raise
//! `heartbeat_lapsed`. The engine's next tick resolves it.

use chrono::Utc;

use super::apply::{Applier, Change, engine_labels, held, set_held};
use super::rules::{HEARTBEAT_LAPSED, RULES, lapsed};
use super::thresholds::{Setting, setting};
use crate::storage::{alert_thresholds, engine_state};

/// One pass: raises `heartbeat_lapsed` for every engine lapsed now; answers how many.
pub async fn judge(applier: &Applier, expected: &[String]) -> Result<usize, sqlx::Error> {
    let rule = RULES
        .iter()
        .find(|r| r.name == HEARTBEAT_LAPSED)
        .expect("the heartbeat rule is registered");
    let mut tx = applier.db().begin().await?;
    engine_state::ensure(&mut tx, expected).await?;
    let mut rows = engine_state::lock_for_heartbeat(&mut tx, HEARTBEAT_LAPSED).await?;
    let thresholds = alert_thresholds::all(&mut tx).await?;
    let now = Utc::now();
    let mut changes = Vec::new();
    let mut changed = Vec::new();
    for row in &mut rows {
        let Setting::On(levels) = setting(rule, &row.engine_id, &thresholds, applier.defaults())
        else {
            continue;
        };
        // An engine that never ticked lapses only when it is expected.
        if row.last_received_at.is_none() && !expected.contains(&row.engine_id) {
            continue;
        }
        let Some(finding) = lapsed(&row.engine_id, row.last_received_at, now, &levels) else {
            continue;
        };
        debug_assert!(held(row, HEARTBEAT_LAPSED).is_none());
        let outcome = applier
            .alerts()
            .raise_in(
                &mut tx,
                HEARTBEAT_LAPSED,
                &engine_labels(&row.engine_id),
                finding.severity,
                &finding.title,
                &finding.message,
                &finding.context,
            )
            .await?;
        set_held(row, HEARTBEAT_LAPSED, Some(finding.severity));
        changed.push(row.clone());
        changes.push(Change::Raised(outcome));
    }
    engine_state::save(&mut tx, &changed).await?;
    tx.commit().await?;
    let count = changes.len();
    applier.announce(changes).await;
    Ok(count)
}
