//! In-memory [`JobStore`], [`PartStore`] and [`JobQueue`]: the same rules as the DynamoDB stores
//! (conditional writes on `version`, idempotency keys, listings newest first, each part recorded
//! once per run), for tests that run in-process in milliseconds without emulators. Behind the
//! `testing` feature.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::{Change, Created, IdempotencyKey, JobStore, ListFilter, MinuteCount, Page, PartStore, Recorded, Stats};
use crate::auth::Scope;
use crate::clock;
use crate::error::{Error, Result};
use crate::images::PartResult;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::{JobMessage, JobQueue};
use crate::quota::Charge;

/// Jobs in a map, keyed by id; idempotency keys and limit use beside them.
#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<JobId, Job>>,
    keys: Mutex<HashMap<String, (String, JobId)>>,
    /// `(owner, limit, window)` -> used.
    used: Mutex<HashMap<(String, &'static str, String), u64>>,
}

fn in_scope(scope: &Scope, job: &Job) -> bool {
    match scope {
        Scope::All => true,
        Scope::Owner(o) => job.owner.as_ref() == Some(o),
    }
}

fn sort_key(job: &Job) -> String {
    format!("{}#{}", clock::format(job.created_at), job.id)
}

impl MemoryJobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every job, in id order (for assertions).
    pub fn all(&self) -> Vec<Job> {
        self.jobs.lock().unwrap().values().cloned().collect()
    }

    /// Writes `job` as it is, bypassing the state machine: tests set up old or odd states.
    pub fn put(&self, job: Job) {
        self.jobs.lock().unwrap().insert(job.id, job);
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job, idempotency: Option<&IdempotencyKey>, charges: &[Charge]) -> Result<Created> {
        if let Some(key) = idempotency {
            let existing = self.keys.lock().unwrap().get(&key.key).cloned();
            if let Some((fingerprint, id)) = existing {
                if fingerprint != key.fingerprint {
                    return Err(Error::Conflict(format!(
                        "Idempotency-Key {:?} was already used with a different request",
                        key.key
                    )));
                }
                let job = self
                    .get(id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("job {id} not found")))?;
                return Ok(Created::Existing(job));
            }
        }
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&job.id) {
            return Err(Error::Conflict(format!("job {} already exists", job.id)));
        }
        let mut used = self.used.lock().unwrap();
        for c in charges {
            let now = match &c.window {
                None => jobs
                    .values()
                    .filter(|j| j.owner.as_ref() == Some(&c.owner))
                    .filter(|j| matches!(j.status, JobStatus::Pending | JobStatus::Queued | JobStatus::Processing))
                    .count() as u64,
                Some(w) => used
                    .get(&(c.owner.to_string(), c.limit.name(), w.clone()))
                    .copied()
                    .unwrap_or(0),
            };
            let fits = match c.window {
                None => now < c.max,
                Some(_) => now + c.amount <= c.max,
            };
            if !fits {
                return Err(c.exceeded());
            }
        }
        for c in charges {
            if let Some(w) = &c.window {
                *used
                    .entry((c.owner.to_string(), c.limit.name(), w.clone()))
                    .or_default() += c.amount;
            }
        }
        jobs.insert(job.id, job.clone());
        if let Some(key) = idempotency {
            self.keys
                .lock()
                .unwrap()
                .insert(key.key.clone(), (key.fingerprint.clone(), job.id));
        }
        Ok(Created::New(job.clone()))
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        Ok(self.jobs.lock().unwrap().get(&id).cloned())
    }

    async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job> {
        let before = self
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id} not found")))?;
        let Some(after) = super::apply(&before, change)? else {
            return Ok(before);
        };
        let mut jobs = self.jobs.lock().unwrap();
        match jobs.get(&id) {
            Some(current) if current.version == before.version => {
                jobs.insert(id, after.clone());
                Ok(after)
            }
            _ => Err(Error::Contention(format!("job {id}"))),
        }
    }

    async fn discard(&self, job: &Job, idempotency: Option<&IdempotencyKey>) -> Result<()> {
        let mut jobs = self.jobs.lock().unwrap();
        match jobs.get(&job.id) {
            Some(current) if current.version == job.version => {
                jobs.remove(&job.id);
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "job {} changed before it could be discarded",
                    job.id
                )));
            }
        }
        if let Some(key) = idempotency {
            self.keys.lock().unwrap().remove(&key.key);
        }
        Ok(())
    }

    async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
        let limit = limit.clamp(1, 500);
        let after = cursor.map(super::table::decode_cursor).transpose()?;
        let mut jobs: Vec<Job> = self
            .all()
            .into_iter()
            .filter(|j| filter.statuses.is_empty() || filter.statuses.contains(&j.status))
            .filter(|j| filter.kind.is_none_or(|k| j.kind() == k))
            .filter(|j| in_scope(&filter.scope, j))
            .filter(|j| after.as_deref().is_none_or(|c| sort_key(j).as_str() < c))
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(sort_key(j)));
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next = if more {
            jobs.last().map(|j| super::table::encode_cursor(&sort_key(j)))
        } else {
            None
        };
        Ok(Page { jobs, next })
    }

    async fn stats(&self, scope: &Scope, now: OffsetDateTime) -> Result<Stats> {
        let jobs: Vec<Job> = self.all().into_iter().filter(|j| in_scope(scope, j)).collect();
        let mut by_status = BTreeMap::new();
        let mut by_kind = BTreeMap::new();
        for j in &jobs {
            *by_status.entry(j.status.to_string()).or_insert(0) += 1;
            *by_kind.entry(j.kind().to_string()).or_insert(0) += 1;
        }
        let completed_per_minute = (0..60)
            .rev()
            .map(|ago| {
                let minute = clock::minute_key(now - Duration::minutes(ago));
                let completed = jobs
                    .iter()
                    .filter(|j| j.status == JobStatus::Completed)
                    .filter(|j| j.completed_at.map(clock::minute_key).as_deref() == Some(minute.as_str()))
                    .count() as i64;
                MinuteCount { minute, completed }
            })
            .collect();
        Ok(Stats {
            total: jobs.len() as i64,
            by_status,
            by_kind,
            completed_per_minute,
        })
    }

    async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>> {
        let mut jobs: Vec<Job> = self
            .all()
            .into_iter()
            .filter(|j| j.status == status && j.created_at < before)
            .collect();
        jobs.sort_by_key(sort_key);
        jobs.truncate(limit);
        Ok(jobs)
    }
}

