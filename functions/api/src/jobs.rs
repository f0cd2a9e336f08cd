//! Handlers of `/jobs` and `/stats`: parse, call `shared::service::Jobs`, serialize.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::clock;
use shared::job::{JobId, JobKind, JobStatus};
use shared::service::{MAX_OFFSET, NewJob, RetryFilter};
use shared::store::{IdempotencyKey, ListFilter, Stats};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
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
#[utoipa::path(post, path = "/jobs", summary = "Submit a job", tag = "jobs",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255,
        description = "Same key and body -> the same job, no second message")),
    request_body = NewJob,
    responses(
        (status = 201, description = "Created and enqueued; it stays pending until a worker takes it", body = JobView),
        (status = 200, description = "The job an earlier request with this Idempotency-Key created", body = JobView),
        (status = 400, description = "Invalid body or payload (the message names the field)", body = ErrorBody),
        (status = 404, description = "No such upload_id of the caller's (`POST /jobs/uploads`)", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ErrorBody),
        (status = 503, description = "Storage or queue unavailable; nothing was kept", body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    Signed(caller): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?,
        ),
    };
    let (job, created) = create_job(&app, &caller, &body, key).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(JobView::full(&job))).into_response())
}

/// What `POST /jobs` does with its body and `Idempotency-Key` (GraphQL's `createJob` too):
/// the job and whether it is new.
pub async fn create_job(
    app: &AppState,
    caller: &shared::auth::Caller,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> ApiResult<(shared::job::Job, bool)> {
    // `{"kind": "image", "upload_id"}`: the payload is the caller's presigned upload.
    let upload = match crate::submissions::upload_id_of(body) {
        Some(id) => Some(crate::submissions::take(app, caller, &id).await?),
        None => None,
    };
    let new: NewJob = match &upload {
        Some(upload) => parse_json(&crate::submissions::job_body(body, upload)?)?,
        None => parse_json(body)?,
    };
    let idempotency = match idempotency_key.map(str::trim) {
        None => None,
        Some(key) => {
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid("Idempotency-Key must be 1-255 characters"));
            }
            Some(IdempotencyKey {
                // Keys are the caller's own: two owners using the same key get their own jobs.
                key: format!("{}:{key}", caller.owner),
                fingerprint: hex::encode(Sha256::digest(body)),
            })
        }
    };
    let (job, created) = app.jobs.submit(caller, new, idempotency).await?;
    if let Some(upload) = upload {
        crate::submissions::discard(app, upload).await;
    }
    Ok((job, created))
}

/// The query of `GET /jobs`, as [`ListQuery::parse`] reads it. Unknown parameters are ignored
/// (seed 001's UI may send sort or search).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only these statuses (repeated, or comma-separated).
    #[param(style = Form, explode = true, required = false)]
    pub status: Vec<JobStatus>,
    /// Only this kind.
    pub kind: Option<JobKind>,
    /// Same as kind (seed 001's name).
    #[param(rename = "type")]
    pub kind_alias: Option<JobKind>,
    /// Jobs per page.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page (also accepted as `cursor`).
    pub next: Option<String>,
    /// Jobs to skip (not with next); later pages follow next.
    #[param(minimum = 0, maximum = 1000)]
    pub offset: Option<usize>,
}

impl ListQuery {
    pub fn parse(query: &str) -> ApiResult<ListQuery> {
        let mut q = ListQuery::default();
        for (k, v) in query_pairs(query) {
            match k.as_str() {
                "status" => {
                    for s in v.split(',').filter(|s| !s.is_empty()) {
                        q.status.push(s.parse::<JobStatus>()?);
                    }
                }
                "kind" if !v.is_empty() => q.kind = Some(v.parse()?),
                "type" if !v.is_empty() => q.kind_alias = Some(v.parse()?),
                "limit" => {
                    q.limit = Some(
                        v.parse()
                            .ok()
                            .filter(|l| (1..=200).contains(l))
                            .ok_or_else(|| ApiError::invalid("limit must be between 1 and 200"))?,
                    )
                }
                "next" | "cursor" if !v.is_empty() => q.next = Some(v),
                "offset" => {
                    let n: usize = v.parse().map_err(|_| {
                        ApiError::invalid(format!("offset: must be a whole number from 0 to {MAX_OFFSET}"))
                    })?;
                    q.offset = Some(n);
                }
                _ => {}
            }
        }
        q.status.dedup();
        Ok(q)
    }
}

/// The answer of `GET /jobs`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Newest first, without their timelines.
    #[schema(value_type = Vec<JobView>)]
    pub jobs: Vec<Value>,
    /// Where the next page starts; `null` on the last page.
    pub next: Option<String>,
    pub limit: usize,
    /// The offset given, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// `GET /jobs?status=..&status=..&kind=..&limit=..&next=..` (or `&offset=..` instead of
