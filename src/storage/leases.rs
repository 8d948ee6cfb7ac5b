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
    let taken = acquire_many(db, &[name.to_owned()], holder, ttl).await?;
    Ok(taken.into_iter().next())
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

/// What a write made under a lease checks: the lease's name and the token it was
/// held under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fence {
    pub name: String,
    pub token: i64,
}

impl From<&Lease> for Fence {
    fn from(lease: &Lease) -> Self {
        Self {
            name: lease.name.clone(),
            token: lease.token,
        }
    }
}

/// [`acquire`] for many names in one statement: answers the leases now held by
/// `holder` (those that were free, lapsed, or already its own).
pub async fn acquire_many(
    db: &PgPool,
    names: &[String],
    holder: &str,
    ttl: Duration,
) -> Result<Vec<Lease>, sqlx::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "INSERT INTO leases (name, holder, token, expires_at)
         SELECT n, $2, nextval('lease_tokens'), now() + make_interval(secs => $3)
           FROM UNNEST($1::text[]) AS n ORDER BY n
         ON CONFLICT (name) DO UPDATE SET
             holder = EXCLUDED.holder,
             token = CASE WHEN leases.holder = EXCLUDED.holder AND leases.expires_at > now()
                          THEN leases.token ELSE EXCLUDED.token END,
             expires_at = EXCLUDED.expires_at
         WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= now()
         RETURNING name, holder, token, expires_at",
    )
    .bind(names)
    .bind(holder)
    .bind(interval_secs(ttl))
    .fetch_all(db)
    .await
}

/// [`renew`] for many leases in one statement: answers those still held (the others
/// were lost: they lapsed and another holder took them, or were ended).
pub async fn renew_many(
    db: &PgPool,
    held: &[Lease],
    ttl: Duration,
) -> Result<Vec<Lease>, sqlx::Error> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = held.iter().map(|l| l.name.as_str()).collect();
    let tokens: Vec<i64> = held.iter().map(|l| l.token).collect();
    sqlx::query_as(
        "UPDATE leases l SET expires_at = now() + make_interval(secs => $3)
           FROM UNNEST($1::text[], $2::bigint[]) AS h(name, token)
          WHERE l.name = h.name AND l.token = h.token AND l.expires_at > now()
         RETURNING l.name, l.holder, l.token, l.expires_at",
    )
    .bind(&names)
    .bind(&tokens)
    .bind(interval_secs(ttl))
    .fetch_all(db)
    .await
}

/// [`release`] for many leases in one statement.
pub async fn release_many(db: &PgPool, held: &[Lease]) -> Result<(), sqlx::Error> {
    if held.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = held.iter().map(|l| l.name.as_str()).collect();
    let tokens: Vec<i64> = held.iter().map(|l| l.token).collect();
    sqlx::query(
        "UPDATE leases l SET expires_at = now()
           FROM UNNEST($1::text[], $2::bigint[]) AS h(name, token)
          WHERE l.name = h.name AND l.token = h.token",
    )
    .bind(&names)
    .bind(&tokens)
    .execute(db)
    .await?;
    Ok(())
}

/// Inside a transaction: which of `fences` are live (held under that token, not
/// expired), locking those lease rows until the transaction ends, so no other holder
/// can take them over before the writes they guard commit.
pub async fn lock_live(
    tx: &mut sqlx::PgConnection,
    fences: &[Fence],
) -> Result<std::collections::HashSet<Fence>, sqlx::Error> {
    if fences.is_empty() {
        return Ok(Default::default());
    }
    let mut sorted: Vec<&Fence> = fences.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let names: Vec<&str> = sorted.iter().map(|f| f.name.as_str()).collect();
    let tokens: Vec<i64> = sorted.iter().map(|f| f.token).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT l.name, l.token FROM leases l
           JOIN UNNEST($1::text[], $2::bigint[]) AS f(name, token)
             ON l.name = f.name AND l.token = f.token
          WHERE l.expires_at > now()
          ORDER BY l.name
          FOR SHARE OF l",
    )
    .bind(&names)
    .bind(&tokens)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, token)| Fence { name, token })
        .collect())
}

/// Ends every lease at once (tests: a lapse without waiting for it).
pub async fn expire_all(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE leases SET expires_at = now()")
        .execute(db)
        .await?;
    Ok(())
}
