//! The `leases` table, all of its SQL (DESIGN §9): a named lease has one holder at a
//! time until it expires; its token grows with every new holder, so writes made under a
//! lease can check (fence) that their writer still holds it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A lease as held.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Grows with every new holder: what fenced writes check.
    pub token: i64,
    pub expires_at: DateTime<Utc>,
}

/// The SQL condition "the lease named `name_column` is live under the token in
/// `token_column`" (its row has that token and has not expired), for other tables'
/// statements that fence on a lease.
pub fn live_sql(name_column: &str, token_column: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM leases s WHERE s.name = {name_column}
                    AND s.token = {token_column} AND s.expires_at > now())"
    )
}

fn interval_secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

/// Takes `name` for `holder` for `ttl` when it is free (never held, or lapsed), or
/// extends it when `holder` still holds it (keeping its token). Answers the lease now
/// held, or `None` while another holder's lease runs.
pub async fn acquire(
    db: &PgPool,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO leases (name, holder, token, expires_at)
         VALUES ($1, $2, nextval('lease_tokens'), now() + make_interval(secs => $3))
         ON CONFLICT (name) DO UPDATE SET
             holder = EXCLUDED.holder,
             token = CASE WHEN leases.holder = EXCLUDED.holder AND leases.expires_at > now()
                          THEN leases.token ELSE EXCLUDED.token END,
             expires_at = EXCLUDED.expires_at
         WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= now()
         RETURNING name, holder, token, expires_at",
    )
    .bind(name)
    .bind(holder)
    .bind(interval_secs(ttl))
    .fetch_optional(db)
    .await
}

/// Extends `lease` by `ttl` if it is still held under its token; `None` once lost.
pub async fn renew(
    db: &PgPool,
    lease: &Lease,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
          WHERE name = $1 AND token = $2 AND expires_at > now()
         RETURNING name, holder, token, expires_at",
    )
    .bind(&lease.name)
    .bind(lease.token)
    .bind(interval_secs(ttl))
    .fetch_optional(db)
    .await
}

/// Gives `lease` up at once (if still held under its token), so another holder need not
/// wait for it to lapse.
pub async fn release(db: &PgPool, lease: &Lease) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE leases SET expires_at = now() WHERE name = $1 AND token = $2")
        .bind(&lease.name)
        .bind(lease.token)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends every lease at once (tests: a lapse without waiting for it).
pub async fn expire_all(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE leases SET expires_at = now()")
        .execute(db)
        .await?;
    Ok(())
}