/// `next`, at most [`MAX_OFFSET`]). The answer is `{jobs, next, limit}` (and `offset` when
/// given); its jobs leave out their timelines, and a page stops early, with `next`, before
/// [`LIST_MAX_BYTES`].
#[utoipa::path(get, path = "/jobs", summary = "List jobs, newest first (unknown parameters are ignored)", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "A page; jobs leave out their timeline, and a page stops early (with next) before 5 MB", body = JobPage),
        (status = 400, description = "Bad filter, cursor or offset (over 1000, or with next)", body = ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q = ListQuery::parse(query.as_deref().unwrap_or_default())?;
    let filter = ListFilter {
        statuses: q.status,
        kind: q.kind.or(q.kind_alias),
        ..ListFilter::default()
    };
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset;
    let page = match (offset, q.next) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "offset: give offset or next, not both (next already says where the page starts)",
            ));
        }
        (Some(offset), None) => app.jobs.list_from(&caller, filter, limit, offset).await?,
        (None, next) => app.jobs.list(&caller, filter, limit, next.as_deref()).await?,
    };
    let (jobs, next) = fit_page(&page)?;
    Ok(Json(JobPage {
        jobs,
        next,
        limit,
        offset,
    })
    .into_response())
}

/// The listed views of `page`'s jobs that fit in one answer (under [`LIST_MAX_BYTES`]), and
/// where the next page starts: a page stops early, after the last job served. `GET /jobs` and
/// GraphQL's `jobs` serve the same pages.
pub fn fit_page(page: &shared::store::Page) -> ApiResult<(Vec<Value>, Option<String>)> {
    let mut jobs = Vec::with_capacity(page.jobs.len());
    let mut bytes = 0usize;
    let mut next = page.next.clone();
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
    Ok((jobs, next))
}

/// `GET /jobs/{id}`
#[utoipa::path(get, path = "/jobs/{id}", summary = "One job, with its timeline", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "One job, with its timeline", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, Signed(caller): Signed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = app.jobs.get(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `DELETE /jobs/{id}`: cancels a pending or queued job.
#[utoipa::path(delete, path = "/jobs/{id}", summary = "Cancel a pending or queued job (one no worker has taken)", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Cancelled (it was pending or queued: no worker had taken it)", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not pending or queued", body = ErrorBody)))]
pub async fn cancel(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = app.jobs.cancel(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// The body of `PUT /jobs/{id}/status`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[schema(value_type = JobStatus)]
    status: String,
}

/// `PUT /jobs/{id}/status` `{"status": ...}`: an operator's change (admins), 409 if the state
/// machine refuses.
#[utoipa::path(put, path = "/jobs/{id}/status", summary = "Set the status by hand, through the state machine (admins)", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "Updated (through the state machine)", body = JobView),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Illegal transition", body = ErrorBody)))]
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
#[utoipa::path(post, path = "/jobs/{id}/retry", summary = "Retry a failed job", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Queued again", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not failed", body = ErrorBody)))]
pub async fn retry(State(app): State<AppState>, Signed(caller): Signed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = app.jobs.retry(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `POST /jobs/retry` `{"kind"?, "ids"?, "all"?, "dry_run"?}`: retries failed jobs in bulk.
#[utoipa::path(post, path = "/jobs/retry", summary = "Retry failed jobs in bulk", tag = "jobs", request_body = RetryFilter,
    responses(
        (status = 200, description = "How many were retried (or would be, with dry_run), and which", body = RetryAnswer),
        (status = 400, description = "No filter given", body = ErrorBody)))]
pub async fn bulk_retry(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> ApiResult<Response> {
    let filter: RetryFilter = parse_json(&body)?;
    let dry_run = filter.dry_run;
    let ids = app.jobs.bulk_retry(&caller, filter).await?;
    let n = Some(ids.len());
    let (retried, would_retry) = if dry_run { (None, n) } else { (n, None) };
    Ok(Json(RetryAnswer {
        retried,
        would_retry,
        job_ids: ids,
    })
    .into_response())
}

/// The answer of `POST /jobs/retry`: `retried`, or with `dry_run` `would_retry`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetryAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_retry: Option<usize>,
    pub job_ids: Vec<JobId>,
}

/// `GET /stats`: the caller's jobs (an admin's: everyone's).
#[utoipa::path(get, path = "/stats", summary = "Counts by status and kind, completions per minute (last hour); an admin's: everyone's", tag = "jobs",
    responses((status = 200, description = "Counts by status and kind, completions per minute (last hour)", body = Stats)))]
pub async fn stats(State(app): State<AppState>, Signed(caller): Signed) -> ApiResult<Response> {
    Ok(Json(app.jobs.stats(&caller, clock::now()).await?).into_response())
}

/// Decodes `a=1&b=x+y` (`+` is a space; repeated keys kept in order), the form encoding every
/// client sends.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
