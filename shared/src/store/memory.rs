//! In-memory stand-ins for tests that run in-process in milliseconds without emulators, behind
//! the `testing` feature: [`MemoryJobStore`] and [`MemoryPartStore`] (the same rules as the
//! DynamoDB stores: conditional writes on `version`, idempotency keys, listings newest first, each
//! part recorded once per run), [`MemoryQueue`], [`MemoryEntryStore`] and [`MemoryObjects`]. The
//! last two can be told to fail as the AWS calls would ([`Fault`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use async_trait::async_trait;
use aws_sdk_s3::types::StorageClass;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncRead, ReadBuf};

use super::entries::{EntryPage, EntryStore, parse_cursor};
use super::{Change, Created, IdempotencyKey, JobStore, ListFilter, MinuteCount, Page, PartStore, Recorded, Stats};
use crate::auth::Scope;
use crate::clock;
use crate::error::{Error, Result};
use crate::images::PartResult;
use crate::job::{Job, JobId, JobStatus};
use crate::logs::{Level, LogEntry};
use crate::mail::{Mail, Mailer};
use crate::notify::{Notification, Publisher};
use crate::objects::{ObjectError, ObjectInfo, Objects, Opened};
use crate::queue::{JobMessage, JobQueue};
use crate::quota::Charge;

/// A failure a stand-in can be told to produce, as the AWS call would fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttled: another try may well succeed ([`Error::is_transient`]).
    Throttled,
    /// Access denied: fails the same way every time.
    Denied,
}

impl Fault {
    /// The error the call `op` fails with.
    pub fn error(self, op: &'static str) -> Error {
        let code = match self {
            Fault::Throttled => "ThrottlingException",
            Fault::Denied => "AccessDenied",
        };
        Error::Aws {
            op,
            code: code.into(),
            message: format!("{code} (injected by a test)"),
            source: Box::new(std::io::Error::other(code)),
        }
    }
}

fn check(fault: &Mutex<Option<Fault>>, op: &'static str) -> Result<()> {
    match *fault.lock().unwrap() {
        Some(f) => Err(f.error(op)),
        None => Ok(()),
    }
}

/// Jobs in a map, keyed by id; idempotency keys and limit use beside them.
#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<JobId, Job>>,
    keys: Mutex<HashMap<String, (String, JobId)>>,
    /// `(owner, limit, window)` -> used.
    used: Mutex<HashMap<(String, &'static str, String), u64>>,
    /// Shards per status of the simulated status indexes; 0 means the default (8).
    status_shards: u32,
}

/// The partitions of a listing in the simulated indexes (a status and kind in one shard, or of one
/// owner), each read as DynamoDB's query reads it: newest first, below a `created_key`, `n` at a time.
struct MemoryReader {
    parts: Vec<Vec<Job>>,
    order: super::shards::Order,
}

#[async_trait]
impl super::shards::PartitionReader for MemoryReader {
    /// The `created_key` of the last job read (DynamoDB: `LastEvaluatedKey`).
    type Start = String;
    type Item = Job;

    async fn read(
        &self,
        partition: usize,
        before: Option<&str>,
        start: Option<String>,
        n: usize,
    ) -> Result<(Vec<Job>, Option<String>)> {
        let o = self.order;
        let below = |j: &Job| {
            let key = o.key(j);
            before.is_none_or(|b| o.before(b, &key)) && start.as_deref().is_none_or(|s| o.before(s, &key))
        };
        let rest: Vec<&Job> = self.parts[partition].iter().filter(|j| below(j)).collect();
        let page: Vec<Job> = rest.iter().take(n).map(|j| (*j).clone()).collect();
        let next = (rest.len() > n).then(|| o.key(page.last().unwrap()));
        Ok((page, next))
    }
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

    /// The same store with `n` shards per status in its simulated status indexes.
    pub fn with_status_shards(mut self, n: u32) -> Self {
        self.status_shards = n.clamp(1, super::shards::MAX_STATUS_SHARDS);
        self
    }

