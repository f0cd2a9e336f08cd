//! Job operations that touch both storage and the queue, shared by the api and worker.
//!
//! Ordering rules that keep "no job left pending forever" true:
//! - submit: write `pending`, enqueue, then mark `queued`; if enqueueing fails the job is removed
//!   again and the caller gets the error (a 5xx), so nothing waits for a message that never comes.
//! - retry: mark `queued`, enqueue; if enqueueing fails the job is put back to `failed` with the
//!   reason (a compensating write, the only `queued -> failed` move).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::clock;
use crate::error::{Error, Result};
use crate::job::{ClaimRefused, Job, JobId, JobKind, JobSpec, JobStatus};
use crate::queue::JobQueue;
use crate::store::{Created, IdempotencyKey, JobStore, ListFilter};

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

/// Which failed jobs a bulk retry takes. At least one field must be given.
#[derive(Debug, Clone, Default, Deserialize)]
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

/// The job operations, over any store and queue.
#[derive(Clone)]
pub struct Jobs {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub lease: Duration,
}

impl Jobs {
    pub fn new(store: Arc<dyn JobStore>, queue: Arc<dyn JobQueue>, lease: Duration) -> Self {
        Jobs { store, queue, lease }
    }

    /// Validates, stores and enqueues a job. Returns the job and whether it is new (`false`
    /// when an idempotency key matched an earlier request).
    pub async fn submit(&self, new: NewJob, idempotency: Option<IdempotencyKey>) -> Result<(Job, bool)> {
        let spec = JobSpec::from_json(&new.kind, new.payload)?;
        self.submit_spec(spec, new.priority.unwrap_or(3), new.scheduled_for, idempotency)
            .await
    }

    pub async fn submit_spec(
        &self,
        spec: JobSpec,
        priority: u8,
        scheduled_for: Option<OffsetDateTime>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<(Job, bool)> {
        let now = clock::now();
        let job = Job::new(spec, priority, scheduled_for, now)?;
        let job = match self.store.create(&job, idempotency.as_ref()).await? {
            Created::Existing(existing) => return Ok((existing, false)),
            Created::New(job) => job,
        };
        if let Err(e) = self.queue.enqueue(&job, now).await {
            tracing::error!(job_id = %job.id, error = %e, "enqueue failed; removing the job");
            if let Err(undo) = self.store.discard(&job, idempotency.as_ref()).await {
                tracing::error!(job_id = %job.id, error = %undo, "could not remove the unsent job");
            }
            return Err(e);
        }
        let queued = self
            .store
            .modify(job.id, &mut |j| match j.status {
                JobStatus::Pending => j.transition(JobStatus::Queued, clock::now(), "enqueued"),
                _ => Ok(()), // a fast worker already took it
            })
            .await?;
        Ok((queued, true))
    }

    pub async fn get(&self, id: JobId) -> Result<Job> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id} not found")))
    }

    /// Cancels a pending or queued job; the worker skips cancelled jobs.
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.store.modify(id, &mut |j| j.cancel(clock::now())).await
    }

    /// A manual status change through the state machine.
    pub async fn set_status(&self, id: JobId, to: JobStatus) -> Result<Job> {
        let lease = self.lease;
        let job = self
            .store
            .modify(id, &mut |j| j.set_status_manually(to, clock::now(), lease))
            .await?;
        if to == JobStatus::Queued {
            self.enqueue_or_restore(job).await
        } else {
            Ok(job)
        }
    }

    /// Retries a failed job: back to `queued`, with a new message.
    pub async fn retry(&self, id: JobId) -> Result<Job> {
        let job = self.store.modify(id, &mut |j| j.retry(clock::now())).await?;
        self.enqueue_or_restore(job).await
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

    /// Retries every failed job the filter selects. Returns the ids retried (or that would be).
    pub async fn bulk_retry(&self, filter: RetryFilter) -> Result<Vec<JobId>> {
        let kind: Option<JobKind> = filter.kind.as_deref().map(str::parse).transpose()?;
        if kind.is_none() && filter.ids.is_none() && !filter.all {
            return Err(Error::Invalid("give a filter: kind, ids, or all: true".into()));
        }
        let mut candidates: Vec<JobId> = Vec::new();
        if let Some(ids) = &filter.ids {
            for id in ids {
                if let Some(job) = self.store.get(*id).await?
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
            match self.retry(id).await {
                Ok(_) => retried.push(id),
                Err(Error::Conflict(_)) => {} // retried or changed meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(retried)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryJobStore;
    use crate::store::{Change, Created, IdempotencyKey, ListFilter, Page, Stats};
    use async_trait::async_trait;
    use serde_json::json;

    /// A store whose writes land but whose first answer is lost: the write is retried, and the
    /// retry re-applies the change to the job as it now is (what `DynamoJobStore::modify` does
    /// after the SDK's retry meets its own write's version).
    struct LostAnswer(MemoryJobStore);

    #[async_trait]
    impl JobStore for LostAnswer {
        async fn create(&self, job: &Job, key: Option<&IdempotencyKey>) -> Result<Created> {
            self.0.create(job, key).await
        }
        async fn get(&self, id: JobId) -> Result<Option<Job>> {
            self.0.get(id).await
        }
        async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job> {
            self.0.modify(id, change).await?; // landed; the answer is lost
            self.0.modify(id, change).await
        }
        async fn discard(&self, job: &Job, key: Option<&IdempotencyKey>) -> Result<()> {
            self.0.discard(job, key).await
        }
        async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
            self.0.list(filter, limit, cursor).await
        }
        async fn stats(&self, now: OffsetDateTime) -> Result<Stats> {
            self.0.stats(now).await
        }
        async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>> {
            self.0.oldest(status, before, limit).await
        }
    }

    #[tokio::test]
    async fn a_claim_whose_answer_was_lost_recognizes_its_own_lease() {
        let store = LostAnswer(MemoryJobStore::new());
        let spec = JobSpec::from_json("archive", json!({"asset_id": "a", "source": "s3://b/k"})).unwrap();
        let job = Job::new(spec, 3, None, clock::now()).unwrap();
        store.create(&job, None).await.unwrap();
        let claimed = claim(&store, job.id, Duration::seconds(60)).await.unwrap();
        let Claim::Claimed(job) = claimed else {
            panic!("the claim saw its own lease as another delivery's: {claimed:?}");
        };
        assert_eq!((job.status, job.attempts), (JobStatus::Processing, 1));
        // another delivery is still refused
        let other = claim(&store.0, job.id, Duration::seconds(60)).await.unwrap();
        assert!(matches!(other, Claim::Refused(ClaimRefused::Busy { .. })), "{other:?}");
    }
}
