//! The GraphQL schema: queries and mutations over the same service calls as the REST routes,
//! with the caller (put into each request's data by the handler) deciding what is visible.
//!
//! Every resolver body returns `Result<_, ApiError>` and goes through [`gql`] once, so every
//! error carries `extensions.code` (an error without one is answered as `INTERNAL`, see
//! `super::classify`, never as the client's fault).

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Json, Object, SimpleObject};
use serde_json::{Map, Value};
use shared::auth::Caller;
use shared::clock;
use shared::job::{self as domain, JobId};
use shared::limits::{RESPONSE_ERROR, clip};
use shared::logs::LogEntry;
use shared::store::ListFilter;

use crate::app::AppState;
use crate::error::ApiError;

/// Jobs per page of `jobs` (as `GET /jobs`: default 50, at most 200).
pub const JOBS_PAGE: i32 = 50;
pub const MAX_JOBS_PAGE: i32 = 200;
/// Entries per page of `entries` (as `GET /api/v1/jobs/{id}/entries`: 100, at most 1,000).
pub const ENTRIES_PAGE: i32 = 100;
pub const MAX_ENTRIES_PAGE: i32 = 1_000;

type GqlResult<T> = async_graphql::Result<T>;

/// A service error as a GraphQL error with `extensions.code` (and `field` for bad input): the
/// same message as the REST answer would carry. Our own faults are `INTERNAL` and say nothing
/// of their internals (they are logged).
pub fn gql(e: ApiError) -> async_graphql::Error {
    use shared::Error as E;
    let (code, message) = match &e.0 {
        E::Invalid(m) => ("BAD_USER_INPUT", clip(m, RESPONSE_ERROR)),
        E::NotFound(m) => ("NOT_FOUND", clip(m, RESPONSE_ERROR)),
        E::Conflict(m) => ("CONFLICT", clip(m, RESPONSE_ERROR)),
        E::Forbidden(m) => ("FORBIDDEN", clip(m, RESPONSE_ERROR)),
        E::Unauthorized(m) => ("UNAUTHENTICATED", clip(m, RESPONSE_ERROR)),
        E::Limited { message, .. } => ("LIMITED", message.clone()),
        E::Contention(_) => ("INTERNAL", e.0.to_string()),
        E::Aws { .. } | E::Corrupt(_) | E::Internal(_) => {
            tracing::error!(error = %e.0, "graphql resolver failed");
            (
                "INTERNAL",
                "the service could not complete the request; try again later".to_string(),
            )
        }
    };
    let field = match &e.0 {
        E::Invalid(m) => field_of(m),
        _ => None,
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(field) = field {
            ext.set("field", field);
        }
        match &e.0 {
            E::Limited { limit, retry_after, .. } => {
                ext.set("limit", *limit);
                ext.set("retryAfter", *retry_after);
            }
            // Worth repeating as it is: the same request may well succeed (REST's 503).
            E::Aws { .. } | E::Contention(_) => ext.set("retryable", true),
            _ => {}
        }
    })
}

/// The field a message names (`payload.visits[0].store_id: ...` -> `payload.visits[0].store_id`),
/// as every 400 of the API starts with it.
pub fn field_of(message: &str) -> Option<String> {
    let (field, _) = message.split_once(':')?;
    let ok = !field.is_empty()
        && field.len() <= 200
        && field.starts_with(|c: char| c.is_ascii_alphabetic())
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c) || c == '`');
    ok.then(|| field.trim_matches('`').to_string())
}

/// Invalid input naming `field`, as a GraphQL error.
fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError(shared::error::invalid(field, why))
}

fn who<'a>(ctx: &Context<'a>) -> GqlResult<(&'a AppState, &'a Caller)> {
    let missing = || {
        gql(ApiError(shared::Error::Internal(
            "graphql request without its caller".into(),
        )))
    };
    Ok((
        ctx.data::<AppState>().map_err(|_| missing())?,
        ctx.data::<Caller>().map_err(|_| missing())?,
    ))
}

fn job_id(raw: &ID) -> Result<JobId, ApiError> {
    raw.parse::<JobId>().map_err(|e| invalid("id", e))
}

/// `first` within `1..=max` (`default` when absent), or a 400 naming it.
fn page_size(first: Option<i32>, default: i32, max: i32) -> Result<usize, ApiError> {
    match first.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n as usize),
        _ => Err(invalid("first", format!("must be between 1 and {max}"))),
    }
}

