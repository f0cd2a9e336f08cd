//! Job operations that touch both storage and the queue, shared by the api and worker.
//!
//! Ordering rules that keep "no job left pending forever" true:
//! - submit: write `pending` with `enqueued_at` already noted, then enqueue (the job stays
//!   `pending` until a worker takes it); if enqueueing fails the job is removed again and the
//!   caller gets the error (a 5xx), so nothing waits for a message that never comes. If the
//!   function dies between the write and the send, the job waits as a sent one and the sweeper
//!   sends it again after the `queued` bound. A job due more than 15 minutes ahead is parked
//!   instead: no message until the sweeper sends it.
//! - retry: mark `queued`, enqueue; if enqueueing fails the job is put back to `failed` with the
//!   reason (a compensating write, the only `queued -> failed` move).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::auth::{Caller, Owner};
use crate::clock;
use crate::error::{Error, Result};
use crate::job::{
    ClaimRefused, INLINE_PAYLOAD_BYTES, Job, JobId, JobKind, JobResult, JobSpec, JobStatus, LogIngestPayload,
};
use crate::payloads::Payloads;
use crate::queue::JobQueue;
use crate::quota::Quotas;
use crate::store::{Change, Created, IdempotencyKey, JobStore, ListFilter, Page, Stats};

/// A job as a client submits it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// Also accepted as `type`, the name seed 001's clients use.
    #[serde(alias = "type")]
    pub kind: String,
    pub payload: Value,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default, with = "crate::clock::serde_ts::option")]
    pub scheduled_for: Option<OffsetDateTime>,
}

/// `NewJob`'s schema: one of [`JobSpec`]'s `{kind, payload}` shapes (so every kind, and only its
/// payload, is documented from the types themselves), plus `priority` and `scheduled_for`.
/// Written by hand because `kind` and `payload` are parsed apart here (as a string and free JSON,
/// to name the field a client got wrong) and checked against `JobSpec` afterwards.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for NewJob {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let options = ObjectBuilder::new()
            .property(
                "priority",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(5))
                    .default(Some(DEFAULT_PRIORITY.into())),
            )
            .property(
                "scheduled_for",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("Not before this time (RFC 3339)")),
            );
        AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(
                <JobSpec as utoipa::ToSchema>::name(),
            ))
            .item(options)
            .description(Some(
                "A job to submit: `kind` (also accepted as `type`) and its payload",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for NewJob {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((JobSpec::name().into(), JobSpec::schema()));
        JobSpec::schemas(schemas);
    }
}

/// Which failed jobs a bulk retry takes. At least one field must be given.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryFilter {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub ids: Option<Vec<JobId>>,
    /// `true` to retry every failed job.
    #[serde(default)]
    pub all: bool,
    /// Count what would be retried without doing it.
    #[serde(default)]
    pub dry_run: bool,
}

/// The job operations, over any store and queue: the one home of the lifecycle's side effects
/// (create, enqueue, every status change through the state machine) and of who may do what.
#[derive(Clone)]
pub struct Jobs {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub lease: Duration,
    /// Limits per owner charged when a client creates a job.
    pub quotas: Quotas,
    /// The bucket clients' files live in; archive sources must be there, under the caller's
    /// `uploads/<owner>/` (admins: anywhere under `uploads/`). `None`: not checked (tests).
    pub uploads_bucket: Option<String>,
    /// Where image payloads over [`crate::job::INLINE_PAYLOAD_BYTES`] go (the claim check).
    /// `None`: payloads stay inline up to [`crate::job::MAX_INLINE_WITHOUT_STORE`] (tests, tools).
    pub payloads: Option<Arc<dyn Payloads>>,
    /// The sweeper's bounds ([`crate::sweep::Bounds::from_env`]): which jobs are past them.
    pub bounds: crate::sweep::Bounds,
}

impl Jobs {
    pub fn new(store: Arc<dyn JobStore>, queue: Arc<dyn JobQueue>, lease: Duration) -> Self {
        Jobs {
            store,
            queue,
            lease,
            quotas: Quotas::NONE,
            uploads_bucket: None,
            payloads: None,
            bounds: crate::sweep::Bounds::default(),
        }
    }

    pub fn with_bounds(mut self, bounds: crate::sweep::Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    pub fn with_payloads(mut self, payloads: Arc<dyn Payloads>) -> Self {
        self.payloads = Some(payloads);
        self
    }

    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    pub fn with_uploads_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.uploads_bucket = Some(bucket.into());
        self
    }

