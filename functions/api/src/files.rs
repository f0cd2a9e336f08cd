//! Event Horizon's contract (`/api/v1/...`): JSONL uploads, presigned uploads for big files, ingest
//! status and the stored entries. The S3-triggered ingest function does the work; these routes
//! create the `log_ingest` job and the object it reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use shared::auth::Caller;
use shared::clock;
use shared::job::{IngestResult, Job, JobId, JobResult, JobSpec, JobStatus, LogIngestPayload};
use shared::logs::{Level, LogEntry, Rejection};
use shared::service::DEFAULT_PRIORITY;
use shared::store::entries::EntryStore;

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::{ApiError, error_response};
use crate::jobs::{parse_json, query_pairs};
use crate::openapi::ErrorBody;

/// Where uploads go and how big they may be.
#[derive(Clone)]
pub struct Files {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub entries: Arc<dyn EntryStore>,
    /// Largest body `POST /api/v1/files/upload` takes. API Gateway passes at most 10 MB and Lambda
    /// at most 6 MB of event, in which a binary body is base64 (4/3 larger): 4 MiB fits both.
    pub max_upload_bytes: usize,
    /// Largest file a presigned URL may put (S3's single-PUT limit is 5 GiB).
    pub max_presigned_bytes: u64,
}

/// Default for [`Files::max_upload_bytes`].
pub const MAX_UPLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Default for [`Files::max_presigned_bytes`].
pub const MAX_PRESIGNED_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// How long a presigned URL works.
pub const PRESIGNED_EXPIRY: StdDuration = StdDuration::from_secs(900);

fn check_name(name: &str) -> Result<String, ApiError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() {
        return Err(ApiError::invalid("a file name is required"));
    }
    if !(base.ends_with(".jsonl") || base.ends_with(".jsonl.gz")) {
        return Err(ApiError::invalid(format!(
            "file name {}: only .jsonl or .jsonl.gz files are accepted",
            shared::limits::quote(base)
        )));
    }
    if base.len() > 200 || base.chars().any(char::is_control) {
        return Err(ApiError::invalid("the file name is too long or has control characters"));
    }
    Ok(base.to_string())
}

fn too_large(limit: u64) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the file is larger than {limit} bytes; use POST /api/v1/files for a presigned upload"),
    )
}

/// A new `log_ingest` job for `uploads/<owner>/<job_id>/<name>`, stored as `pending` and
/// charged to the caller's upload limit.
async fn new_ingest_job(app: &AppState, caller: &Caller, name: &str, size: u64) -> Result<Job, ApiError> {
    let id = JobId::new();
    let spec = JobSpec::LogIngest(LogIngestPayload {
        bucket: app.files.bucket.clone(),
        key: LogIngestPayload::upload_key(&caller.owner, id, name),
        file_name: name.into(),
        size,
    });
    let mut job = Job::new(spec, DEFAULT_PRIORITY, None, clock::now())?.owned_by(caller.owner.clone());
    job.id = id;
    Ok(app.jobs.create_pending(job, None, true).await?)
}