/// A cursor error of the stores names REST's `next`; GraphQL's argument is `after`.
fn as_after(e: ApiError) -> ApiError {
    match e.0 {
        shared::Error::Invalid(m) if m.starts_with("next:") => {
            ApiError(shared::Error::Invalid(format!("after:{}", &m["next:".len()..])))
        }
        other => ApiError(other),
    }
}

/// Where a job is in its life (REST's `status`, upper case).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "shared::job::JobStatus")]
pub enum JobStatus {
    Pending,
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

/// What a job does (REST's `kind`, upper case).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "shared::job::JobKind")]
pub enum JobKind {
    Image,
    LogIngest,
    Archive,
    Email,
    Notification,
    Report,
}

/// A log entry's severity.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "shared::logs::Level")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// A job (see its `impl` for the fields).
pub struct Job(pub domain::Job);

/// How far a running job is.
#[derive(SimpleObject)]
pub struct Progress {
    pub percent: i32,
    pub stage: String,
}

/// One line of a job's history.
#[derive(SimpleObject)]
pub struct TimelineEntry {
    pub at: String,
    pub status: JobStatus,
    pub attempt: i32,
    pub message: String,
}

fn time(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.map(clock::format)
}

/// A job as `GET /jobs/{id}` answers it. Times are RFC 3339 strings.
#[Object]
impl Job {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Whose job it is (the creating token's `sub`); null for jobs only admins see.
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_ref().map(|o| o.as_str())
    }
    async fn kind(&self) -> JobKind {
        self.0.kind().into()
    }
    async fn status(&self) -> JobStatus {
        self.0.status.into()
    }
    /// 1 (lowest) to 5.
    async fn priority(&self) -> i32 {
        self.0.priority.into()
    }
    /// The kind's payload, as REST answers it.
    async fn payload(&self) -> Json<Value> {
        let spec = serde_json::to_value(&self.0.spec).unwrap_or_default();
        Json(spec.get("payload").cloned().unwrap_or(Value::Null))
    }
    async fn result(&self) -> Option<Json<Value>> {
        self.0.result.clone().map(Json)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn attempts(&self) -> i64 {
        self.0.attempts.into()
    }
    async fn max_attempts(&self) -> i64 {
        self.0.max_attempts.into()
    }
    async fn progress(&self) -> Progress {
        Progress {
            percent: self.0.progress.percent.into(),
            stage: self.0.progress.stage.clone(),
        }
    }
    async fn created_at(&self) -> String {
        clock::format(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        clock::format(self.0.updated_at)
    }
    async fn started_at(&self) -> Option<String> {
        time(self.0.started_at)
    }
    async fn completed_at(&self) -> Option<String> {
        time(self.0.completed_at)
    }
    /// Not before this time.
    async fn scheduled_for(&self) -> Option<String> {
        time(self.0.scheduled_for)
    }
    /// When its message was sent while the job stayed pending.
    async fn enqueued_at(&self) -> Option<String> {
        time(self.0.enqueued_at)
    }
    /// While processing: when another delivery may take the job over.
    async fn lease_until(&self) -> Option<String> {
        time(self.0.lease_until)
    }
    /// The first and the latest transitions (see `timelineDropped`).
    async fn timeline(&self) -> Vec<TimelineEntry> {
        self.0
            .timeline
            .iter()
            .map(|e| TimelineEntry {
                at: clock::format(e.at),
                status: e.status.into(),
                attempt: e.attempt as i32,
                message: e.message.clone(),
            })
            .collect()
    }
    /// Timeline entries dropped from the middle to keep the job small.
    async fn timeline_dropped(&self) -> i64 {
        self.0.timeline_dropped.into()
    }
}

/// Which jobs `jobs` lists (as `GET /jobs?status=..&kind=..`).
#[derive(InputObject, Default)]
pub struct JobFilter {
    /// Only these statuses (any of them).
    pub status: Option<Vec<JobStatus>>,
    /// Only this kind.
    pub kind: Option<JobKind>,
}

/// Counts of the caller's jobs (an admin's: everyone's), as `GET /stats`.
#[derive(SimpleObject)]
pub struct Stats {
    pub total: i64,
    /// `{status: count}`.
    pub by_status: Json<Value>,
    /// `{kind: count}`.
    pub by_kind: Json<Value>,
    /// Of the waiting jobs, those scheduled for a later start.
    pub scheduled: i64,
    /// Jobs completed (and failed) in each of the last 60 minutes, oldest first.
    pub completed_per_minute: Vec<MinuteCount>,
}

#[derive(SimpleObject)]
pub struct MinuteCount {
    pub minute: String,
    pub completed: i64,
    /// Moves to failed in that minute.
    pub failed: i64,
}

/// A stored log line (see its `impl`).
pub struct Entry(LogEntry);

/// A stored log line of an ingest job.
#[Object]
impl Entry {
    /// 1-based line number in the file.
    async fn line(&self) -> i64 {
        self.0.line as i64
    }
    async fn timestamp(&self) -> String {
        clock::format(self.0.timestamp)
    }
    async fn level(&self) -> Level {
        self.0.level.into()
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    async fn service(&self) -> Option<&str> {
        self.0.service.as_deref()
    }
    async fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.as_deref()
    }
    /// The line's other fields.
    async fn attributes(&self) -> Json<&Map<String, Value>> {
        Json(&self.0.attributes)
    }
}

/// Where a page ends (`entries`, `images`): pass `endCursor` as `after` for the next one.
#[derive(SimpleObject)]
pub struct PageEnd {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A page of an ingest job's entries, as `GET /api/v1/jobs/{id}/entries`.
#[derive(SimpleObject)]
pub struct EntryPage {
    pub job_id: ID,
    /// In line order.
    pub entries: Vec<Entry>,
    /// The whole file's counts by level.
    pub counts_by_level: Json<Value>,
    pub page_info: PageEnd,
}

/// One measured image.
#[derive(SimpleObject)]
pub struct Image {
    pub store_id: String,
    pub url: String,
    pub width: i64,
    pub height: i64,
    pub perimeter: i64,
    /// Body bytes read to find the size.
    pub bytes_read: i64,
}

/// An image (or a store) that failed.
#[derive(SimpleObject)]
pub struct ImageError {
    pub store_id: String,
    pub url: Option<String>,
    pub error: String,
}

/// A page of an image job's per-image results (whole parts of 25 images), as
/// `GET /jobs/{id}/images`.
#[derive(SimpleObject)]
pub struct ImagePage {
    pub job_id: ID,
    pub status: JobStatus,
    pub images_total: i64,
    pub parts_total: i64,
    /// Parts of the latest run that have reported.
    pub parts_done: i64,
    pub images: Vec<Image>,
    pub errors: Vec<ImageError>,
    pub page_info: PageEnd,
}

/// A job to create, as the body of `POST /jobs`.
#[derive(InputObject)]
pub struct NewJobInput {
    /// `archive`, `image`, `email`, `notification`, `report` (REST's `kind`).
    pub kind: String,
    /// The kind's payload (errors name `payload.<field>`).
    pub payload: Option<Json<Value>>,
    /// 1 (lowest) to 5; 3 by default.
    pub priority: Option<i32>,
    /// Not before this time (RFC 3339).
    pub scheduled_for: Option<String>,
    /// An image payload put through `POST /jobs/uploads` (instead of `payload`).
    pub upload_id: Option<String>,
}

impl NewJobInput {
    /// The `POST /jobs` body this input stands for, so that it is checked by the same code
    /// (and an error names the same field). Keys in a fixed order: the idempotency fingerprint
    /// of the same input is the same.
    fn body(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("kind".into(), Value::String(self.kind.clone()));
        if let Some(Json(payload)) = &self.payload {
            body.insert("payload".into(), payload.clone());
        }
        if let Some(priority) = self.priority {
            body.insert("priority".into(), priority.into());
        }
        if let Some(at) = &self.scheduled_for {
            body.insert("scheduled_for".into(), Value::String(at.clone()));
        }
        if let Some(id) = &self.upload_id {
            body.insert("upload_id".into(), Value::String(id.clone()));
        }
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }
}

/// The answer of `createJob`.
#[derive(SimpleObject)]
pub struct CreatedJob {
    pub job: Job,
    /// False when `idempotencyKey` found the job an earlier request created.
    pub created: bool,
}

pub struct Query;

#[Object]
impl Query {
    /// One job (another owner's is NOT_FOUND, exactly like a missing one).
    async fn job(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Job>> {
        let (app, caller) = who(ctx)?;
        let run = async { Ok::<_, ApiError>(Some(Job(app.jobs.get(caller, job_id(&id)?).await?))) };
        run.await.map_err(gql)
    }

    /// The caller's jobs (an admin's: everyone's), newest first: the same cursor pages as
    /// `GET /jobs` (`first` is its `limit`, `after` its `next`).
    #[graphql(complexity = "first.unwrap_or(JOBS_PAGE).clamp(1, MAX_JOBS_PAGE) as usize * child_complexity")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<JobFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Option<Connection<String, Job>>> {
        let (app, caller) = who(ctx)?;
        let run = async {
            let limit = page_size(first, JOBS_PAGE, MAX_JOBS_PAGE)?;
            let filter = filter.unwrap_or_default();
            let mut statuses: Vec<domain::JobStatus> =
                filter.status.unwrap_or_default().into_iter().map(Into::into).collect();
            statuses.dedup();
            let list = ListFilter {
                statuses,
                kind: filter.kind.map(Into::into),
                ..ListFilter::default()
            };
            let page = app
                .jobs
                .list(caller, list, limit, after.as_deref().filter(|a| !a.is_empty()))
                .await
                .map_err(|e| as_after(e.into()))?;
            let (fitting, next) = crate::jobs::fit_page(&page)?;
            let mut connection = Connection::new(after.is_some(), next.is_some());
            let served = fitting.len();
            for job in page.jobs.into_iter().take(served) {
                let cursor = shared::store::table::cursor_after(&job);
                connection.edges.push(Edge::new(cursor, Job(job)));
            }
            // The page's end is the listing's own `next` (REST's), whatever the last edge's is.
            if let (Some(next), Some(last)) = (next, connection.edges.last_mut()) {
                last.cursor = next;
            }
            Ok::<_, ApiError>(Some(connection))
        };
        run.await.map_err(gql)
    }

    /// Counts by status and kind and completions per minute, as `GET /stats`.
    async fn stats(&self, ctx: &Context<'_>) -> GqlResult<Option<Stats>> {
        let (app, caller) = who(ctx)?;
        let stats = app.jobs.stats(caller, clock::now()).await.map_err(|e| gql(e.into()))?;
        let json = |m: std::collections::BTreeMap<String, i64>| Json(serde_json::to_value(m).unwrap_or_default());
        Ok(Some(Stats {
            total: stats.total,
            by_status: json(stats.by_status),
            by_kind: json(stats.by_kind),
            scheduled: stats.scheduled,
            completed_per_minute: stats
                .completed_per_minute
                .into_iter()
                .map(|m| MinuteCount {
                    minute: m.minute,
                    completed: m.completed,
                    failed: m.failed,
                })
                .collect(),
        }))
    }

    /// An ingest job's stored entries in line order, as `GET /api/v1/jobs/{id}/entries`.
    #[graphql(
        complexity = "first.unwrap_or(ENTRIES_PAGE).clamp(1, MAX_ENTRIES_PAGE) as usize / 10 * child_complexity + child_complexity"
    )]
    async fn entries(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        level: Option<Level>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Option<EntryPage>> {
        let (app, caller) = who(ctx)?;
        let run = async {
            let limit = page_size(first, ENTRIES_PAGE, MAX_ENTRIES_PAGE)?;
            let job = crate::files::ingest_job(app, caller, &job_id)
                .await
                .map_err(|e| match e.0 {
                    shared::Error::Invalid(m) => invalid("jobId", m),
                    other => ApiError(other),
                })?;
            let page = app
                .files
                .entries
                .list(
                    job.id,
                    level.map(Into::into),
                    limit,
                    after.as_deref().filter(|a| !a.is_empty()),
                )
                .await
                .map_err(|e| as_after(e.into()))?;
            let levels = crate::files::ingest_result(&job)?.levels;
            Ok::<_, ApiError>(Some(EntryPage {
                job_id: ID(job.id.to_string()),
                entries: page.entries.into_iter().map(Entry).collect(),
                counts_by_level: Json(
                    serde_json::to_value(levels).map_err(|e| ApiError(shared::Error::Internal(e.to_string())))?,
                ),
                page_info: PageEnd {
                    has_next_page: page.next.is_some(),
                    end_cursor: page.next,
                },
            }))
        };
        run.await.map_err(gql)
    }

    /// An image job's per-image results, in pages of whole parts, as `GET /jobs/{id}/images`
    /// (`first` images, rounded up to parts of 25: 1,000 by default, at most 5,000).
    #[graphql(complexity = "(first.unwrap_or(1_000).clamp(1, 5_000) as usize).div_ceil(25) * child_complexity")]
    async fn images(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Option<ImagePage>> {
        let (app, caller) = who(ctx)?;
        let run = async {
            let limit = page_size(
                first,
                crate::retail::IMAGES_PAGE as i32,
                crate::retail::MAX_IMAGES_PAGE as i32,
            )?;
            let after = match after.as_deref().filter(|a| !a.is_empty()) {
                None => None,
                Some(a) => Some(a.parse::<u32>().map_err(|_| {
                    invalid(
                        "after",
                        "not a cursor of this listing (send back the endCursor of the last page)",
                    )
                })?),
            };
            let id = job_id.parse::<JobId>().map_err(|e| invalid("jobId", e))?;
            let crate::retail::ImagesPage { job, page, done } =
                crate::retail::images_page(app, caller, id, limit, after).await?;
            let domain::JobSpec::Image(payload) = &job.spec else {
                return Err(ApiError(shared::Error::Internal(
                    "images_page answered a job that is not an image job".into(),
                )));
            };
            let mut images = Vec::new();
            let mut errors = Vec::new();
            for part in page.parts {
                images.extend(part.images.into_iter().map(|i| Image {
                    store_id: i.store_id,
                    url: i.url,
                    width: i.width.into(),
                    height: i.height.into(),
                    perimeter: i.perimeter as i64,
                    bytes_read: i.bytes_read as i64,
                }));
                errors.extend(part.errors.into_iter().map(|e| ImageError {
                    store_id: e.store_id,
                    url: e.url,
                    error: e.error,
                }));
            }
            Ok(Some(ImagePage {
                job_id: ID(id.to_string()),
                status: job.status.into(),
                images_total: payload.image_count() as i64,
                parts_total: payload.part_count().into(),
                parts_done: done.into(),
                images,
                errors,
                page_info: PageEnd {
                    has_next_page: page.next.is_some(),
                    end_cursor: page.next.map(|n| n.to_string()),
                },
            }))
        };
        run.await.map_err(gql)
    }
}

pub struct Mutation;

/// A mutation needs `jobs/write` (a machine token with only `jobs/read` is refused before the
/// operation runs, by the handler; checked here again).
fn writer<'a>(ctx: &Context<'a>) -> GqlResult<(&'a AppState, &'a Caller)> {
    let (app, caller) = who(ctx)?;
    if crate::auth::reads_only(caller) {
        return Err(gql(ApiError(shared::Error::Forbidden(format!(
            "the token's scopes allow reading only; changes need {}",
            crate::auth::WRITE_SCOPE
        )))));
    }
    Ok((app, caller))
}

#[Object]
impl Mutation {
    /// Submits a job: the same checks and errors as `POST /jobs` (a BAD_USER_INPUT names the
    /// field, e.g. `payload.source`). `idempotencyKey` is `POST /jobs`' `Idempotency-Key`.
    async fn create_job(
        &self,
        ctx: &Context<'_>,
        input: NewJobInput,
        idempotency_key: Option<String>,
    ) -> GqlResult<Option<CreatedJob>> {
        let (app, caller) = writer(ctx)?;
        let (job, created) = crate::jobs::create_job(app, caller, &input.body(), idempotency_key.as_deref())
            .await
            .map_err(gql)?;
        Ok(Some(CreatedJob { job: Job(job), created }))
    }

    /// Cancels a pending or queued job (CONFLICT otherwise), as `DELETE /jobs/{id}`.
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Job>> {
        let (app, caller) = writer(ctx)?;
        let run = async { Ok::<_, ApiError>(Some(Job(app.jobs.cancel(caller, job_id(&id)?).await?))) };
        run.await.map_err(gql)
    }

    /// Retries a failed job (CONFLICT otherwise), as `POST /jobs/{id}/retry`.
    async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Job>> {
        let (app, caller) = writer(ctx)?;
        let run = async { Ok::<_, ApiError>(Some(Job(app.jobs.retry(caller, job_id(&id)?).await?))) };
        run.await.map_err(gql)
    }
}