    /// Validates, stores and enqueues a client's job, owned by the caller. Returns the job and
    /// whether it is new (`false` when an idempotency key matched an earlier request).
    pub async fn submit(
        &self,
        caller: &Caller,
        new: NewJob,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<(Job, bool)> {
        let spec = JobSpec::from_json(&new.kind, new.payload)?;
        let priority = new.priority.unwrap_or(DEFAULT_PRIORITY);
        let job = Job::new(spec, priority, new.scheduled_for, clock::now())?.owned_by(caller.owner.clone());
        self.check_source(caller, &job.spec)?;
        self.store_checked(job, idempotency).await
    }

    /// Stores and enqueues a job of any kind for `owner`, charging the owner's limits.
    pub async fn submit_spec(
        &self,
        owner: Option<Owner>,
        spec: JobSpec,
        priority: u8,
        scheduled_for: Option<OffsetDateTime>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<(Job, bool)> {
        let mut job = Job::new(spec, priority, scheduled_for, clock::now())?;
        job.owner = owner;
        self.store_checked(job, idempotency).await
    }

    /// [`Jobs::store_and_enqueue`] behind the claim check: a big image payload is written to S3
    /// first and the job item refers to it; the object is removed again (best-effort) when no
    /// new job was stored (an error, or an idempotency key that found an earlier job).
    async fn store_checked(&self, mut job: Job, idempotency: Option<IdempotencyKey>) -> Result<(Job, bool)> {
        // A request over a whole limit is refused before anything is written.
        self.quotas.charges(&job, job.created_at)?;
        let stored = self.claim_check(&mut job).await?;
        let created = self.store_and_enqueue(job, idempotency).await;
        if let Some(key) = stored
            && !matches!(created, Ok((_, true)))
            && let Some(payloads) = &self.payloads
            && let Err(e) = payloads.delete_object(&key).await
        {
            tracing::warn!(%key, error = %e, "could not remove the payload of a job not created");
        }
        created
    }

    /// Moves a big image payload's visits to S3; returns the key written, if any.
    async fn claim_check(&self, job: &mut Job) -> Result<Option<String>> {
        let JobSpec::Image(payload) = &mut job.spec else {
            return Ok(None);
        };
        let bytes = payload.json_bytes();
        if bytes <= INLINE_PAYLOAD_BYTES {
            return Ok(None);
        }
        let Some(payloads) = &self.payloads else {
            let max = crate::job::MAX_INLINE_WITHOUT_STORE;
            return if bytes <= max {
                Ok(None)
            } else {
                Err(Error::Invalid(format!(
                    "payload: is {bytes} bytes; this deployment takes at most {max}, split it"
                )))
            };
        };
        let stored = payloads.put(job.owner.as_ref(), job.id, &payload.visits).await?;
        let key = stored.key.clone();
        tracing::info!(job_id = %job.id, %key, bytes = stored.bytes, images = stored.images, "payload stored in S3");
        payload.visits = Vec::new();
        payload.stored = Some(stored);
        Ok(Some(key))
    }

    async fn store_and_enqueue(&self, mut job: Job, idempotency: Option<IdempotencyKey>) -> Result<(Job, bool)> {
        let now = job.created_at;
        let charges = self.quotas.charges(&job, now)?;
        if !job.is_parked() {
            // Noted in the creating write, before the send: one job write fewer per job (it was a
            // second write after the send, with every index of the job). A failed send removes
            // the job below; a crash in between leaves a job that looks sent, which the sweeper
            // sends again after the `queued` bound.
            job.mark_enqueued(now);
        }
        let job = match self.store.create(&job, idempotency.as_ref(), &charges).await? {
            Created::Existing(existing) => return Ok((existing, false)),
            Created::New(job) => job,
        };
        if job.is_parked() {
            // Due more than 15 minutes from now: no message yet (it would only come back every
            // 15 minutes); the sweeper sends it from the wake index when it is due within 15.
            tracing::info!(job_id = %job.id, kind = %job.kind(), priority = job.priority, scheduled_for = ?job.scheduled_for, "job created; parked until due within 15 minutes");
            return Ok((job, true));
        }
        if let Err(e) = self.queue.enqueue(&job, now).await {
            tracing::error!(job_id = %job.id, error = %e, "enqueue failed; removing the job");
            if let Err(undo) = self.store.discard(&job, idempotency.as_ref()).await {
                tracing::error!(job_id = %job.id, error = %undo, "could not remove the unsent job");
            }
            return Err(e);
        }
        // In the request's span: the line that ties the job id to the API request's trace id.
        tracing::info!(job_id = %job.id, kind = %job.kind(), priority = job.priority, "job created and enqueued");
        Ok((job, true))
    }

    /// Notes that a `pending` job's message is sent: it stays `pending` (no transition) until a
    /// worker takes it; nothing if a fast worker already did.
    /// `job` is as this caller wrote it: no read first unless somebody wrote since.
    pub async fn mark_enqueued(&self, job: &Job) -> Result<Job> {
        self.store
            .modify_known(job, &mut |j| {
                j.mark_enqueued(clock::now());
                Ok(())
            })
            .await
    }

    /// Stores a job whose work an S3 event starts, not a message: a client's upload (`charged`
    /// against its owner's limits) or a file dropped into the bucket. An idempotency key makes
    /// a repeated event find the job it created.
    pub async fn create_pending(&self, job: Job, idempotency: Option<&IdempotencyKey>, charged: bool) -> Result<Job> {
        let charges = if charged {
            self.quotas.charges(&job, clock::now())?
        } else {
            Vec::new()
        };
        match self.store.create(&job, idempotency, &charges).await? {
            Created::New(j) | Created::Existing(j) => Ok(j),
        }
    }

    /// The `log_ingest` job of an object that arrived in the uploads bucket: the one the api made
    /// for an upload (its id is in the key, `uploads/<owner>/<job_id>/<file>`), or, for a file
    /// dropped straight into the bucket, one created here once per object version (`version`:
    /// the S3 event's sequencer or ETag), so that a twice-delivered event finds the same job. A
    /// drop belongs to the owner of its `uploads/<owner>/` prefix (the bucket policy and the
    /// owners' IAM decide who may write there); one outside any owner's prefix is admins'. It is
    /// not charged: the upload limit is the api's, for what passes through it.
    pub async fn ingest_job_of_object(&self, bucket: &str, key: &str, size: u64, version: &str) -> Result<Job> {
        if let Some(id) = LogIngestPayload::uploaded_job(key)
            && let Some(job) = self.store.get(id).await?
            && matches!(&job.spec, JobSpec::LogIngest(p) if p.key == key && p.bucket == bucket)
        {
            return Ok(job);
        }
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let spec = JobSpec::LogIngest(LogIngestPayload {
            bucket: bucket.into(),
            key: key.into(),
            file_name: crate::limits::clip(file_name, crate::limits::FILE_NAME),
            size,
        });
        let idempotency = IdempotencyKey {
            key: format!(
                "s3:{}",
                hex::encode(Sha256::digest(format!("{bucket}/{key}#{version}")))
            ),
            fingerprint: "s3-event".into(),
        };
        let mut job = Job::new(spec, DEFAULT_PRIORITY, None, clock::now())?;
        job.owner = Owner::of_upload_key(key);
        self.create_pending(job, Some(&idempotency), false).await
    }

    /// Removes a pending job whose upload could not be stored (nothing will ever start it).
    pub async fn discard_pending(&self, job: &Job) -> Result<()> {
        self.store.discard(job, None).await
    }

    /// `pending -> queued` (its message is sent, or its file is on its way); nothing if a fast
    /// worker already took it.
    pub async fn mark_queued(&self, id: JobId, message: &str) -> Result<Job> {
        self.store
            .modify(id, &mut |j| match j.status {
                JobStatus::Pending => j.transition(JobStatus::Queued, clock::now(), message),
                _ => Ok(()),
            })
            .await
    }

    /// One job, if the caller may see it; another owner's job is `NotFound` like a missing one.
    pub async fn get(&self, caller: &Caller, id: JobId) -> Result<Job> {
        match self.store.get(id).await? {
            Some(job) if caller.sees(&job) => Ok(job),
            _ => Err(not_found(id)),
        }
    }

    /// The caller's jobs (an admin's: everyone's), newest first.
    pub async fn list(
        &self,
        caller: &Caller,
        mut filter: ListFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page> {
        filter.scope = caller.scope();
        self.store.list(&filter, limit, cursor).await
    }

    /// The caller's jobs from the `offset`-th on (newest first), for clients that page by
    /// offset (seed 001): skips through pages of at most 500 jobs, then
    /// serves one page of `limit`. `offset` is at most [`MAX_OFFSET`]; later pages follow `next`.
    pub async fn list_from(
        &self,
        caller: &Caller,
        mut filter: ListFilter,
        limit: usize,
        offset: usize,
    ) -> Result<Page> {
        if offset > MAX_OFFSET {
            return Err(crate::error::invalid(
                "offset",
                format!("at most {MAX_OFFSET}; follow next (the cursor each page returns) for later pages"),
            ));
        }
        filter.scope = caller.scope();
        let mut cursor: Option<String> = None;
        let mut skip = offset;
        while skip > 0 {
            let step = skip.min(SKIP_PAGE);
            let page = self.store.list(&filter, step, cursor.as_deref()).await?;
            match page.next {
                Some(next) if page.jobs.len() == step => {
                    skip -= step;
                    cursor = Some(next);
                }
                // fewer jobs than the offset: nothing left to show
                _ => {
                    return Ok(Page {
                        jobs: Vec::new(),
                        next: None,
                    });
                }
            }
        }
        self.store.list(&filter, limit, cursor.as_deref()).await
    }

    /// Counts of the caller's jobs (an admin's: everyone's).
    pub async fn stats(&self, caller: &Caller, now: OffsetDateTime) -> Result<Stats> {
        self.store.stats(&caller.scope(), now).await
    }

    /// Applies `change` to a job the caller may see; `NotFound` otherwise.
    async fn modify_visible(&self, caller: &Caller, id: JobId, change: &mut Change<'_>) -> Result<Job> {
        self.store
            .modify(id, &mut |j| if caller.sees(j) { change(j) } else { Err(not_found(id)) })
            .await
    }

    /// Cancels a pending or queued job; the worker skips cancelled jobs.
    pub async fn cancel(&self, caller: &Caller, id: JobId) -> Result<Job> {
        self.modify_visible(caller, id, &mut |j| j.cancel(clock::now())).await
    }

    /// An operator's status change (admins only), through the state machine: only the moves an
    /// operator needs. `queued` retries a failed job (or sends a pending one), `failed` ends a job
    /// that will not finish, `cancelled` stops one that has not started. `completed` comes only
    /// with a worker's result, `processing` only with a worker's claim.
    pub async fn set_status(&self, caller: &Caller, id: JobId, to: JobStatus) -> Result<Job> {
        caller.require_admin("setting a job's status by hand")?;
        if !JobStatus::ALL.iter().any(|from| from.operator_moves().contains(&to)) {
            return Err(Error::Invalid(format!(
                "status: an operator may set queued, failed or cancelled, not {to} (completed comes only with a worker's result)"
            )));
        }
        let who = caller.name.clone();
        let job = self
            .modify_visible(caller, id, &mut |j| j.set_status_manually(to, &who, clock::now()))
            .await?;
        if to == JobStatus::Queued {
            self.enqueue_or_restore(job).await
        } else {
            Ok(job)
        }
    }

    /// Runs a job scheduled for later now ([`Job::run_now`]): due at once, and a message without
    /// delay. Its delayed message still arrives later and finds the job done (acknowledged as a
    /// duplicate). If the send fails the job is still due now and runs when that message comes
    /// (within SQS's 15-minute delay), and the error is returned.
    pub async fn run_now(&self, caller: &Caller, id: JobId) -> Result<Job> {
        let who = caller.name.clone();
        let job = self
            .modify_visible(caller, id, &mut |j| j.run_now(&who, clock::now()))
            .await?;
        self.queue.enqueue(&job, clock::now()).await?;
        if job.status == JobStatus::Pending && job.enqueued_at.is_none() {
            return self.mark_enqueued(&job).await;
        }
        Ok(job)
    }

    /// The caller's jobs past their bound ([`crate::sweep::past_bound`]), each with why, among the
    /// jobs a sweep looks at (at most `per_status` of each waiting or running status, oldest
    /// first, from the status index); `true` when a status had more than that.
    pub async fn past_bound(&self, caller: &Caller, per_status: usize) -> Result<(Vec<(Job, String)>, bool)> {
        let now = clock::now();
        let looked = crate::sweep::candidates(self.store.as_ref(), now, &self.bounds, per_status + 1).await?;
        let mut per: std::collections::HashMap<JobStatus, usize> = Default::default();
        let mut more = false;
        let mut found = Vec::new();
        for job in looked {
            let n = per.entry(job.status).or_default();
            *n += 1;
            if *n > per_status {
                more = true;
                continue;
            }
            if !caller.sees(&job) {
                continue;
            }
            if let Some(why) = crate::sweep::past_bound(&job, now, &self.bounds) {
                found.push((job, why));
            }
        }
        Ok((found, more))
    }

    /// An operator's stop of a job that will not finish by itself in time (admins). A waiting
    /// job is cancelled (as Cancel does). A running one cannot be cancelled (the state machine:
    /// its worker may be half way through), so one past its bound is failed now, the way the
    /// sweeper fails it when no attempt is left ([`Job::fail_stuck`], reason "stopped by <who>:
    /// <why>"); its retry is the usual Retry. A running job within its bound is a conflict (its
    /// worker is alive as far as anyone can tell). Decided again inside the conditional write.
    pub async fn stop(&self, caller: &Caller, id: JobId) -> Result<Job> {
        caller.require_admin("stopping a job")?;
        let who = caller.name.clone();
        let bounds = self.bounds;
        self.modify_visible(caller, id, &mut |j| {
            let now = clock::now();
            if matches!(j.status, JobStatus::Pending | JobStatus::Queued) {
                return j.cancel(now);
            }
            match crate::sweep::past_bound(j, now, &bounds) {
                Some(why) => j.fail_stuck(&format!("stopped by {who}: {why}"), now),
                None => Err(Error::Conflict(format!(
                    "job {} is {} and within its bound; only a job past its bound (the sweeper's rule) can be stopped while it runs",
                    j.id, j.status
                ))),
            }
        })
        .await
    }

    /// Retries a failed job: back to `queued`, with a new message.
    pub async fn retry(&self, caller: &Caller, id: JobId) -> Result<Job> {
        let job = self.modify_visible(caller, id, &mut |j| j.retry(clock::now())).await?;
        self.enqueue_or_restore(job).await
    }

    /// Archive sources must be the caller's own uploads (see [`Jobs::uploads_bucket`]); a report
    /// over everyone's jobs is for admins.
    fn check_source(&self, caller: &Caller, spec: &JobSpec) -> Result<()> {
        if let JobSpec::Report(p) = spec
            && p.scope == crate::job::ReportScope::All
            && !caller.admin
        {
            return Err(Error::Forbidden(
                "payload.scope: all (every owner's jobs) is for admins; use own".into(),
            ));
        }
        let (JobSpec::Archive(p), Some(uploads)) = (spec, &self.uploads_bucket) else {
            return Ok(());
        };
        let (bucket, key) = p.source_location()?;
        let prefix = if caller.admin {
            "uploads/".to_string()
        } else {
            caller.owner.upload_prefix()
        };
        if bucket != uploads || !key.starts_with(&prefix) || key.split('/').any(|s| s == "..") {
            return Err(crate::error::invalid(
                "payload.source",
                format!("must be one of your files: s3://{uploads}/{prefix}..."),
            ));
        }
        Ok(())
    }

    async fn enqueue_or_restore(&self, job: Job) -> Result<Job> {
        match self.queue.enqueue(&job, clock::now()).await {
            Ok(()) => Ok(job),
            Err(e) => {
                let reason = format!("retry could not be enqueued: {e}");
                let undo = self
                    .store
                    .modify(job.id, &mut |j| {
                        if j.status == JobStatus::Queued {
                            j.restore_failed(reason.clone(), clock::now())
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                if let Err(undo) = undo {
                    tracing::error!(job_id = %job.id, error = %undo, "could not restore the job to failed");
                }
                Err(e)
            }
        }
    }

    /// Retries every failed job of the caller's (an admin's: anyone's) the filter selects.
    /// Returns the ids retried (or that would be).
    pub async fn bulk_retry(&self, caller: &Caller, filter: RetryFilter) -> Result<Vec<JobId>> {
        let kind: Option<JobKind> = filter.kind.as_deref().map(str::parse).transpose()?;
        if kind.is_none() && filter.ids.is_none() && !filter.all {
            return Err(Error::Invalid("give a filter: kind, ids, or all: true".into()));
        }
        check_selection(filter.ids.as_deref().unwrap_or_default())?;
        let mut candidates: Vec<JobId> = Vec::new();
        if let Some(ids) = &filter.ids {
            for id in ids {
                if let Some(job) = self.store.get(*id).await?
                    && caller.sees(&job)
                    && job.status == JobStatus::Failed
                    && kind.is_none_or(|k| job.kind() == k)
                {
                    candidates.push(job.id);
                }
            }
        } else {
            let list = ListFilter {
                statuses: vec![JobStatus::Failed],
                kind,
                scope: caller.scope(),
                ..ListFilter::default()
            };
            let mut cursor = None;
            loop {
                let page = self.store.list(&list, 200, cursor.as_deref()).await?;
                candidates.extend(page.jobs.iter().map(|j| j.id));
                match page.next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        if filter.dry_run {
            return Ok(candidates);
        }
        let mut retried = Vec::new();
        for id in candidates {
            match self.retry(caller, id).await {
                Ok(_) => retried.push(id),
                Err(Error::Conflict(_)) => {} // retried or changed meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(retried)
    }
}

/// The most ids one call about a selection (`POST /jobs/retry {ids}`, `POST /jobs/cancel`) takes.
pub const MAX_SELECTION: usize = 100;
/// The failed jobs [`Jobs::failure_groups`] reads at most (newest failures first).
pub const FAILURES_READ: usize = 1000;
/// The jobs one search answers at most.
pub const SEARCH_MAX: usize = 100;

fn check_selection(ids: &[JobId]) -> Result<()> {
    if ids.len() > MAX_SELECTION {
        return Err(crate::error::invalid(
            "ids",
            format!("at most {MAX_SELECTION} per call, not {}", ids.len()),
        ));
    }
    Ok(())
}

/// Failed jobs that failed for the same reason: [`normalize_reason`] of their error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureGroup {
    /// The error with its ids and numbers replaced (`#` for a number, `<id>` for an id).
    pub reason: String,
    /// One error of the group as it was.
    pub example: String,
    /// Failed jobs of the reason among those read.
    pub count: usize,
    /// Kinds of the group's jobs.
    pub kinds: Vec<JobKind>,
    /// The group's jobs, latest failure first (at most [`MAX_SELECTION`]: "retry these" takes them).
    pub job_ids: Vec<JobId>,
    /// When the latest of them failed.
    #[serde(with = "clock::serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_failed_at: OffsetDateTime,
}

/// [`Jobs::failure_groups`]' answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureGroups {
    /// Largest group first.
    pub groups: Vec<FailureGroup>,
    /// Failed jobs read (the latest failures, at most [`FAILURES_READ`]).
    pub read: usize,
    /// Failed jobs in all (the counters; with a kind, known only when every one was read); more
    /// than `read`: the groups count the latest only.
    pub failed: Option<i64>,
}

/// An error message with what differs from one job to the next taken out, so that failures of one
/// cause group together: runs of digits become `#`, ids (UUIDs, long hex or mixed tokens of 8+
/// characters with a digit) `<id>`. `s3://b/k3.mp4 not found (404)` -> `s3://b/k#.mp4 not found (#)`.
pub fn normalize_reason(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.is_empty() {
            return;
        }
        let has_digit = token.chars().any(|c| c.is_ascii_digit());
        let hexish = token.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if has_digit && token.len() >= 8 && (hexish || token.chars().filter(|c| c.is_ascii_digit()).count() >= 3) {
            out.push_str("<id>");
        } else {
            let mut digits = false;
            for c in token.chars() {
                if c.is_ascii_digit() {
                    if !digits {
                        out.push('#');
                    }
                    digits = true;
                } else {
                    digits = false;
                    out.push(c);
                }
            }
        }
        token.clear();
    };
    for c in error.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Jobs {
    /// The caller's jobs (an admin's: everyone's) that a search text finds, newest first, at
    /// most [`SEARCH_MAX`], within `filter`'s statuses and kind: a full id is one read; anything
    /// else a term ([`crate::store::find_term`]: a short id or a kind's main key) is one query of
    /// the lookup items. Never a scan.
    pub async fn search(&self, caller: &Caller, text: &str, filter: &ListFilter) -> Result<Vec<Job>> {
        let text = text.trim();
        if text.is_empty() || text.len() > 256 {
            return Err(crate::error::invalid("q", "must be 1-256 characters"));
        }
        let ids: Vec<JobId> = match text.parse::<JobId>() {
            Ok(id) => vec![id],
            Err(_) => self.store.find(&crate::store::find_term(text), SEARCH_MAX).await?,
        };
        let jobs = futures::future::try_join_all(ids.iter().map(|id| self.store.get(*id))).await?;
        Ok(jobs
            .into_iter()
            .flatten()
            .filter(|j| caller.sees(j))
            .filter(|j| filter.statuses.is_empty() || filter.statuses.contains(&j.status))
            .filter(|j| filter.kind.is_none_or(|k| j.kind() == k))
            .collect())
    }

    /// Cancels the selected jobs the caller may see that may still be cancelled (pending or
    /// queued), at most [`MAX_SELECTION`] per call, each through [`Jobs::cancel`]; with
    /// `dry_run`, only counts them. Returns the ids cancelled (or that would be).
    pub async fn bulk_cancel(&self, caller: &Caller, ids: &[JobId], dry_run: bool) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Err(crate::error::invalid("ids", "give at least one job id"));
        }
        check_selection(ids)?;
        let mut candidates = Vec::new();
        for id in ids {
            if let Some(job) = self.store.get(*id).await?
                && caller.sees(&job)
                && job.status.can_become(JobStatus::Cancelled)
                && !candidates.contains(&job.id)
            {
                candidates.push(job.id);
            }
        }
        if dry_run {
            return Ok(candidates);
        }
        let mut cancelled = Vec::new();
        for id in candidates {
            match self.cancel(caller, id).await {
                Ok(_) => cancelled.push(id),
                Err(Error::Conflict(_)) => {} // taken by a worker meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(cancelled)
    }

    /// The caller's latest failures (an admin's: everyone's; of `kind` when given), at most
    /// [`FAILURES_READ`] read through the failed status index by last change, grouped by
    /// [`normalize_reason`], largest group first.
    pub async fn failure_groups(&self, caller: &Caller, kind: Option<JobKind>) -> Result<FailureGroups> {
        let filter = ListFilter {
            statuses: vec![JobStatus::Failed],
            kind,
            scope: caller.scope(),
            order: crate::store::shards::Order {
                by: crate::store::shards::SortBy::Updated,
                ascending: false,
            },
        };
        let mut read = Vec::new();
        let mut cursor: Option<String> = None;
        while read.len() < FAILURES_READ {
            let page = self
                .store
                .list(&filter, (FAILURES_READ - read.len()).min(200), cursor.as_deref())
                .await?;
            read.extend(page.jobs);
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let mut groups: Vec<FailureGroup> = Vec::new();
        for job in &read {
            let example = job.error.clone().unwrap_or_else(|| "(no error recorded)".into());
            let reason = normalize_reason(&example);
            match groups.iter_mut().find(|g| g.reason == reason) {
                Some(g) => {
                    g.count += 1;
                    if !g.kinds.contains(&job.kind()) {
                        g.kinds.push(job.kind());
                    }
                    if g.job_ids.len() < MAX_SELECTION {
                        g.job_ids.push(job.id);
                    }
                }
                None => groups.push(FailureGroup {
                    reason,
                    example,
                    count: 1,
                    kinds: vec![job.kind()],
                    job_ids: vec![job.id],
                    last_failed_at: job.updated_at,
                }),
            }
        }
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_failed_at.cmp(&a.last_failed_at)));
        let failed = match kind {
            // The counters are by status and by kind, not both: with a kind, known only when
            // every failed job was read.
            Some(_) => (read.len() < FAILURES_READ).then_some(read.len() as i64),
            None => Some(
                self.store
                    .stats(&caller.scope(), clock::now())
                    .await?
                    .by_status
                    .get("failed")
                    .copied()
                    .unwrap_or(0),
            ),
        };
        Ok(FailureGroups {
            groups,
            read: read.len(),
            failed,
        })
    }
}

/// The largest `offset` a listing honours: each request reads through that many jobs, so later
/// pages follow the `next` cursor instead.
pub const MAX_OFFSET: usize = 1000;
/// Jobs read per step while skipping to an offset (the stores' page size).
const SKIP_PAGE: usize = 500;

/// Priority of a job whose client gave none (the middle of 1-5).
pub const DEFAULT_PRIORITY: u8 = 3;

fn not_found(id: JobId) -> Error {
    Error::NotFound(format!("job {id} not found"))
}

/// What [`claim`] got.
#[derive(Debug)]
pub enum Claim {
    /// The job is ours for this attempt (`job.attempts`), under a lease.
    Claimed(Job),
    /// Finished, or held by another delivery.
    Refused(ClaimRefused),
}

/// Takes a job for one attempt with a lease, through the state machine (see `Job::claim`). The
/// claim carries a token: if its write lands but the answer is lost and the store retries it, the
/// retry finds its own token and the claim succeeds (instead of seeing a "busy" job and leaving
/// it to nobody).
pub async fn claim(store: &dyn JobStore, id: JobId, lease: Duration) -> Result<Claim> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut refused = None;
    let claimed = store
        .modify(id, &mut |j| {
            if j.status == JobStatus::Processing && j.lease_owner.as_deref() == Some(token.as_str()) {
                return Ok(()); // our own claim, already written
            }
            match j.claim(clock::now(), lease) {
                Ok(()) => {
                    j.lease_owner = Some(token.clone());
                    Ok(())
                }
                Err(r) => {
                    refused = Some(r);
                    Err(Error::Conflict("claim refused".into()))
                }
            }
        })
        .await;
    match (claimed, refused) {
        (Ok(job), _) => Ok(Claim::Claimed(job)),
        (Err(_), Some(r)) => Ok(Claim::Refused(r)),
        (Err(e), None) => Err(e),
    }
}

/// How one attempt at a job ended, as the function that ran it saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// The work is done: its result.
    Completed(JobResult),
    /// It would fail the same way again: the job fails now.
    Permanent(String),
    /// Another attempt may succeed: the job goes back to `queued` while attempts remain, else
    /// fails. `redelivered` says whether anything will deliver it again (an SQS message on its
    /// last receive will not): if not, the job fails now rather than wait for the sweeper.
    Transient { error: String, redelivered: bool },
}

/// Records how attempt `attempt` ended, through the state machine (`Job::complete`,
/// `Job::fail_permanently`, `Job::fail_attempt`), and returns the job as it now is. A job that
/// has moved on meanwhile (cancelled, or claimed again after its lease ran out) is a `Conflict`.
pub async fn end_attempt(store: &dyn JobStore, id: JobId, attempt: u32, ended: &Ended) -> Result<Job> {
    store
        .modify(id, &mut |j| {
            let now = clock::now();
            match ended {
                Ended::Completed(result) => j.complete(attempt, result, now),
                Ended::Permanent(error) => j.fail_permanently(attempt, error.clone(), now),
                Ended::Transient {
                    error,
                    redelivered: false,
                } if j.attempts < j.max_attempts => {
                    j.fail_permanently(attempt, format!("{error} (no deliveries left)"), now)
                }
                Ended::Transient { error, .. } => j.fail_attempt(attempt, error.clone(), now).map(|_| ()),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;
    use crate::quota::Charge;
    use crate::store::memory::MemoryJobStore;
    use async_trait::async_trait;
    use serde_json::json;

    /// A store whose writes land but whose first answer is lost: the write is retried, and the
    /// retry re-applies the change to the job as it now is (what `DynamoJobStore::modify` does
    /// after the SDK's retry meets its own write's version).
    struct LostAnswer(MemoryJobStore);

    #[async_trait]
    impl JobStore for LostAnswer {
        async fn create(&self, job: &Job, key: Option<&IdempotencyKey>, charges: &[Charge]) -> Result<Created> {
            self.0.create(job, key, charges).await
        }
        async fn get(&self, id: JobId) -> Result<Option<Job>> {
            self.0.get(id).await
        }
        async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job> {
            self.0.modify(id, change).await?; // landed; the answer is lost
            self.0.modify(id, change).await
        }
        async fn modify_known(&self, before: &Job, change: &mut Change<'_>) -> Result<Job> {
            self.modify(before.id, change).await
        }
        async fn discard(&self, job: &Job, key: Option<&IdempotencyKey>) -> Result<()> {
            self.0.discard(job, key).await
        }
        async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
            self.0.list(filter, limit, cursor).await
        }
        async fn find(&self, term: &str, limit: usize) -> Result<Vec<JobId>> {
            self.0.find(term, limit).await
        }
        async fn stats(&self, scope: &Scope, now: OffsetDateTime) -> Result<Stats> {
            self.0.stats(scope, now).await
        }
        async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>> {
            self.0.oldest(status, before, limit).await
        }

        async fn due_to_wake(
            &self,
            after: Option<(OffsetDateTime, JobId)>,
            until: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<Job>> {
            self.0.due_to_wake(after, until, limit).await
        }
    }

    #[test]
    fn reasons_lose_their_ids_and_numbers_so_one_cause_is_one_group() {
        let a = normalize_reason(
            "s3://uploads/media/clip3.mp4 not found (404) for job 0f6c2a1e-8d5b-4c3a-9e1f-2b7d6a5c4e3f",
        );
        let b = normalize_reason(
            "s3://uploads/media/clip17.mp4 not found (404) for job 9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
        );
        assert_eq!(a, b);
        assert_eq!(a, "s#://uploads/media/clip#.mp# not found (#) for job <id>");
        assert_eq!(normalize_reason("3 of 10 images failed"), "# of # images failed");
        assert_ne!(normalize_reason("timed out"), normalize_reason("access denied"));
        assert_eq!(normalize_reason("  spaced   out  "), "spaced out");
        // Keys that differ only in their numbers group together whether or not they read as ids
        // (the browser test's asset ids are `find-<base36 time>-<i>`).
        for stamp in ["mx3aoxkm", "mx31a9k4", "mxaoxkmz"] {
            let of =
                |i: u32| normalize_reason(&format!("source object not found: s3://b/missing/find-{stamp}-{i}.mp4"));
            assert_eq!(of(0), of(1), "{stamp}");
            assert_eq!(of(1), of(2), "{stamp}");
        }
    }

    #[tokio::test]
    async fn failures_group_by_reason_latest_first_and_a_selection_is_cancelled_within_bounds() {
        let (jobs, store) = jobs();
        let admin = Caller::admin("ops");
        let mut ids = Vec::new();
        for (n, error) in [
            "fetch https://x/1.jpg: 404",
            "fetch https://x/22.jpg: 404",
            "access denied",
        ]
        .iter()
        .enumerate()
        {
            let spec =
                JobSpec::from_json("archive", json!({"asset_id": format!("a{n}"), "source": "s3://b/k"})).unwrap();
            let mut job = Job::new(spec, 3, None, clock::now()).unwrap();
            job.status = JobStatus::Failed;
            job.error = Some(error.to_string());
            job.updated_at = clock::now() + Duration::seconds(n as i64);
            ids.push(job.id);
            store.put(job);
        }
        let groups = jobs.failure_groups(&admin, None).await.unwrap();
        assert_eq!((groups.read, groups.failed), (3, Some(3)));
        assert_eq!(groups.groups.len(), 2, "{groups:?}");
        assert_eq!(groups.groups[0].count, 2);
        assert_eq!(groups.groups[0].reason, "fetch https://x/#.jpg: #");
        assert_eq!(groups.groups[0].job_ids, vec![ids[1], ids[0]], "latest failure first");
        assert_eq!(groups.groups[1].job_ids, vec![ids[2]]);

        // A selection: failed ones are not cancellable; a pending one is; over 100 is refused.
        let pending = Job::new(
            JobSpec::from_json("archive", json!({"asset_id": "p", "source": "s3://b/k"})).unwrap(),
            3,
            None,
            clock::now(),
        )
        .unwrap();
        store.put(pending.clone());
        let selection = [ids[0], pending.id, ids[1], pending.id];
        assert_eq!(
            jobs.bulk_cancel(&admin, &selection, true).await.unwrap(),
            vec![pending.id]
        );
        assert_eq!(
            store.get(pending.id).await.unwrap().unwrap().status,
            JobStatus::Pending,
            "a dry run changes nothing"
        );
        assert_eq!(
            jobs.bulk_cancel(&admin, &selection, false).await.unwrap(),
            vec![pending.id]
        );
        assert_eq!(
            store.get(pending.id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );
        let many: Vec<JobId> = (0..101).map(|_| JobId::new()).collect();
        match jobs.bulk_cancel(&admin, &many, true).await {
            Err(Error::Invalid(m)) => assert!(m.starts_with("ids:"), "{m}"),
            other => panic!("{other:?}"),
        }
        match jobs
            .bulk_retry(
                &admin,
                RetryFilter {
                    ids: Some(many),
                    ..Default::default()
                },
            )
            .await
        {
            Err(Error::Invalid(m)) => assert!(m.starts_with("ids:"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    fn jobs() -> (Jobs, Arc<MemoryJobStore>) {
        let store = Arc::new(MemoryJobStore::new());
        let queue = Arc::new(crate::store::memory::MemoryQueue::new());
        (Jobs::new(store.clone(), queue, Duration::seconds(60)), store)
    }

    #[tokio::test]
    async fn a_dropped_file_gets_one_job_per_object_version_owned_by_its_prefix() {
        let (jobs, store) = jobs();
        let first = jobs
            .ingest_job_of_object("b", "uploads/alice/app.jsonl", 10, "seq-1")
            .await
            .unwrap();
        assert_eq!(
            (first.status, first.priority, first.owner.as_ref().map(Owner::as_str)),
            (JobStatus::Pending, DEFAULT_PRIORITY, Some("alice"))
        );
        let JobSpec::LogIngest(p) = &first.spec else {
            panic!("{:?}", first.spec)
        };
        assert_eq!(
            (p.bucket.as_str(), p.key.as_str(), p.file_name.as_str(), p.size),
            ("b", "uploads/alice/app.jsonl", "app.jsonl", 10)
        );
        let again = jobs
            .ingest_job_of_object("b", "uploads/alice/app.jsonl", 10, "seq-1")
            .await
            .unwrap();
        assert_eq!(again.id, first.id, "a repeated event finds the job");
        let newer = jobs
            .ingest_job_of_object("b", "uploads/alice/app.jsonl", 12, "seq-2")
            .await
            .unwrap();
        assert_ne!(newer.id, first.id, "a new version of the file is a new job");
        let admins = jobs
            .ingest_job_of_object("b", "uploads/app.jsonl", 1, "seq-1")
            .await
            .unwrap();
        assert_eq!(admins.owner, None, "outside any owner's prefix");
        assert_eq!(store.all().len(), 3);
    }

    #[tokio::test]
    async fn an_uploads_object_finds_the_job_named_in_its_key() {
        let (jobs, store) = jobs();
        let alice = Owner::parse("alice").unwrap();
        let id = JobId::new();
        let key = LogIngestPayload::upload_key(&alice, id, "app.jsonl");
        let spec = JobSpec::LogIngest(LogIngestPayload {
            bucket: "b".into(),
            key: key.clone(),
            file_name: "app.jsonl".into(),
            size: 5,
        });
        let mut job = Job::new(spec, DEFAULT_PRIORITY, None, clock::now())
            .unwrap()
            .owned_by(alice);
        job.id = id;
        jobs.create_pending(job, None, true).await.unwrap();
        assert_eq!(jobs.ingest_job_of_object("b", &key, 5, "seq").await.unwrap().id, id);
        // The same key in another bucket is not that upload: a drop of its own.
        let other = jobs.ingest_job_of_object("elsewhere", &key, 5, "seq").await.unwrap();
        assert_ne!(other.id, id);
        assert_eq!(store.all().len(), 2);
    }

    #[tokio::test]
    async fn a_claim_whose_answer_was_lost_recognizes_its_own_lease() {
        let store = LostAnswer(MemoryJobStore::new());
        let spec = JobSpec::from_json("archive", json!({"asset_id": "a", "source": "s3://b/k"})).unwrap();
        let job = Job::new(spec, 3, None, clock::now()).unwrap();
        store.create(&job, None, &[]).await.unwrap();
        let claimed = claim(&store, job.id, Duration::seconds(60)).await.unwrap();
        let Claim::Claimed(job) = claimed else {
            panic!("the claim saw its own lease as another delivery's: {claimed:?}");
        };
        assert_eq!((job.status, job.attempts), (JobStatus::Processing, 1));
        // another delivery is still refused
        let other = claim(&store.0, job.id, Duration::seconds(60)).await.unwrap();
        assert!(matches!(other, Claim::Refused(ClaimRefused::Busy { .. })), "{other:?}");
    }
    /// The console's "past its bound" and Stop: the jobs listed are exactly those the sweeper
    /// would act on; a waiting job is cancelled, a running one past its bound fails (the
    /// sweeper's path, saying who stopped it), a running one within its bound is refused, and
    /// only admins stop jobs.
    #[tokio::test]
    async fn jobs_past_their_bound_are_listed_and_an_admin_stops_them() {
        let (jobs, store) = jobs();
        let jobs = jobs.with_bounds(crate::sweep::Bounds {
            parts_stalled: Duration::seconds(30),
            ..Default::default()
        });
        let now = clock::now();
        let spec = || {
            JobSpec::from_json(
                "image",
                json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["http://a/b.jpg"], "visit_time": "t"}]}),
            )
            .unwrap()
        };
        // a run in parts with no part back for a minute: past its bound
        let mut stalled = Job::new(spec(), 3, None, now - Duration::minutes(2)).unwrap();
        stalled.start_parts(1, now - Duration::minutes(1)).unwrap();
        store.put(stalled.clone());
        // one that started 10 s ago: within it
        let mut running = Job::new(spec(), 3, None, now - Duration::minutes(2)).unwrap();
        running.start_parts(1, now - Duration::seconds(10)).unwrap();
        store.put(running.clone());
        // created 10 minutes ago and never sent: past the pending bound
        let never_sent = Job::new(spec(), 3, None, now - Duration::minutes(10)).unwrap();
        store.put(never_sent.clone());
        // scheduled for tomorrow: waiting on purpose
        let mut scheduled = Job::new(spec(), 3, Some(now + Duration::days(1)), now - Duration::minutes(30)).unwrap();
        scheduled.mark_enqueued(now - Duration::minutes(30));
        store.put(scheduled.clone());

        let admin = Caller::admin("ops");
        let (past, more) = jobs.past_bound(&admin, 50).await.unwrap();
        let mut ids: Vec<JobId> = past.iter().map(|(j, _)| j.id).collect();
        ids.sort();
        let mut expected = vec![stalled.id, never_sent.id];
        expected.sort();
        assert_eq!((ids, more), (expected, false));
        let why = &past.iter().find(|(j, _)| j.id == stalled.id).unwrap().1;
        assert!(why.contains("made no progress"), "{why}");
        assert!(jobs.past_bound(&Caller::user("nobody"), 50).await.unwrap().0.is_empty());
        let (_, more) = jobs.past_bound(&admin, 1).await.unwrap();
        assert!(more, "two pending jobs, one looked at");

        assert!(matches!(
            jobs.stop(&Caller::user("ops"), stalled.id).await,
            Err(Error::Forbidden(_))
        ));
        match jobs.stop(&admin, running.id).await {
            Err(Error::Conflict(m)) => assert!(m.contains("within its bound"), "{m}"),
            other => panic!("{other:?}"),
        }
        let failed = jobs.stop(&admin, stalled.id).await.unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert!(
            failed
                .error
                .as_deref()
                .unwrap()
                .starts_with("stopped by ops: attempt 1 made no progress"),
            "{:?}",
            failed.error
        );
        assert!(jobs.stop(&admin, stalled.id).await.is_err(), "it ends once");
        let cancelled = jobs.stop(&admin, never_sent.id).await.unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(jobs.past_bound(&admin, 50).await.unwrap().0.is_empty());
    }
}