/// `POST /api/v1/files/upload`: multipart field `file`, or a raw body named by `?filename=` or an
/// `X-File-Name` header. Stores the file in S3 and answers 202 `{"job_id"}`; the S3 event starts
/// the ingest.
#[utoipa::path(post, path = "/api/v1/files/upload", summary = "Upload a .jsonl / .jsonl.gz file (multipart field file, or a raw body); the ingest function processes it", tag = "files",
    params(("filename" = Option<String>, Query, description = "File name of a raw (non-multipart) body; or the X-File-Name header")),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (RawFile = "application/octet-stream"))),
    responses(
        (status = 202, description = "Stored; ingest queued", body = Uploaded),
        (status = 400, description = "Not .jsonl/.jsonl.gz, empty, or no file", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit (use POST /api/v1/files)", body = ErrorBody)))]
pub async fn upload(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let limit = app.files.max_upload_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Ok(too_large(limit as u64));
    }
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let (name, data) = if is_multipart {
        let mut form = Multipart::from_request(request, &app)
            .await
            .map_err(|e| ApiError::invalid(format!("invalid multipart body: {e}")))?;
        let mut found = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::invalid(format!("invalid multipart body: {e}")))?
        {
            if field.name() == Some("file") {
                let name = field.file_name().unwrap_or_default().to_string();
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::invalid(format!("reading the file field: {e}")))?;
                found = Some((name, data));
                break;
            }
        }
        found.ok_or_else(|| ApiError::invalid("the multipart form has no `file` field"))?
    } else {
        let name = query_pairs(query.as_deref().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k == "filename")
            .map(|(_, v)| v)
            .or_else(|| {
                request
                    .headers()
                    .get("x-file-name")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                ApiError::invalid(
                    "send multipart/form-data with a `file` field, or a raw body with ?filename= or X-File-Name",
                )
            })?;
        let data = Bytes::from_request(request, &app)
            .await
            .map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        (name, data)
    };
    let name = check_name(&name)?;
    if data.len() > limit {
        return Ok(too_large(limit as u64));
    }
    if data.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let job = new_ingest_job(&app, &caller, &name, data.len() as u64).await?;
    let JobSpec::LogIngest(payload) = &job.spec else {
        unreachable!("log_ingest job")
    };
    let put = app
        .files
        .s3
        .put_object()
        .bucket(&app.files.bucket)
        .key(&payload.key)
        .content_type(if name.ends_with(".gz") {
            "application/gzip"
        } else {
            "application/x-ndjson"
        })
        .body(data.to_vec().into())
        .send()
        .await;
    if let Err(e) = put {
        if let Err(undo) = app.jobs.discard_pending(&job).await {
            tracing::error!(job_id = %job.id, error = %undo, "could not remove the job of a failed upload");
        }
        return Err(ApiError(shared::Error::aws("PutObject", e)));
    }
    let job = app.jobs.mark_queued(job.id, "uploaded; waiting for ingest").await?;
    let body = Uploaded {
        job_id: job.id,
        status: status_name(job.status),
        file_name: name,
        size: payload.size,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The answer of `POST /api/v1/files/upload` (Event Horizon's shape).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub job_id: JobId,
    /// `queued`, or already `processing` / `completed` when the ingest was quicker than the answer.
    #[schema(value_type = String, pattern = "^(queued|processing|completed|failed)$")]
    pub status: &'static str,
    pub file_name: String,
    pub size: u64,
}

/// The multipart form of `POST /api/v1/files/upload` (read field by field in [`upload`]).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// A `.jsonl` or `.jsonl.gz` file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A raw (non-multipart) body of `POST /api/v1/files/upload`: the file itself.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(value_type = String, format = Binary)]
pub struct RawFile(Vec<u8>);

/// The body of `POST /api/v1/files`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    file_name: String,
    size: u64,
}

/// `POST /api/v1/files` `{"file_name", "size"}`: a presigned S3 PUT for files too large to pass
/// through the API. The URL is signed for exactly `size` bytes.
#[utoipa::path(post, path = "/api/v1/files", summary = "A presigned S3 PUT URL for a large file, and its ingest job", tag = "files", request_body = PresignRequest,
    responses(
        (status = 201, description = "The ingest job and a presigned PUT for its file", body = FilePresigned),
        (status = 400, description = "Bad name or size", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody)))]
pub async fn presign(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> Result<Response, ApiError> {
    let req: PresignRequest = parse_json(&body)?;
    let name = check_name(&req.file_name)?;
    if req.size == 0 {
        return Err(ApiError::invalid("size: the file is empty"));
    }
    if req.size > app.files.max_presigned_bytes {
        return Ok(too_large(app.files.max_presigned_bytes));
    }
    let job = new_ingest_job(&app, &caller, &name, req.size).await?;
    let JobSpec::LogIngest(payload) = &job.spec else {
        unreachable!("log_ingest job")
    };
    let put = presign_put(&app, &app.files.bucket, &payload.key, req.size, PRESIGNED_EXPIRY).await?;
    let job = app.jobs.mark_queued(job.id, "waiting for the presigned upload").await?;
    let body = FilePresigned {
        job_id: job.id,
        key: payload.key.clone(),
        put,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The answer of `POST /api/v1/files`: the ingest job and where to PUT its file.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FilePresigned {
    pub job_id: JobId,
    /// Under `uploads/<owner>/`.
    pub key: String,
    #[serde(flatten)]
    pub put: PresignedPut,
}

/// A presigned S3 PUT: send the body to `upload_url` with `method` and every header of `headers`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PresignedPut {
    pub upload_url: String,
    /// Always `PUT`.
    #[schema(value_type = String, pattern = "^PUT$")]
    pub method: &'static str,
    /// Headers the signature covers.
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The body's exact size.
    pub max_bytes: u64,
}

/// A PUT of exactly `size` bytes to `bucket`/`key`, signed for `expiry`.
pub async fn presign_put(
    app: &AppState,
    bucket: &str,
    key: &str,
    size: u64,
    expiry: StdDuration,
) -> Result<PresignedPut, ApiError> {
    let config = PresigningConfig::expires_in(expiry).map_err(|e| ApiError(shared::Error::Internal(e.to_string())))?;
    let presigned = app
        .files
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_length(size as i64)
        .presigned(config)
        .await
        .map_err(|e| ApiError(shared::Error::aws("PresignPutObject", e)))?;
    Ok(PresignedPut {
        upload_url: presigned.uri().to_string(),
        method: "PUT",
        headers: presigned
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        expires_at: clock::format(clock::now() + time::Duration::seconds(expiry.as_secs() as i64)),
        max_bytes: size,
    })
}

/// Event Horizon's four statuses.
fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending | JobStatus::Queued => "queued",
        JobStatus::Processing => "processing",
        JobStatus::Completed => "completed",
        JobStatus::Failed | JobStatus::Cancelled => "failed",
    }
}