/// Parts by job and run, each part's first result kept (like the conditional put of
/// [`super::DynamoPartStore`]); the parts recorded are the run's set of done parts.
#[derive(Default)]
pub struct MemoryPartStore {
    runs: Mutex<HashMap<(JobId, String), BTreeMap<u32, PartResult>>>,
    /// When set, every call fails with this error (a DynamoDB outage).
    pub fail_with: Mutex<Option<String>>,
    /// Calls of [`PartStore::record`] so far, duplicates included.
    pub records: std::sync::atomic::AtomicUsize,
}

impl MemoryPartStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn check(&self) -> Result<()> {
        match self.fail_with.lock().unwrap().clone() {
            Some(why) => Err(Error::Internal(why)),
            None => Ok(()),
        }
    }

    /// Runs of `job` with parts recorded (for assertions).
    pub fn runs(&self, job: JobId) -> Vec<String> {
        let mut runs: Vec<String> = self
            .runs
            .lock()
            .unwrap()
            .keys()
            .filter(|(j, _)| *j == job)
            .map(|(_, r)| r.clone())
            .collect();
        runs.sort();
        runs
    }
}

#[async_trait]
impl PartStore for MemoryPartStore {
    async fn record(&self, job: JobId, run: &str, result: &PartResult) -> Result<Recorded> {
        self.check()?;
        self.records.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut runs = self.runs.lock().unwrap();
        let parts = runs.entry((job, run.to_owned())).or_default();
        let first = !parts.contains_key(&result.part);
        if first {
            parts.insert(result.part, result.clone());
        }
        Ok(Recorded {
            first,
            done: parts.len() as u32,
        })
    }

    async fn done(&self, job: JobId, run: &str) -> Result<u32> {
        self.check()?;
        let runs = self.runs.lock().unwrap();
        Ok(runs.get(&(job, run.to_owned())).map_or(0, |p| p.len() as u32))
    }

    async fn list(&self, job: JobId, run: &str) -> Result<Vec<PartResult>> {
        self.check()?;
        let runs = self.runs.lock().unwrap();
        Ok(runs
            .get(&(job, run.to_owned()))
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default())
    }
}

/// A queue that remembers what was sent: `(message, priority, delay)`; priority 0 stands for
/// the ingest function's queue.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<(JobMessage, u8, Duration)>>,
    /// When set, every send fails with this error (an SQS outage).
    pub fail_with: Mutex<Option<String>>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The messages sent so far.
    pub fn messages(&self) -> Vec<JobMessage> {
        self.sent.lock().unwrap().iter().map(|(m, _, _)| m.clone()).collect()
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, message: &JobMessage, priority: u8, delay: Duration) -> Result<()> {
        if let Some(why) = self.fail_with.lock().unwrap().clone() {
            return Err(Error::Internal(why));
        }
        self.sent.lock().unwrap().push((message.clone(), priority, delay));
        Ok(())
    }

    /// Recorded with priority 0: the ingest function's queue.
    async fn send_ingest(&self, message: &JobMessage, delay: Duration) -> Result<()> {
        self.send(message, 0, delay).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owners_list_and_count_only_their_own() {
        super::super::contract::owners_list_and_count_only_their_own(&MemoryJobStore::new()).await;
    }

    #[tokio::test]
    async fn limits_hold_per_owner() {
        super::super::contract::limits_hold_per_owner(&MemoryJobStore::new()).await;
    }

    #[tokio::test]
    async fn parts_are_recorded_once_per_run() {
        super::super::contract::parts_are_recorded_once_per_run(&MemoryPartStore::new()).await;
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_parts_count_each_part_once() {
        super::super::contract::concurrent_deliveries_of_parts_count_each_part_once(std::sync::Arc::new(
            MemoryPartStore::new(),
        ))
        .await;
    }

    #[tokio::test]
    async fn a_failing_part_store_records_nothing() {
        let store = MemoryPartStore::new();
        *store.fail_with.lock().unwrap() = Some("DynamoDB is down".into());
        let job = JobId::new();
        let part = PartResult {
            part: 0,
            ..PartResult::default()
        };
        assert!(matches!(store.record(job, "r1", &part).await, Err(Error::Internal(_))));
        *store.fail_with.lock().unwrap() = None;
        assert_eq!(store.done(job, "r1").await.unwrap(), 0);
        assert!(store.list(job, "r1").await.unwrap().is_empty());
    }
}
