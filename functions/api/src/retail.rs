//! Retail Pulse's public contract, kept exactly: `POST /api/submit/` and `GET /api/status?jobid=`;
//! and `GET /jobs/{id}/images`, the per-image results of any image job.
//!
//! Submissions become ordinary `image` jobs (they show in `/jobs` too); the worker measures them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::Error;
use shared::images::{ImageResult, StoreError, store_errors};
use shared::job::{ImagePayload, JobId, JobSpec, JobStatus};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::{ApiError, error_response};
use crate::jobs::{parse_json, query_pairs};
use crate::openapi::ErrorBody;

/// `POST /api/submit/` `{"count", "visits": [{"store_id", "image_url": [...], "visit_time"}]}` ->
/// 201 `{"job_id"}`; 400 `{"error"}` for missing fields or `count != visits.length`.
#[utoipa::path(post, path = "/api/submit", summary = "Submit a Retail Pulse image job (the seed's contract); it also shows in /jobs as kind image", tag = "retail", request_body = ImagePayload,
    responses(
        (status = 201, description = "Accepted; the job also shows in /jobs as kind image", body = Submitted),
        (status = 400, description = "Missing fields or count != visits.length", body = ErrorBody)))]
pub async fn submit(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> Result<Response, ApiError> {
    let payload: ImagePayload = parse_json(&body)?;
    let spec = JobSpec::Image(payload);
    // Errors name fields as the client sent them (`count`, not `payload.count`).
    spec.validate()
        .map_err(|e| ApiError::invalid(e.to_string().trim_start_matches("payload.").to_string()))?;
    let priority = shared::service::DEFAULT_PRIORITY;
    let (job, _) = app
        .jobs
        .submit_spec(Some(caller.owner), spec, priority, None, None)
        .await?;
    Ok((StatusCode::CREATED, Json(Submitted { job_id: job.id })).into_response())
}

/// The answer of `POST /api/submit/`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub job_id: JobId,
}

/// `POST /api/submit/`: the seed's own spelling of [`submit`] (its clients post with the slash).
#[utoipa::path(post, path = "/api/submit/", summary = "Submit a Retail Pulse image job (the seed's spelling, with the slash)", tag = "retail", request_body = ImagePayload,
    responses(
        (status = 201, description = "Accepted; the job also shows in /jobs as kind image", body = Submitted),
        (status = 400, description = "Missing fields or count != visits.length", body = ErrorBody)))]
pub async fn submit_slash(state: State<AppState>, signed: Signed, body: Bytes) -> Result<Response, ApiError> {
    submit(state, signed, body).await
}

/// `GET /api/status?jobid=ID` -> `{"status": "completed" | "ongoing" | "failed", "job_id"}`, with
/// `"error": [{"store_id", "error"}]` for a failed job. An unknown id is a 400, as in the seed.
#[utoipa::path(get, path = "/api/status", summary = "Retail Pulse job status (an unknown id is a 400, as in the seed)", tag = "retail",
    params(("jobid" = Uuid, Query, description = "The job_id /api/submit answered")),
    responses(
        (status = 200, description = "`{status: completed | ongoing | failed, job_id, error?: [{store_id, error}]}`", body = Object),
        (status = 400, description = "No jobid, or Job ID not found", body = ErrorBody)))]
pub async fn status(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some((_, raw)) = query_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "jobid")
    else {
        return Err(ApiError::invalid("jobid is required: /api/status?jobid=ID"));
    };
    let not_found = || error_response(StatusCode::BAD_REQUEST, "Job ID not found");
    let Ok(id) = raw.trim().parse() else {
        return Ok(not_found());
    };
    let job = match app.jobs.get(&caller, id).await {
        Ok(job) if matches!(job.spec, JobSpec::Image(_)) => job,
        Ok(_) | Err(Error::NotFound(_)) => return Ok(not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut body = json!({"job_id": job.id});
    match job.status {
        JobStatus::Completed => body["status"] = json!("completed"),
        JobStatus::Failed | JobStatus::Cancelled => {
            body["status"] = json!("failed");
            let result = job.result.as_ref();
            let truncated = result.and_then(|r| r.get("errors_truncated")).and_then(Value::as_bool) == Some(true);
            let stores = if truncated && let Some(run) = job.last_run_key() {
                // The job item lists the first stores only; every store's error is in the parts.
                Some(store_errors(&app.parts.list(job.id, &run).await?))
            } else {
                result
                    .and_then(|r| r.get("errors"))
                    .and_then(Value::as_array)
                    .filter(|e| !e.is_empty())
                    .cloned()
            };
            body["error"] = match stores {
                Some(errors) => Value::Array(errors),
                None => json!([{"store_id": null, "error": job.error.as_deref().unwrap_or("cancelled")}]),
            };
        }
        JobStatus::Pending | JobStatus::Queued | JobStatus::Processing => body["status"] = json!("ongoing"),
    }
    Ok(Json(body).into_response())
}

/// `GET /jobs/{id}/images`: every measured image and every failed one of the job's latest run.
#[utoipa::path(get, path = "/jobs/{id}/images", summary = "Per-image results of an image job's latest run, and each failed image's error", tag = "retail", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Per-image results of an image job's latest run", body = ImagesAnswer),
        (status = 400, description = "Not an image job", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn images(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id.parse().map_err(ApiError)?;
    let job = app.jobs.get(&caller, id).await?;
    let JobSpec::Image(payload) = &job.spec else {
        return Err(ApiError::invalid(format!(
            "job {id} is a {} job, not an image job",
            job.kind()
        )));
    };
    let parts = match job.last_run_key() {
        Some(run) => app.parts.list(id, &run).await?,
        None => Vec::new(),
    };
    let images = parts.iter().flat_map(|p| &p.images).collect();
    let errors = parts.iter().flat_map(|p| &p.errors).collect();
    Ok(Json(ImagesAnswer {
        job_id: id,
        status: job.status,
        images_total: payload.image_count(),
        parts_total: payload.part_count(),
        parts_done: parts.len(),
        images,
        errors,
    })
    .into_response())
}

/// The answer of `GET /jobs/{id}/images`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImagesAnswer<'a> {
    pub job_id: JobId,
    pub status: JobStatus,
    pub images_total: usize,
    pub parts_total: u32,
    /// Parts of the latest run that have reported.
    pub parts_done: usize,
    /// Every measured image: store, url, width, height, perimeter, bytes read.
    pub images: Vec<&'a ImageResult>,
    /// Every image that failed, with why.
    pub errors: Vec<&'a StoreError>,
}
