//! Seed 002's routes, for its clients as they are: `POST /api/jobs` (a job like `POST /jobs`)
//! and `GET /api/jobs/{id}`, both answering the camelCase [`SeedJob`]. The work is the same
//! job's; only the shape differs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::service::NewJob;

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::ApiError;
use crate::jobs::parse_json;
use crate::openapi::ErrorBody;
use crate::view::SeedJob;

/// `POST /api/jobs` `{"type", "payload", "priority"?}` → 201 `{id, type, status: "pending",
/// createdAt, updatedAt}`.
#[utoipa::path(post, path = "/api/jobs", summary = "Submit a job (seed 002's contract): the body of POST /jobs; the answer is camelCase", tag = "seeds", request_body = NewJob,
    responses(
        (status = 201, description = "Created; status pending", body = SeedJob),
        (status = 400, description = "Invalid body or payload (the message names the field)", body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> Result<Response, ApiError> {
    let new: NewJob = parse_json(&body)?;
    let (job, _) = app.jobs.submit(&caller, new, None).await?;
    Ok((StatusCode::CREATED, Json(SeedJob::of(&job))).into_response())
}

/// `GET /api/jobs/{id}` → `{id, type, status, createdAt, updatedAt}` (+ `error`, `result`).
#[utoipa::path(get, path = "/api/jobs/{id}", summary = "A job in seed 002's shape", tag = "seeds", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "A job in seed 002's shape: four statuses (queued reads pending, cancelled reads failed with error cancelled)", body = SeedJob),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id.parse().map_err(ApiError)?;
    let job = app.jobs.get(&caller, id).await?;
    Ok(Json(SeedJob::of(&job)).into_response())
}
