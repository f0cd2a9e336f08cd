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
use shared::store::shards::{Order, SortBy};
use shared::store::{IdempotencyKey, ListFilter, Stats};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::view::{JobSummary, JobView, LIST_MAX_BYTES};

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
    /// `summary`: each job's summary fields only (the console's list), with `total`; and `q`,
    /// `sort` and `order` are honoured (without it they are ignored, as every unknown parameter).
    #[param(value_type = Option<String>, pattern = "^summary$")]
    pub view: Option<String>,
    /// With `view=summary`: a full id, a short id (its last 8 characters), or the kind's main key
    /// (asset id, file name, store id); answered from a lookup, never a scan.
    pub q: Option<String>,
    /// With `view=summary`: `created` (default), `updated` or `priority`.
    #[param(value_type = Option<String>, pattern = "^(created|updated|priority)$")]
    pub sort: Option<String>,
    /// With `view=summary`: `desc` (default: newest, or highest priority, first) or `asc`.
    #[param(value_type = Option<String>, pattern = "^(asc|desc)$")]
    pub order: Option<String>,
    /// With `view=summary&sort=updated` (newest first) and no `q`: start at the end of this UTC
    /// minute (`YYYY-MM-DDTHH:MM`, a minute of `GET /stats`' series), so the first rows are the
    /// jobs last changed in it, then earlier ones. The console's chart bars link here.
    #[param(value_type = Option<String>, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$")]
    pub updated_until: Option<String>,
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
                "view" if !v.is_empty() => {
                    if v != "summary" {
                        return Err(ApiError::invalid(format!("view: only summary is known, not {v:?}")));
                    }
                    q.view = Some(v)
                }
                "q" => q.q = Some(v),
                "sort" => q.sort = Some(v),
                "order" => q.order = Some(v),
                "updated_until" if !v.is_empty() => q.updated_until = Some(v),
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

    /// The order asked for (with `view=summary`; otherwise newest first, whatever was sent).
    pub fn order(&self) -> ApiResult<Order> {
        if self.view.is_none() {
            return Ok(Order::default());
        }
        let by = match self.sort.as_deref() {
            None | Some("") => SortBy::Created,
            Some(s) => SortBy::parse(s)?,
        };
        let ascending = match self.order.as_deref() {
            None | Some("") | Some("desc") => false,
            Some("asc") => true,
            Some(o) => return Err(ApiError::invalid(format!("order: must be asc or desc, not {o:?}"))),
        };
        Ok(Order { by, ascending })
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
    if q.view.is_some() {
        return list_summaries(&app, &caller, q).await;
    }
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

/// The answer of `GET /jobs?view=summary`: the console's list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryPage {
    pub jobs: Vec<JobSummary>,
    /// Where the next page starts (the same filter, sort and order); `null` on the last page.
    pub next: Option<String>,
    pub limit: usize,
    /// Jobs the filter (or the search) matches in all.
    pub total: i64,
    /// `true` when `total` is an estimate (a kind and some statuses: the counters are by status
    /// and by kind, not both); the console says "about".
    pub total_estimated: bool,
}

/// `GET /jobs?view=summary&q=&sort=&order=`: summary fields, a total, search and sort.
async fn list_summaries(app: &AppState, caller: &shared::auth::Caller, q: ListQuery) -> ApiResult<Response> {
    let order = q.order()?;
    let limit = q.limit.unwrap_or(50);
    if q.offset.is_some() {
        return Err(ApiError::invalid("offset: not with view=summary; follow next"));
    }
    let filter = ListFilter {
        statuses: q.status.clone(),
        kind: q.kind.or(q.kind_alias),
        order,
        ..ListFilter::default()
    };
    let mut next = q.next.clone();
    if let Some(minute) = q.updated_until.as_deref() {
        next = Some(updated_until_cursor(minute, order, &q)?);
    }
    if let Some(text) = q.q.as_deref().filter(|t| !t.trim().is_empty()) {
        let mut found = app.jobs.search(caller, text, &filter).await?;
        found.sort_by(|a, b| {
            let (ka, kb) = (order.key(a), order.key(b));
            if order.ascending { ka.cmp(&kb) } else { kb.cmp(&ka) }
        });
        let total = found.len() as i64;
        found.truncate(limit);
        let now = clock::now();
        return Ok(Json(SummaryPage {
            jobs: found
                .iter()
                .map(|j| JobSummary::flagged(j, &app.jobs.bounds, now))
                .collect(),
            next: None,
            limit,
            total,
            total_estimated: false,
        })
        .into_response());
    }
    // The page and the counters (for the total) at once: the answer waits for the slower only.
    let (page, stats) = tokio::try_join!(
        app.jobs.list(caller, filter.clone(), limit, next.as_deref()),
        app.jobs.stats(caller, clock::now()),
    )?;
    let (total, total_estimated) = total_of(&stats, &filter);
    let now = clock::now();
    Ok(Json(SummaryPage {
        jobs: page
            .jobs
            .iter()
            .map(|j| JobSummary::flagged(j, &app.jobs.bounds, now))
            .collect(),
        next: page.next,
        limit,
        total,
        total_estimated,
    })
    .into_response())
}

