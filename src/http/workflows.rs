//! `GET /internal/workflows/{id}`: a candle-close analysis schedule (DESIGN §14) with
//! its latest decisions — what an operator looks at when a signal was not entered.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use crate::storage::monitoring_decisions::{self, DecisionRow};
use crate::storage::workflow_schedules::{self, ScheduleRow};

/// Decisions shown with a schedule.
const DECISIONS_SHOWN: i64 = 20;

/// A schedule and its latest decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub schedule: ScheduleRow,
    /// Newest first (at most 20): `pending`, `enter`, `abandon`, `continue`, `failed`
    /// (the reasoning says why) or `skipped`.
    pub decisions: Vec<DecisionRow>,
}

/// One schedule with its latest decisions.
#[utoipa::path(get, path = "/workflows/{id}", tag = "analysis",
    security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule and its latest decisions, newest first", body = WorkflowView),
        (status = 400, description = "Malformed id", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or wrong X-MONITORING-KEY", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such schedule", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over this API key's rate limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::http::error::ErrorBody)))]
pub async fn get_workflow(
    State(db): State<PgPool>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<WorkflowView>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::bad_request("invalid_id", "id: must be a UUID"))?;
    let schedule = workflow_schedules::get(&db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no workflow schedule {id}")))?;
    let decisions = monitoring_decisions::latest(&db, id, DECISIONS_SHOWN).await?;
    Ok(Json(WorkflowView {
        schedule,
        decisions,
    }))
}
