//! Storage behind small traits; DynamoDB is the real implementation ([`dynamo::DynamoJobStore`]).
//!
//! Every write of a job is conditional on the `version` it was read at, so a change computed from a
//! stale copy never lands: [`JobStore::modify`] re-reads and re-applies the change instead, and the
//! state machine in [`crate::job`] decides again whether it is still legal.

#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod dynamo;
pub mod entries;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod parts;
pub mod shards;
pub mod table;

use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

use crate::auth::Scope;
use crate::error::Result;
use crate::job::{Job, JobId, JobKind, JobStatus};
use crate::quota::Charge;

pub use dynamo::{Backfilled, DynamoJobStore, Rekeyed};
pub use parts::{DynamoPartStore, PartStore, Recorded};

/// What [`JobStore::create`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The job was written.
    New(Job),
    /// The idempotency key was used before: this is the job it created.
    Existing(Job),
}

/// A change to one job, computed from its current value; an `Err` refuses the change.
pub type Change<'a> = dyn FnMut(&mut Job) -> Result<()> + Send + 'a;

/// Applies `change` to a copy of `before`: `None` when it changes nothing (no write needed), else
/// the job to write, its version bumped. The one rule both stores follow.
pub(crate) fn apply(before: &Job, change: &mut Change<'_>) -> Result<Option<Job>> {
    let mut after = before.clone();
    change(&mut after)?;
    if after == *before {
        return Ok(None);
    }
    after.version = before.version + 1;
    Ok(Some(after))
}

/// Which jobs to list. Empty `statuses` means every status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub statuses: Vec<JobStatus>,
    pub kind: Option<JobKind>,
    /// Whose jobs: everyone's (admins) or one owner's.
    pub scope: Scope,
    /// Newest first by creation unless told otherwise.
    pub order: shards::Order,
}

/// One page of a listing, newest first. `next` is an opaque cursor for the following page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub jobs: Vec<Job>,
    pub next: Option<String>,
}

/// Counts that always equal what a full listing would count, and recent throughput.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_kind: BTreeMap<String, i64>,
    /// Of the waiting jobs (`pending` + `queued` in `by_status`), those scheduled for a later
    /// start ([`Job::is_scheduled`]): the rest are due and wait for a worker. Exact, from a
    /// counter moved in each job's own write.
    pub scheduled: i64,
    /// Jobs completed (and failed) in each of the last 60 minutes, oldest first.
    pub completed_per_minute: Vec<MinuteCount>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinuteCount {
    pub minute: String,
    pub completed: i64,
    /// Moves to `failed` in that minute (a job failed, retried and failed again counts twice).
    pub failed: i64,
}

/// Characters of a job id the console shows (its short id: the id's last 8 characters).
pub const SHORT_ID_LEN: usize = 8;
/// Search terms one job writes at most: its short id and up to 4 main keys (an image job's
/// distinct store ids beyond that are not searchable); each is one lookup item in the job's
/// creating transaction.
pub const MAX_FIND_TERMS: usize = 5;

/// A search text as a term: trimmed, lowercase, a leading `…` (the console's short id) dropped.
pub fn find_term(text: &str) -> String {
    text.trim().trim_start_matches('…').trim().to_lowercase()
}

/// What a job can be found by, besides its full id: its short id and its kind's main key (an
/// archive's asset id, an ingest's file name, an image job's store ids), as terms
/// ([`find_term`]), without duplicates. Written once, when the job is created.
pub fn find_terms(job: &Job) -> Vec<String> {
    let id = job.id.to_string();
    let mut terms = vec![id[id.len() - SHORT_ID_LEN..].to_string()];
    let keys: Vec<&str> = match &job.spec {
        crate::job::JobSpec::Archive(p) => vec![p.asset_id.as_str()],
        crate::job::JobSpec::LogIngest(p) => {
            let name = if p.file_name.is_empty() {
                p.key.rsplit('/').next().unwrap_or_default()
            } else {
                p.file_name.as_str()
            };
            vec![name]
        }
        crate::job::JobSpec::Image(p) => p.visits.iter().map(|v| v.store_id.as_str()).collect(),
        _ => Vec::new(),
    };
    for key in keys {
        let term = find_term(key);
        if terms.len() >= MAX_FIND_TERMS {
            break;
        }
        if !term.is_empty() && !terms.contains(&term) {
            terms.push(term);
        }
    }
    terms
}

/// Where jobs live.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a new job (and counts it). With an idempotency key already used, writes nothing
    /// and returns the job that key created; a key reused for a different request is a conflict.
    /// `charges` are added to the owner's limits in the same write; if one does not fit, nothing
    /// is written and the error is `Limited` (see [`crate::quota`]).
    async fn create(&self, job: &Job, idempotency: Option<&IdempotencyKey>, charges: &[Charge]) -> Result<Created>;

    /// Reads one job (strongly consistent).
    async fn get(&self, id: JobId) -> Result<Option<Job>>;

    /// Applies `change` to the current job and writes it if nobody wrote in between; otherwise
    /// re-reads and tries again. Returns the job as written. `NotFound` if there is no such job.
    async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job>;

    /// [`JobStore::modify`] starting from `before`, a job this caller has just read or written:
    /// no read first when nobody wrote since (then as `modify`). The submit's `enqueued_at` uses it.
    /// (No default: a wrapping store must pass it on, or it would read again.)
    async fn modify_known(&self, before: &Job, change: &mut Change<'_>) -> Result<Job>;

    /// Undoes a `create` whose message could not be enqueued (job, idempotency key and counts).
    async fn discard(&self, job: &Job, idempotency: Option<&IdempotencyKey>) -> Result<()>;

    /// Lists jobs newest first, from GSI queries (never a table scan).
    async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page>;

    /// Ids of the jobs one of whose [`find_terms`] is `term`, newest first, at most `limit`:
    /// one query of the lookup items the creating transaction wrote (never a scan).
    async fn find(&self, term: &str, limit: usize) -> Result<Vec<JobId>>;

    /// Counts by status and kind, and completions per minute for the hour before `now`, of
    /// everyone's jobs or one owner's; exact, from counters (never a scan).
    async fn stats(&self, scope: &Scope, now: OffsetDateTime) -> Result<Stats>;

    /// Jobs in `status` created before `before`, oldest first, at most `limit`, from the status
    /// index (never a scan): what the sweeper looks at.
    async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>>;

    /// Parked jobs ([`Job::is_parked`]) due before `until`, soonest first (by start time, then
    /// id), after `after` in that order when given (the last job of the previous page), at most
    /// `limit`, from the wake index (never a scan): what the sweeper sends.
    async fn due_to_wake(
        &self,
        after: Option<(OffsetDateTime, JobId)>,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Job>>;
}

/// A client's `Idempotency-Key` with a fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}