/// The cursor of a listing by last change, newest first, that starts after the UTC minute
/// `minute` (`YYYY-MM-DDTHH:MM`): every job changed in it or before. Keys are fixed-width
/// (`<updated_at>#<id>`), so the next minute's key is the boundary.
fn updated_until_cursor(minute: &str, order: Order, q: &ListQuery) -> ApiResult<String> {
    if order.by != SortBy::Updated || order.ascending {
        return Err(ApiError::invalid("updated_until: only with sort=updated, newest first"));
    }
    if q.next.is_some() || q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        return Err(ApiError::invalid(
            "updated_until: not with next or q (it says where the first page starts)",
        ));
    }
    let at = (minute.len() == 16)
        .then(|| {
            time::OffsetDateTime::parse(&format!("{minute}:00Z"), &time::format_description::well_known::Rfc3339).ok()
        })
        .flatten()
        .ok_or_else(|| ApiError::invalid(format!("updated_until: a UTC minute YYYY-MM-DDTHH:MM, not {minute:?}")))?;
    Ok(shared::store::shards::Cursor {
        // `#` ends it as it ends every key's time (a cursor's boundary is a key).
        boundary: format!("{}#", clock::minute_key(at + time::Duration::minutes(1))),
        done: Vec::new(),
    }
    .encode())
}

/// How many jobs `filter` matches, from the counters: exact for statuses alone or a kind alone;
/// for both, the statuses' count in the kind's share (an estimate).
pub fn total_of(stats: &Stats, filter: &ListFilter) -> (i64, bool) {
    let of_statuses: i64 = if filter.statuses.is_empty() {
        stats.total
    } else {
        filter
            .statuses
            .iter()
            .map(|s| stats.by_status.get(s.as_str()).copied().unwrap_or(0))
            .sum()
    };
    match filter.kind {
        None => (of_statuses.max(0), false),
        Some(k) => {
            let of_kind = stats.by_kind.get(k.as_str()).copied().unwrap_or(0).max(0);
            if filter.statuses.is_empty() || of_statuses >= stats.total {
                (of_kind, false)
            } else if stats.total <= 0 {
                (0, false)
            } else {
                (
                    ((of_statuses as f64) * (of_kind as f64) / (stats.total as f64)).round() as i64,
                    true,
                )
            }
        }
    }
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
    Ok(Json(JobView::flagged(&job, &app.jobs.bounds, clock::now())).into_response())
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

/// `POST /jobs/{id}/run`: a job scheduled for later runs now.
#[utoipa::path(post, path = "/jobs/{id}/run", summary = "Run a job scheduled for later now", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Due now, its message sent without delay (status unchanged: waiting for a worker)", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not waiting, or not scheduled for later", body = ErrorBody),
        (status = 503, description = "The message could not be sent; the job is due now and runs when its delayed message arrives", body = ErrorBody)))]
pub async fn run_now(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = app.jobs.run_now(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// `POST /jobs/{id}/stop`: an operator ends a job that will not finish in time (admins).
#[utoipa::path(post, path = "/jobs/{id}/stop", summary = "Stop a job: cancel a waiting one, fail a running one past its bound (admins)", tag = "jobs", params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Cancelled (it was waiting), or failed \"stopped by <admin>: <why>\" (it was running past its bound, the sweeper's rule)", body = JobView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Finished, or running within its bound", body = ErrorBody)))]
pub async fn stop(State(app): State<AppState>, Signed(caller): Signed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = app.jobs.stop(&caller, job_id(&id)?).await?;
    Ok(Json(JobView::full(&job)).into_response())
}

/// The sweeper's bounds, in seconds (`SWEEP_*_SECONDS`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoundsView {
    /// A new job never sent to a queue.
    pub pending_seconds: i64,
    /// A job waiting for a worker with its message sent (not scheduled later).
    pub queued_seconds: i64,
    /// A running attempt after its lease ended.
    pub lease_grace_seconds: i64,
    /// A run in parts without a part finished.
    pub parts_stalled_seconds: i64,
}

/// The answer of `GET /jobs/stuck`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StuckPage {
    /// The jobs past their bound (each with `past_bound`: why), oldest first per status.
    pub jobs: Vec<JobSummary>,
    /// `true` when a status had more jobs than were looked at (`limit` of each, oldest first,
    /// as a sweep looks): there may be more past their bound.
    pub more: bool,
    pub bounds: BoundsView,
}