pub(crate) async fn ingest_job(app: &AppState, caller: &Caller, raw: &str) -> Result<Job, ApiError> {
    let job = app.jobs.get(caller, raw.parse()?).await?;
    if !matches!(job.spec, JobSpec::LogIngest(_)) {
        return Err(ApiError(shared::Error::NotFound(format!(
            "job {} is not a file ingest",
            job.id
        ))));
    }
    Ok(job)
}

/// `GET /api/v1/jobs/{job_id}`: status, progress and counts of an ingest.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", summary = "Ingest status: queued | processing | completed | failed, progress, counts", tag = "files", params(("job_id" = Uuid, Path, description = "The ingest job's id")),
    responses(
        (status = 200, description = "The ingest's status, progress and counts", body = IngestStatus),
        (status = 404, description = "No such ingest job", body = ErrorBody)))]
pub async fn status(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = ingest_job(&app, &caller, &id).await?;
    let JobSpec::LogIngest(payload) = &job.spec else {
        unreachable!("checked")
    };
    let result = ingest_result(&job)?;
    Ok(Json(IngestStatus {
        job_id: job.id,
        status: status_name(job.status),
        file_name: payload.file_name.clone(),
        size: payload.size,
        progress: job.progress.percent,
        stage: job.progress.stage.clone(),
        lines_read: result.lines_read,
        lines_stored: result.lines_stored,
        lines_rejected: result.lines_rejected,
        rejected: result.rejected,
        levels: result.levels,
        error: job.error.clone(),
        created_at: clock::format(job.created_at),
        completed_at: job.completed_at.map(clock::format),
    })
    .into_response())
}

/// An ingest job's counts: its result once it has one, zeros before.
pub fn ingest_result(job: &Job) -> Result<IngestResult, ApiError> {
    Ok(match job.typed_result()? {
        Some(JobResult::LogIngest(r)) => r,
        _ => IngestResult::default(),
    })
}

/// The answer of `GET /api/v1/jobs/{job_id}` (Event Horizon's shape). The counts and lists come
/// from the ingest's result as it wrote them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IngestStatus {
    pub job_id: JobId,
    /// `queued`, `processing`, `completed` or `failed`.
    #[schema(value_type = String, pattern = "^(queued|processing|completed|failed)$")]
    pub status: &'static str,
    pub file_name: String,
    pub size: u64,
    /// Percent done.
    pub progress: u8,
    pub stage: String,
    pub lines_read: u64,
    pub lines_stored: u64,
    pub lines_rejected: u64,
    /// The first rejected lines, with why.
    pub rejected: Vec<Rejection>,
    /// Stored entries by level.
    pub levels: BTreeMap<String, u64>,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// The query of `GET /api/v1/jobs/{job_id}/entries`, as [`EntriesQuery::parse`] reads it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Only entries of this level.
    pub level: Option<Level>,
    /// Entries per page.
    #[param(minimum = 1, maximum = 1000, default = 100, required = false)]
    pub limit: usize,
    /// Opaque cursor from the previous page.
    pub next: Option<String>,
}

impl EntriesQuery {
    pub fn parse(query: &str) -> Result<EntriesQuery, ApiError> {
        let mut q = EntriesQuery {
            level: None,
            limit: 100,
            next: None,
        };
        for (k, v) in query_pairs(query) {
            match k.as_str() {
                "level" if !v.is_empty() => {
                    q.level = Some(Level::parse(&v).ok_or_else(|| ApiError::invalid(format!("unknown level {v:?}")))?)
                }
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=1000).contains(l))
                        .ok_or_else(|| ApiError::invalid("limit must be between 1 and 1000"))?
                }
                "next" if !v.is_empty() => q.next = Some(v),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The answer of `GET /api/v1/jobs/{job_id}/entries`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EntriesAnswer {
    pub job_id: JobId,
    /// In line order.
    pub entries: Vec<LogEntry>,
    pub next: Option<String>,
    /// The whole file's counts by level.
    pub counts_by_level: BTreeMap<String, u64>,
}

/// `GET /api/v1/jobs/{job_id}/entries?level=&limit=&next=`: stored entries in line order, with
/// the file's counts by level.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/entries", summary = "Stored log entries in line order, with counts by level", tag = "files", params(("job_id" = Uuid, Path, description = "The ingest job's id"), EntriesQuery),
    responses(
        (status = 200, description = "A page of entries", body = EntriesAnswer),
        (status = 400, description = "Bad level or cursor", body = ErrorBody),
        (status = 404, description = "No such ingest job", body = ErrorBody)))]
