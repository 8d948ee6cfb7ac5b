//! The `candles` table, all of its SQL: closed candles of a series (source, symbol,
//! interval) by open time, kept for backtests; written once (a candle that closed never
//! changes), read by span, removed past their retention.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One series: where its candles come from and their width (`1m`, `1h`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesName {
    pub source: String,
    pub symbol: String,
    pub interval: String,
}

/// One closed candle.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct StoredCandle {
    pub open_time: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Stores `candles` of `series` in one statement; those already stored are kept as
/// they are. Answers how many were new.
pub async fn insert(
    db: &PgPool,
    series: &SeriesName,
    candles: &[StoredCandle],
) -> Result<u64, sqlx::Error> {
    if candles.is_empty() {
        return Ok(0);
    }
    let column = |f: fn(&StoredCandle) -> f64| candles.iter().map(f).collect::<Vec<f64>>();
    let open_times: Vec<DateTime<Utc>> = candles.iter().map(|c| c.open_time).collect();
    let result = sqlx::query(
        "INSERT INTO candles (source, symbol, interval, open_time, open, high, low, close, volume)
         SELECT $1, $2, $3, c.* FROM UNNEST($4::timestamptz[], $5::float8[], $6::float8[],
                                            $7::float8[], $8::float8[], $9::float8[]) AS c
         ON CONFLICT (source, symbol, interval, open_time) DO NOTHING",
    )
    .bind(&series.source)
    .bind(&series.symbol)
    .bind(&series.interval)
    .bind(&open_times)
    .bind(column(|c| c.open))
    .bind(column(|c| c.high))
    .bind(column(|c| c.low))
    .bind(column(|c| c.close))
    .bind(column(|c| c.volume))
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// The stored candles of `series` opened in `[from, to)`, oldest first.
pub async fn span(
    db: &PgPool,
    series: &SeriesName,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StoredCandle>, sqlx::Error> {
    sqlx::query_as(
        "SELECT open_time, open, high, low, close, volume FROM candles
          WHERE source = $1 AND symbol = $2 AND interval = $3
            AND open_time >= $4 AND open_time < $5
          ORDER BY open_time",
    )
    .bind(&series.source)
    .bind(&series.symbol)
    .bind(&series.interval)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Holds the fill of `series` until `tx` ends: replicas (and processes) filling one
/// series take turns, the second finding what the first stored.
pub async fn lock_series(
    tx: &mut sqlx::PgConnection,
    series: &SeriesName,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "candles:{}:{}:{}",
            series.source, series.symbol, series.interval
        ))
        .execute(tx)
        .await?;
    Ok(())
}

/// Removes every candle opened before `before`; answers how many.
pub async fn remove_before(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM candles WHERE open_time < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(result.rows_affected())
}
