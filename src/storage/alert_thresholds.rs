//! The `alert_thresholds` table, all of its SQL: per-rule (and optionally per-engine)
//! thresholds overriding the defaults of the operational rules (DESIGN §12).

use sqlx::PgConnection;

/// One row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ThresholdRow {
    pub rule: String,
    /// `None`: every engine.
    pub engine_id: Option<String>,
    pub low: Option<f64>,
    pub medium: Option<f64>,
    pub high: Option<f64>,
    pub enabled: bool,
}

/// Every row (the table is small: a few per rule).
pub async fn all(conn: &mut PgConnection) -> Result<Vec<ThresholdRow>, sqlx::Error> {
    sqlx::query_as("SELECT rule, engine_id, low, medium, high, enabled FROM alert_thresholds")
        .fetch_all(conn)
        .await
}
