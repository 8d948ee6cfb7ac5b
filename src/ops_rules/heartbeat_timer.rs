//! The heartbeat timer: every few seconds, on the one replica holding the `ops_rules`
//! lease, engines not heard from (server clock of receipt) for their threshold — and
//! engines of `OPS_EXPECTED_ENGINES` never heard from at all — raise
//! `heartbeat_lapsed`. The engine's next tick resolves it.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::apply::{Applier, Change, engine_labels, held, set_held};
use super::rules::{HEARTBEAT_LAPSED, RULES, lapsed};
use super::thresholds::{Setting, setting};
use crate::storage::{alert_thresholds, engine_state, leases};

/// How often lapses are looked for.
const EVERY: Duration = Duration::from_secs(5);
/// The lease's name and how long it is held without renewal.
const LEASE: &str = "ops_rules";
const LEASE_TTL: Duration = Duration::from_secs(15);

/// Runs the timer until shutdown, as `replica`.
pub async fn run(
    applier: Applier,
    expected: Vec<String>,
    replica: String,
    shutdown: CancellationToken,
) {
    loop {
        match leases::acquire(applier.db(), LEASE, &replica, LEASE_TTL).await {
            Ok(Some(_)) => {
                if let Err(error) = judge(&applier, &expected).await {
                    tracing::warn!(component = "monitoring", %error, "heartbeat check failed");
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(component = "monitoring", %error, "ops_rules lease unavailable");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

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