    fn shards(&self) -> u32 {
        match self.status_shards {
            0 => super::shards::DEFAULT_STATUS_SHARDS,
            n => n,
        }
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

    async fn modify_known(&self, before: &Job, change: &mut Change<'_>) -> Result<Job> {
        // Nothing to save in memory: the read is free.
        self.modify(before.id, change).await
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

    /// The same partitions as [`super::DynamoJobStore`] reads (statuses x shards; one per status
    /// of an owner's listing), merged the same way.
    async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
        let statuses = if filter.statuses.is_empty() {
            JobStatus::ALL.to_vec()
        } else {
            filter.statuses.clone()
        };
        // As DynamoDB: the owner indexes are not sharded; the updated/priority indexes are the
        // sharded status ones (kind and owner as filters).
        let order = filter.order;
        let shards = match (&filter.scope, order.by) {
            (Scope::Owner(_), super::shards::SortBy::Created) => 1,
            _ => self.shards(),
        };
        let mut jobs: Vec<Job> = self
            .all()
            .into_iter()
            .filter(|j| filter.kind.is_none_or(|k| j.kind() == k))
            .filter(|j| in_scope(&filter.scope, j))
            .collect();
        jobs.sort_by(|a, b| {
            let (ka, kb) = (order.key(a), order.key(b));
            if order.ascending { ka.cmp(&kb) } else { kb.cmp(&ka) }
        });
        let mut parts = Vec::new();
        for status in &statuses {
            for shard in 0..shards {
                parts.push(
                    jobs.iter()
                        .filter(|j| j.status == *status && super::shards::shard_of(j.id, shards) == shard)
                        .cloned()
                        .collect(),
                );
            }
        }
        let count = parts.len();
        super::shards::merge_in(&MemoryReader { parts, order }, order, count, shards, &[], limit, cursor).await
    }

    /// The lookups DynamoDB keeps, computed from the jobs: [`super::find_terms`], newest first.
    async fn find(&self, term: &str, limit: usize) -> Result<Vec<JobId>> {
        let mut found: Vec<Job> = self
            .all()
            .into_iter()
            .filter(|j| super::find_terms(j).iter().any(|t| t == term))
            .collect();
        found.sort_by_key(|j| std::cmp::Reverse(sort_key(j)));
        Ok(found.into_iter().take(limit).map(|j| j.id).collect())
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
                // Every move to `failed` in the minute, from the timelines (a retried job's
                // earlier failures too, as the counters keep them).
                let failed = jobs
                    .iter()
                    .map(|j| {
                        j.timeline
                            .windows(2)
                            .filter(|w| w[1].status == JobStatus::Failed && w[0].status != JobStatus::Failed)
                            .filter(|w| clock::minute_key(w[1].at) == minute)
                            .count() as i64
                    })
                    .sum();
                MinuteCount {
                    minute,
                    completed,
                    failed,
                }
            })
            .collect();
        Ok(Stats {
            total: jobs.len() as i64,
            by_status,
            by_kind,
            scheduled: jobs.iter().filter(|j| j.is_scheduled()).count() as i64,
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

    async fn due_to_wake(
        &self,
        after: Option<(OffsetDateTime, JobId)>,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let mut jobs: Vec<Job> = self
            .all()
            .into_iter()
            .filter(|j| j.is_parked() && j.scheduled_for.is_some_and(|at| at < until))
            .filter(|j| after.is_none_or(|a| (j.scheduled_for, j.id) > (Some(a.0), a.1)))
            .collect();
        jobs.sort_by_key(|j| (j.scheduled_for, j.id));
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
    /// Every body sent to the ingest function's queue, in order, with its delay: job messages (as
    /// JSON, also in `sent`) and the ingest's checkpoints.
    pub ingest: Mutex<Vec<(String, Duration)>>,
    /// Every body sent (job messages as JSON, checkpoints), with the `AWSTraceHeader` SQS would
    /// carry with it: the trace of the work that sent it ([`crate::trace::current`]).
    pub traces: Mutex<Vec<(String, Option<String>)>>,
    /// The trace header of each of `sent`, in the same order.
    pub sent_traces: Mutex<Vec<Option<String>>>,
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

    /// Takes the bodies sent to the ingest function's queue so far (as its event source would).
    pub fn take_ingest(&self) -> Vec<(String, Duration)> {
        std::mem::take(&mut *self.ingest.lock().unwrap())
    }

    /// The trace header the message for `job` was sent with, for each one sent, in order.
    pub fn traces_of(&self, job: JobId) -> Vec<Option<String>> {
        let id = job.to_string();
        self.traces
            .lock()
            .unwrap()
            .iter()
            .filter(|(body, _)| body.contains(&id))
            .map(|(_, trace)| trace.clone())
            .collect()
    }

    fn record_trace(&self, body: String) {
        let trace = crate::trace::current().map(|t| t.as_str().to_string());
        self.traces.lock().unwrap().push((body, trace));
    }

    fn check(&self) -> Result<()> {
        match self.fail_with.lock().unwrap().clone() {
            Some(why) => Err(Error::Internal(why)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, message: &JobMessage, priority: u8, delay: Duration) -> Result<()> {
        self.check()?;
        self.sent.lock().unwrap().push((message.clone(), priority, delay));
        self.sent_traces
            .lock()
            .unwrap()
            .push(crate::trace::current().map(|t| t.as_str().to_string()));
        self.record_trace(serde_json::to_string(message).map_err(|e| Error::Internal(e.to_string()))?);
        Ok(())
    }

    /// Recorded with priority 0 (the ingest function's queue), and in `ingest`.
    async fn send_ingest(&self, message: &JobMessage, delay: Duration) -> Result<()> {
        self.send(message, 0, delay).await?;
        let body = serde_json::to_string(message).map_err(|e| Error::Internal(e.to_string()))?;
        self.ingest.lock().unwrap().push((body, delay));
        Ok(())
    }

    async fn send_ingest_checkpoint(&self, body: &str, delay: Duration) -> Result<()> {
        self.check()?;
        self.ingest.lock().unwrap().push((body.to_string(), delay));
        self.record_trace(body.to_string());
        Ok(())
    }
}

/// Entries in a map keyed by job and line (a line stored again replaces its entry, as in
/// DynamoDB), with a count of every entry written.
#[derive(Default)]
pub struct MemoryEntryStore {
    entries: Mutex<BTreeMap<(JobId, u64), LogEntry>>,
    written: Mutex<u64>,
    /// When set, every call fails so.
    pub fail_with: Mutex<Option<Fault>>,
}

impl MemoryEntryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The line numbers stored for `job`, in order.
    pub fn lines(&self, job: JobId) -> Vec<u64> {
        let entries = self.entries.lock().unwrap();
        entries
            .range((job, 0)..=(job, u64::MAX))
            .map(|(&(_, line), _)| line)
            .collect()
    }

    /// Entries written in all, those that replaced an earlier one included.
    pub fn written(&self) -> u64 {
        *self.written.lock().unwrap()
    }

    pub fn fail(&self, fault: Option<Fault>) {
        *self.fail_with.lock().unwrap() = fault;
    }
}

#[async_trait]
impl EntryStore for MemoryEntryStore {
    async fn write_batch(&self, job: JobId, entries: Vec<LogEntry>) -> Result<()> {
        assert!(
            entries.len() <= super::entries::BATCH,
            "BatchWriteItem takes at most 25 items"
        );
        check(&self.fail_with, "BatchWriteItem")?;
        *self.written.lock().unwrap() += entries.len() as u64;
        let mut stored = self.entries.lock().unwrap();
        for entry in entries {
            stored.insert((job, entry.line), entry);
        }
        Ok(())
    }

    async fn list(&self, job: JobId, level: Option<Level>, limit: usize, cursor: Option<&str>) -> Result<EntryPage> {
        let after = parse_cursor(cursor)?;
        check(&self.fail_with, "Query")?;
        let limit = limit.clamp(1, 1000);
        let stored = self.entries.lock().unwrap();
        let start = after.map_or(0, |line| line.saturating_add(1));
        let mut matching = stored
            .range((job, start)..=(job, u64::MAX))
            .map(|(_, e)| e)
            .filter(|e| level.is_none_or(|l| e.level == l));
        let entries: Vec<LogEntry> = matching.by_ref().take(limit).cloned().collect();
        let next = match (matching.next(), entries.last()) {
            (Some(_), Some(last)) => Some(last.line.to_string()),
            _ => None,
        };
        Ok(EntryPage { entries, next })
    }
}

/// One object of [`MemoryObjects`].
#[derive(Clone)]
struct Stored {
    bytes: Vec<u8>,
    class: Option<StorageClass>,
    etag: String,
}

/// S3 objects in a map keyed by bucket and key.
#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<(String, String), Stored>>,
    /// When set, every call fails so.
    pub fail_with: Mutex<Option<Fault>>,
    /// When set, reads open but their body breaks off (a connection reset) after this many bytes.
    pub break_after: Mutex<Option<usize>>,
}

impl MemoryObjects {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object (storage class STANDARD, which S3 does not name).
    pub fn put(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let stored = Stored {
            bytes,
            class: None,
            etag,
        };
        self.objects.lock().unwrap().insert((bucket.into(), key.into()), stored);
    }

    /// The bytes of an object, if there is one.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.stored(bucket, key).map(|s| s.bytes)
    }

    pub fn fail(&self, fault: Option<Fault>) {
        *self.fail_with.lock().unwrap() = fault;
    }

    fn stored(&self, bucket: &str, key: &str) -> Option<Stored> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    fn find(&self, bucket: &str, key: &str) -> std::result::Result<Stored, ObjectError> {
        self.stored(bucket, key).ok_or_else(|| ObjectError::NotFound {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

#[async_trait]
impl Objects for MemoryObjects {
    async fn read(&self, bucket: &str, key: &str, offset: u64) -> std::result::Result<Opened, ObjectError> {
        check(&self.fail_with, "GetObject")?;
        let stored = self.find(bucket, key)?;
        let size = stored.bytes.len() as u64;
        if offset > 0 && offset >= size {
            return Err(ObjectError::RangeNotSatisfiable {
                bucket: bucket.into(),
                key: key.into(),
                offset,
            });
        }
        let rest = stored.bytes[offset as usize..].to_vec();
        let until = self.break_after.lock().unwrap().unwrap_or(usize::MAX);
        Ok(Opened {
            body: Box::pin(BreaksOff {
                bytes: rest,
                at: 0,
                until,
            }),
            size,
        })
    }

    async fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
        class: StorageClass,
    ) -> std::result::Result<(), ObjectError> {
        check(&self.fail_with, "CopyObject")?;
        let mut copy = self.find(bucket, from)?;
        copy.class = (class != StorageClass::Standard).then_some(class);
        self.objects.lock().unwrap().insert((bucket.into(), to.into()), copy);
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> std::result::Result<ObjectInfo, ObjectError> {
        check(&self.fail_with, "HeadObject")?;
        let stored = self.find(bucket, key)?;
        Ok(ObjectInfo {
            size: stored.bytes.len() as u64,
            storage_class: stored.class,
            etag: Some(stored.etag),
        })
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), ObjectError> {
        check(&self.fail_with, "PutObject")?;
        self.put(bucket, key, bytes);
        Ok(())
    }

    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<(String, OffsetDateTime), ObjectError> {
        let expires_at = clock::now() + Duration::try_from(ttl).unwrap_or(Duration::ZERO);
        Ok((
            format!("memory://{bucket}/{key}?expires={}", expires_at.unix_timestamp()),
            expires_at,
        ))
    }
}

/// A body that reads `bytes`, but fails with a connection reset once `until` bytes are read.
struct BreaksOff {
    bytes: Vec<u8>,
    at: usize,
    until: usize,
}

impl AsyncRead for BreaksOff {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at >= this.until && this.at < this.bytes.len() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer (MemoryObjects)",
            )));
        }
        let end = this.until.min(this.bytes.len());
        let n = end.saturating_sub(this.at).min(buf.remaining());
        buf.put_slice(&this.bytes[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A mail the [`MemoryMailer`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub message_id: String,
    pub job_id: JobId,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Mail kept in a list instead of sent; told to fail with [`MemoryMailer::fail`].
pub struct MemoryMailer {
    from: String,
    sent: Mutex<Vec<SentMail>>,
    fail_with: Mutex<Option<Fault>>,
}

impl MemoryMailer {
    pub fn new(from: &str) -> Self {
        MemoryMailer {
            from: from.to_string(),
            sent: Mutex::default(),
            fail_with: Mutex::default(),
        }
    }

    pub fn sent(&self) -> Vec<SentMail> {
        self.sent.lock().unwrap().clone()
    }

    pub fn fail(&self, fault: Option<Fault>) {
        *self.fail_with.lock().unwrap() = fault;
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    fn from(&self) -> &str {
        &self.from
    }

    async fn send(&self, mail: &Mail<'_>) -> Result<String> {
        check(&self.fail_with, "SendEmail")?;
        let mut sent = self.sent.lock().unwrap();
        let message_id = format!("memory-mail-{}", sent.len() + 1);
        sent.push(SentMail {
            message_id: message_id.clone(),
            job_id: mail.job_id,
            from: self.from.clone(),
            to: mail.to.to_string(),
            subject: mail.subject.to_string(),
            body: mail.body.to_string(),
        });
        Ok(message_id)
    }
}

/// Notifications kept in a list instead of published; told to fail with [`MemoryPublisher::fail`].
pub struct MemoryPublisher {
    topic: String,
    published: Mutex<Vec<(String, Notification)>>,
    fail_with: Mutex<Option<Fault>>,
}

impl MemoryPublisher {
    pub fn new(topic: &str) -> Self {
        MemoryPublisher {
            topic: topic.to_string(),
            published: Mutex::default(),
            fail_with: Mutex::default(),
        }
    }

    /// `(message id, notification)` in publishing order.
    pub fn published(&self) -> Vec<(String, Notification)> {
        self.published.lock().unwrap().clone()
    }

    pub fn fail(&self, fault: Option<Fault>) {
        *self.fail_with.lock().unwrap() = fault;
    }
}

#[async_trait]
impl Publisher for MemoryPublisher {
    fn topic(&self) -> &str {
        &self.topic
    }

    async fn publish(&self, n: &Notification) -> Result<String> {
        check(&self.fail_with, "Publish")?;
        let mut published = self.published.lock().unwrap();
        let message_id = format!("memory-notification-{}", published.len() + 1);
        published.push((message_id.clone(), n.clone()));
        Ok(message_id)
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
    async fn modify_known_writes_from_a_known_job_and_never_loses_a_newer_write() {
        super::super::contract::modify_known_writes_from_a_known_job_and_never_loses_a_newer_write(
            &MemoryJobStore::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn scheduled_and_failures_are_counted() {
        super::super::contract::scheduled_and_failures_are_counted(&MemoryJobStore::new()).await;
    }

    #[tokio::test]
    async fn search_and_sort() {
        super::super::contract::search_and_sort(&MemoryJobStore::new().with_status_shards(3)).await;
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

    fn entry(line: u64, level: &str) -> LogEntry {
        let text = format!(r#"{{"timestamp": 1795428000, "level": "{level}", "message": "m{line}"}}"#);
        crate::logs::parse_line(line, &text).unwrap()
    }

    #[tokio::test]
    async fn entries_page_in_line_order_and_a_line_stored_again_replaces_its_entry() {
        let store = MemoryEntryStore::new();
        let (job, other) = (JobId::new(), JobId::new());
        store
            .write_batch(job, vec![entry(3, "info"), entry(1, "error"), entry(2, "info")])
            .await
            .unwrap();
        store.write_batch(job, vec![entry(2, "info")]).await.unwrap();
        store.write_batch(other, vec![entry(1, "info")]).await.unwrap();
        assert_eq!((store.lines(job), store.written()), (vec![1, 2, 3], 5));
        let page = store.list(job, None, 2, None).await.unwrap();
        assert_eq!(page.entries.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2]);
        let rest = store.list(job, None, 2, page.next.as_deref()).await.unwrap();
        assert_eq!((rest.entries.len(), rest.entries[0].line, rest.next), (1, 3, None));
        let errors = store.list(job, Some(Level::Error), 10, None).await.unwrap();
        assert_eq!(errors.entries.iter().map(|e| e.line).collect::<Vec<_>>(), [1]);
        assert!(matches!(
            store.list(job, None, 2, Some("x")).await,
            Err(Error::Invalid(_))
        ));
        store.fail(Some(Fault::Throttled));
        let err = store.write_batch(job, vec![entry(4, "info")]).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.summary(), "BatchWriteItem failed (ThrottlingException)");
    }

    async fn read_all(
        objects: &MemoryObjects,
        key: &str,
        offset: u64,
    ) -> std::result::Result<(Vec<u8>, u64), ObjectError> {
        use tokio::io::AsyncReadExt;
        let mut opened = objects.read("b", key, offset).await?;
        let mut bytes = Vec::new();
        opened
            .body
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ObjectError::Other(Error::Internal(e.to_string())))?;
        Ok((bytes, opened.size))
    }

    #[tokio::test]
    async fn objects_read_from_an_offset_and_say_when_nothing_is_left() {
        let objects = MemoryObjects::new();
        objects.put("b", "k", b"0123456789".to_vec());
        assert_eq!(read_all(&objects, "k", 0).await.unwrap(), (b"0123456789".to_vec(), 10));
        assert_eq!(read_all(&objects, "k", 4).await.unwrap(), (b"456789".to_vec(), 10));
        assert!(matches!(
            read_all(&objects, "k", 10).await,
            Err(ObjectError::RangeNotSatisfiable { offset: 10, .. })
        ));
        assert!(matches!(
            read_all(&objects, "gone", 0).await,
            Err(ObjectError::NotFound { .. })
        ));
        *objects.break_after.lock().unwrap() = Some(3);
        let broken = read_all(&objects, "k", 0).await.unwrap_err();
        assert!(broken.to_string().contains("connection reset"), "{broken}");
        objects.fail(Some(Fault::Denied));
        let denied = objects.read("b", "k", 0).await.err().unwrap();
        assert!(!denied.is_transient());
        assert_eq!(denied.summary(), "GetObject failed (AccessDenied)");
    }
}