pub async fn entries(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let job = ingest_job(&app, &caller, &id).await?;
    let q = EntriesQuery::parse(query.as_deref().unwrap_or_default())?;
    let page = app
        .files
        .entries
        .list(job.id, q.level, q.limit, q.next.as_deref())
        .await?;
    let levels = ingest_result(&job)?.levels;
    Ok(Json(EntriesAnswer {
        job_id: job.id,
        entries: page.entries,
        next: page.next,
        counts_by_level: levels,
    })
    .into_response())
}

/// How many keys `GET /uploads` reads from S3 at most (one ListObjectsV2 page): the answer is
/// bounded whatever the owner has stored.
pub const UPLOADS_SCAN_MAX: i32 = 200;

/// The query of `GET /uploads`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadsQuery {
    /// Objects in the answer, newest first.
    #[param(minimum = 1, maximum = 50, default = 20, required = false)]
    pub limit: usize,
}

impl UploadsQuery {
    pub fn parse(query: &str) -> Result<UploadsQuery, ApiError> {
        let mut q = UploadsQuery { limit: 20 };
        for (k, v) in query_pairs(query) {
            if k == "limit" {
                q.limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=50).contains(l))
                    .ok_or_else(|| ApiError::invalid("limit must be between 1 and 50"))?;
            }
        }
        Ok(q)
    }
}

/// One of the caller's objects in the uploads bucket.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UploadedObject {
    /// Under `uploads/<owner>/`.
    pub key: String,
    /// `s3://<bucket>/<key>`: what an archive job's `source` takes.
    pub source: String,
    pub size: u64,
    #[schema(format = DateTime)]
    pub last_modified: Option<String>,
}

/// The answer of `GET /uploads`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UploadsAnswer {
    pub bucket: String,
    /// `uploads/<owner>/`: the caller's own files, the only ones an archive job may read.
    pub prefix: String,
    /// Newest first.
    pub objects: Vec<UploadedObject>,
    /// More keys than were read (at most 200): the newest of those are not all here.
    pub truncated: bool,
}

/// `GET /uploads?limit=`: the caller's own files in the uploads bucket, newest first. One
/// ListObjectsV2 page of at most 200 keys under `uploads/<owner>/` is read; the console offers
/// them as archive sources (an archive job reads the owner's own files only).
#[utoipa::path(get, path = "/uploads", summary = "The caller's own files in the uploads bucket (archive sources), newest first", tag = "files", params(UploadsQuery),
    responses(
        (status = 200, description = "The caller's newest files", body = UploadsAnswer),
        (status = 400, description = "Bad limit", body = ErrorBody)))]
pub async fn uploads(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = UploadsQuery::parse(query.as_deref().unwrap_or(""))?;
    let prefix = caller.owner.upload_prefix();
    let page = app
        .files
        .s3
        .list_objects_v2()
        .bucket(&app.files.bucket)
        .prefix(&prefix)
        .max_keys(UPLOADS_SCAN_MAX)
        .send()
        .await
        .map_err(|e| ApiError(shared::Error::aws("ListObjectsV2", e)))?;
    let mut objects: Vec<(i64, UploadedObject)> = page
        .contents()
        .iter()
        .filter_map(|o| {
            let key = o.key()?.to_owned();
            let modified = o.last_modified();
            Some((
                modified.map_or(0, |t| t.to_millis().unwrap_or(0)),
                UploadedObject {
                    source: format!("s3://{}/{key}", app.files.bucket),
                    key,
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: modified.and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
                },
            ))
        })
        .collect();
    objects.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.key.cmp(&a.1.key)));
    Ok(Json(UploadsAnswer {
        bucket: app.files.bucket.clone(),
        prefix,
        objects: objects.into_iter().take(q.limit).map(|(_, o)| o).collect(),
        truncated: page.is_truncated().unwrap_or(false),
    })
    .into_response())
}
