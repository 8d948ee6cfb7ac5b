//! The `ops_alert_notifications` table, all of its SQL: each message to a severity's
//! route, claimed by one replica for a while and then marked sent. Claims are made
//! under a transaction-scoped advisory lock per route, so that two replicas never
//! assemble the same message; a claim whose replica died unsent is taken over.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// One claimed message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub severity: String,
    /// `firing` or `resolved`.
    pub kind: String,
    pub alert_ids: Vec<String>,
    pub attempts: i32,
}

/// Takes the route's lock for the rest of the transaction; false when another replica
/// holds it (that replica is assembling this route's messages now).
pub async fn try_lock_route(tx: &mut PgConnection, severity: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('ops_alert_route:' || $1))")
        .bind(severity)
        .fetch_one(tx)
        .await
}

/// Records a claimed message, held for `hold`.
pub async fn insert(
    tx: &mut PgConnection,
    severity: &str,
    kind: &str,
    alert_ids: &[String],
    hold: std::time::Duration,
) -> Result<NotificationRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO ops_alert_notifications (severity, kind, alert_ids, claimed_until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         RETURNING id, severity, kind, alert_ids, attempts",
    )
    .bind(severity)
    .bind(kind)
    .bind(alert_ids)
    .bind(hold.as_secs_f64())
    .fetch_one(tx)
    .await
}

/// Marks a message sent, with its outcome (`delivered`, or how many channels failed).
pub async fn mark_sent(db: &PgPool, id: i64, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ops_alert_notifications SET sent_at = now(), outcome = $2 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes over messages whose claim lapsed unsent (their replica died), each by one
/// replica, for another `hold`; a message tried `max_attempts` times is given up.
pub async fn take_over_lapsed(
    db: &PgPool,
    hold: std::time::Duration,
    max_attempts: i32,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query(
        "UPDATE ops_alert_notifications SET sent_at = now(), outcome = 'abandoned'
                  WHERE sent_at IS NULL AND claimed_until < now() AND attempts >= $1",
    )
    .bind(max_attempts)
    .execute(db)
    .await?;
    sqlx::query_as(
        "UPDATE ops_alert_notifications
            SET claimed_until = now() + make_interval(secs => $1), attempts = attempts + 1
          WHERE sent_at IS NULL AND claimed_until < now()
         RETURNING id, severity, kind, alert_ids, attempts",
    )
    .bind(hold.as_secs_f64())
    .fetch_all(db)
    .await
}

/// Deletes messages created before `before`; returns how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM ops_alert_notifications WHERE created_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(removed.rows_affected())
}