/// `GET /jobs/stuck?limit=`: the jobs past their bound, as the sweeper sees them.
#[utoipa::path(get, path = "/jobs/stuck", summary = "Jobs past their bound (the sweeper's rule): waiting or running longer than it allows", tag = "jobs",
    params(("limit" = Option<usize>, Query, description = "Jobs looked at per status (pending, queued, processing), oldest first: 1-500, default 100")),
    responses(
        (status = 200, description = "The jobs past their bound with why, and the bounds", body = StuckPage),
        (status = 400, description = "limit out of range", body = ErrorBody)))]
pub async fn stuck(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let limit = number_param(query.as_deref(), "limit", 100, shared::sweep::SWEEP_PAGE)?;
    let (found, more) = app.jobs.past_bound(&caller, limit).await?;
    let b = app.jobs.bounds;
    Ok(Json(StuckPage {
        jobs: found
            .into_iter()
            .map(|(job, why)| JobSummary {
                past_bound: Some(why),
                ..JobSummary::of(&job)
            })
            .collect(),
        more,
        bounds: BoundsView {
            pending_seconds: b.pending.whole_seconds(),
            queued_seconds: b.queued.whole_seconds(),
            lease_grace_seconds: b.lease_grace.whole_seconds(),
            parts_stalled_seconds: b.parts_stalled.whole_seconds(),
        },
    })
    .into_response())
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

/// The body of `POST /jobs/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSelection {
    /// The selected jobs (at most 100); those no longer pending or queued are left alone.
    pub ids: Vec<JobId>,
    /// Count what would be cancelled without doing it.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer of `POST /jobs/cancel`: `cancelled`, or with `dry_run` `would_cancel`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_cancel: Option<usize>,
    pub job_ids: Vec<JobId>,
}

/// `POST /jobs/cancel` `{"ids", "dry_run"?}`: cancels a selection (bounded), each job through
/// the state machine.
#[utoipa::path(post, path = "/jobs/cancel", summary = "Cancel a selection of jobs (at most 100; those pending or queued)", tag = "jobs", request_body = CancelSelection,
    responses(
        (status = 200, description = "How many were cancelled (or would be, with dry_run), and which", body = CancelAnswer),
        (status = 400, description = "No ids, or more than 100", body = ErrorBody)))]
pub async fn bulk_cancel(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> ApiResult<Response> {
    let sel: CancelSelection = parse_json(&body)?;
    let ids = app.jobs.bulk_cancel(&caller, &sel.ids, sel.dry_run).await?;
    let n = Some(ids.len());
    let (cancelled, would_cancel) = if sel.dry_run { (None, n) } else { (n, None) };
    Ok(Json(CancelAnswer {
        cancelled,
        would_cancel,
        job_ids: ids,
    })
    .into_response())
}

/// `GET /jobs/failures?kind=`: the latest failures grouped by reason.
#[utoipa::path(get, path = "/jobs/failures", summary = "The latest failed jobs (up to 1,000) grouped by their normalized error", tag = "jobs",
    params(("kind" = Option<JobKind>, Query, description = "Only this kind")),
    responses(
        (status = 200, description = "Groups, largest first", body = shared::service::FailureGroups),
        (status = 400, description = "Unknown kind", body = ErrorBody)))]
pub async fn failures(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let mut kind = None;
    for (k, v) in query_pairs(query.as_deref().unwrap_or_default()) {
        if (k == "kind" || k == "type") && !v.is_empty() {
            kind = Some(v.parse::<JobKind>()?);
        }
    }
    Ok(Json(app.jobs.failure_groups(&caller, kind).await?).into_response())
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

/// The query parameter `name` as a number from 1 to `max`, `default` when absent; any other value
/// is a 400 naming it (repeated: each must be valid, the last one counts).
pub fn number_param(query: Option<&str>, name: &str, default: usize, max: usize) -> ApiResult<usize> {
    let mut n = default;
    for (k, v) in query_pairs(query.unwrap_or_default()) {
        if k == name {
            n = v
                .parse()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::invalid(format!("{name}: must be a number from 1 to {max}")))?;
        }
    }
    Ok(n)
}
