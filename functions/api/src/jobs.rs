//! Handlers of `/jobs` and `/stats`: parse, call `shared::service::Jobs`, serialize.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::clock;
use shared::job::{JobId, JobStatus};
use shared::service::{MAX_OFFSET, NewJob, RetryFilter};
use shared::store::{IdempotencyKey, ListFilter};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::ApiError;
use crate::view::{JobView, LIST_MAX_BYTES};

type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body, naming the offending field on error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::invalid("request body must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::invalid(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })
}

fn job_id(raw: &str) -> ApiResult<JobId> {
    raw.parse().map_err(ApiError)
}

/// `POST /jobs`
pub async fn create(
    State(app): State<AppState>,
    Signed(caller): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewJob = parse_json(&body)?;
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?
                .trim();
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid("Idempotency-Key must be 1-255 characters"));
            }
            Some(IdempotencyKey {
                // Keys are the caller's own: two owners using the same key get their own jobs.
                key: format!("{}:{key}", caller.owner),
                fingerprint: hex::encode(Sha256::digest(&body)),
            })
        }
    };
    let (job, created) = app.jobs.submit(&caller, new, idempotency).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(JobView::full(&job))).into_response())
}

/// `GET /jobs?status=..&status=..&kind=..&limit=..&next=..` (or `&offset=..` instead of
/// `next`, at most [`MAX_OFFSET`]). Unknown parameters are ignored (seed 001's UI may send sort
/// or search). The answer is `{jobs, next, limit}` (and `offset` when given); its jobs leave out
/// their timelines, and a page stops early, with `next`, before [`LIST_MAX_BYTES`].
pub async fn list(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let mut filter = ListFilter::default();
    let mut limit = 50usize;
    let mut next = None;
    let mut offset = None;
    for (k, v) in query_pairs(query.as_deref().unwrap_or_default()) {
        match k.as_str() {
            "status" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    filter.statuses.push(s.parse::<JobStatus>()?);
                }
            }
            "kind" | "type" if !v.is_empty() => filter.kind = Some(v.parse()?),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=200).contains(l))
                    .ok_or_else(|| ApiError::invalid("limit must be between 1 and 200"))?
            }
            "next" | "cursor" if !v.is_empty() => next = Some(v),
            "offset" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("offset: must be a whole number from 0 to {MAX_OFFSET}")))?;
                offset = Some(n);
            }
            _ => {}
        }
    }
    filter.statuses.dedup();
    let page = match (offset, next) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "offset: give offset or next, not both (next already says where the page starts)",
            ));
        }
        (Some(offset), None) => app.jobs.list_from(&caller, filter, limit, offset).await?,
        (None, next) => app.jobs.list(&caller, filter, limit, next.as_deref()).await?,
    };
    let mut jobs = Vec::with_capacity(page.jobs.len());
    let mut bytes = 0usize;
    let mut next = page.next;
    for (i, job) in page.jobs.iter().enumerate() {
        let view = JobView::listed(job)
            .to_value()
            .map_err(|e| ApiError::from(shared::Error::Internal(format!("cannot encode job: {e}"))))?;
        let size = serde_json::to_vec(&view).map(|b| b.len()).unwrap_or(usize::MAX);
        if i > 0 && bytes + size > LIST_MAX_BYTES {
            // The rest comes with the next page, from after the last job served.
            next = Some(shared::store::table::cursor_after(&page.jobs[i - 1]));
            break;
        }
        bytes += size;
        jobs.push(view);
    }
    let mut answer = json!({"jobs": jobs, "next": next, "limit": limit});
    if let Some(offset) = offset {
        answer["offset"] = json!(offset);
    }
    Ok(Json(answer).into_response())
}

/// `GET /jobs/{id}`
pub async fn get(State(app): State<AppState>, Signed(caller): Signed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = app.jobs.get(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `DELETE /jobs/{id}`: cancels a pending or queued job.
pub async fn cancel(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = app.jobs.cancel(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

/// `PUT /jobs/{id}/status` `{"status": ...}`: an operator's change (admins), 409 if the state
/// machine refuses.
pub async fn set_status(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = job_id(&id)?;
    let body: StatusBody = parse_json(&body)?;
    let to: JobStatus = body.status.parse()?;
    let job = app.jobs.set_status(&caller, id, to).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `POST /jobs/{id}/retry`
pub async fn retry(State(app): State<AppState>, Signed(caller): Signed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = app.jobs.retry(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `POST /jobs/retry` `{"kind"?, "ids"?, "all"?, "dry_run"?}`: retries failed jobs in bulk.
pub async fn bulk_retry(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> ApiResult<Response> {
    let filter: RetryFilter = parse_json(&body)?;
    let dry_run = filter.dry_run;
    let ids = app.jobs.bulk_retry(&caller, filter).await?;
    let key = if dry_run { "would_retry" } else { "retried" };
    Ok(Json(json!({ key: ids.len(), "job_ids": ids })).into_response())
}

/// `GET /stats`: the caller's jobs (an admin's: everyone's).
pub async fn stats(State(app): State<AppState>, Signed(caller): Signed) -> ApiResult<Response> {
    Ok(Json(app.jobs.stats(&caller, clock::now()).await?).into_response())
}

/// Decodes `a=1&b=x+y` (`+` is a space; repeated keys kept in order), the form encoding every
/// client sends.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
