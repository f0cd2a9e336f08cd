//! One S3 `ObjectCreated` record = one `.jsonl` (or `.jsonl.gz`) object to ingest.
//!
//! - The object's `log_ingest` job: an upload through the API already made one (its id is in the
//!   key, `uploads/<job_id>/<file>`); a file dropped straight into the bucket gets one here, once:
//!   its idempotency key is the object's bucket, key and sequencer, so a twice-delivered event
//!   finds the same job, and the claim refuses a second run.
//! - The object is streamed line by line (constant memory); each line is validated
//!   (`shared::logs`), valid entries stored 25 per `BatchWriteItem` (a line re-ingested overwrites
//!   its item), the first 100 rejections kept with line number and reason.
//! - Progress goes on the job at `started processing`, every 10 % of bytes read, and `completed`.
//! - A missing object, a body that is not UTF-8 or not JSONL, or a storage failure that outlasts
//!   the retries fails the job with a clear error. A bad line never fails the file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::clock;
use shared::job::{ClaimRefused, Job, JobId, JobKind, JobSpec, LogIngestPayload};
use shared::logs::{LogEntry, Rejection};
use shared::service::Claim;
use shared::store::entries::{BATCH, EntryStore};
use shared::store::{Created, IdempotencyKey, JobStore};
use time::Duration;
use tokio::io::AsyncBufReadExt;

/// Rejected lines kept with their reasons; the rest are only counted.
pub const KEPT_REJECTIONS: usize = 100;
/// `BatchWriteItem` calls in flight at once.
const WRITES_IN_FLIGHT: usize = 4;

pub struct Ingest {
    pub store: Arc<dyn JobStore>,
    pub entries: EntryStore,
    pub s3: aws_sdk_s3::Client,
    pub lease: Duration,
    /// The seed's random per-line delay (0..=this many ms); 0 = off.
    pub line_delay_ms: u64,
}

/// S3 event keys are URL-encoded with `+` for a space (AWS) or `%20` (LocalStack): decode both.
pub fn decode_key(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Ingest {
    pub async fn handle(&self, event: S3Event) -> Result<Value, lambda_runtime::Error> {
        let mut jobs = Vec::new();
        for record in event.records {
            jobs.push(self.handle_record(record).await?.to_string());
        }
        Ok(json!({ "jobs": jobs }))
    }

    async fn handle_record(&self, record: S3EventRecord) -> Result<JobId, lambda_runtime::Error> {
        let bucket = record.s3.bucket.name.clone().ok_or("S3 record without bucket name")?;
        let key = decode_key(record.s3.object.key.as_deref().ok_or("S3 record without object key")?);
        let size = record.s3.object.size.unwrap_or_default().max(0) as u64;
        let version = record
            .s3
            .object
            .sequencer
            .clone()
            .or(record.s3.object.e_tag.clone())
            .unwrap_or_default();
        let job = self.job_for(&bucket, &key, size, &version).await?;
        let id = job.id;
        let job = match shared::service::claim(self.store.as_ref(), id, self.lease).await? {
            Claim::Claimed(job) => job,
            Claim::Refused(ClaimRefused::Finished(status)) => {
                tracing::info!(job_id = %id, %status, "duplicate S3 event for a finished ingest; nothing to do");
                return Ok(id);
            }
            Claim::Refused(ClaimRefused::Busy { .. }) => {
                tracing::info!(job_id = %id, "duplicate S3 event while the ingest runs; nothing to do");
                return Ok(id);
            }
        };
        let attempt = job.attempts;
        tracing::info!(job_id = %id, %bucket, %key, "ingest started");
        match self.ingest(&job, &bucket, &key).await {
            Ok(result) => {
                self.store
                    .modify(id, &mut |j| j.complete(attempt, result.clone(), clock::now()))
                    .await?;
            }
            Err(error) => {
                tracing::warn!(job_id = %id, %error, "ingest failed");
                self.store
                    .modify(id, &mut |j| j.fail_permanently(attempt, error.clone(), clock::now()))
                    .await?;
            }
        }
        Ok(id)
    }

    /// The job of an uploaded object (id in the key), or a new one for a dropped file.
    async fn job_for(&self, bucket: &str, key: &str, size: u64, version: &str) -> shared::Result<Job> {
        let mut parts = key.splitn(3, '/');
        if let (Some("uploads"), Some(id), Some(_)) = (parts.next(), parts.next(), parts.next())
            && let Ok(id) = id.parse::<JobId>()
            && let Some(job) = self.store.get(id).await?
            && matches!(&job.spec, JobSpec::LogIngest(p) if p.key == key && p.bucket == bucket)
        {
            return Ok(job);
        }
        let file_name = key.rsplit('/').next().unwrap_or(key).to_string();
        let spec = JobSpec::LogIngest(LogIngestPayload {
            bucket: bucket.into(),
            key: key.into(),
            file_name,
            size,
        });
        let idempotency = IdempotencyKey {
            key: format!(
                "s3:{}",
                hex::encode(Sha256::digest(format!("{bucket}/{key}#{version}")))
            ),
            fingerprint: "s3-event".into(),
        };
        let job = Job::new(spec, 3, None, clock::now())?;
        debug_assert_eq!(job.kind(), JobKind::LogIngest);
        match self.store.create(&job, Some(&idempotency)).await? {
            Created::New(j) | Created::Existing(j) => Ok(j),
        }
    }

    async fn progress(&self, job: &Job, percent: u8, stage: String) -> Result<(), String> {
        let attempt = job.attempts;
        self.store
            .modify(job.id, &mut |j| {
                j.set_progress(attempt, percent, stage.clone(), clock::now())
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("recording progress: {e}"))
    }

    /// Streams, validates and stores the object; returns the job's result.
    pub async fn ingest(&self, job: &Job, bucket: &str, key: &str) -> Result<Value, String> {
        let object = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                format!("object s3://{bucket}/{key} not found")
            } else {
                format!(
                    "cannot read s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            }
        })?;
        let total = object.content_length().unwrap_or_default().max(0) as u64;
        self.progress(job, 0, "started processing".into()).await?;
        let bytes = Arc::new(AtomicU64::new(0));
        let mut lines =
            crate::reader::lines(object.body.into_async_read(), key.ends_with(".gz"), bytes.clone()).lines();

        let mut tally = Tally::default();
        let mut batch: Vec<LogEntry> = Vec::with_capacity(BATCH);
        let write = |requests: Vec<shared::store::entries::WriteRequest>| {
            let n = requests.len() as u64;
            async move { self.entries.write_batch(requests).await.map(|_| n) }
        };
        let mut writes = FuturesUnordered::new();
        let mut number = 0u64;
        let mut next_step = 10u64;
        // Progress by bytes: of the decoded lines for plain files (exact), of the compressed
        // stream for gzip (read ahead in buffer-sized steps, so coarser).
        let gzip = key.ends_with(".gz");
        let mut consumed = 0u64;
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(format!("line {}: the file is not UTF-8 text", number + 1));
                }
                Err(e) => return Err(format!("reading s3://{bucket}/{key}: {e}")),
            };
            number += 1;
            consumed += line.len() as u64 + 1;
            if self.line_delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
                    0..=self.line_delay_ms,
                )))
                .await;
            }
            if line.trim().is_empty() {
                continue;
            }
            if let Some(entry) = tally.add(shared::logs::parse_line(number, &line)) {
                batch.push(entry);
            }
            if batch.len() == BATCH {
                let requests = self
                    .entries
                    .items(job.id, &std::mem::take(&mut batch))
                    .map_err(|e| e.to_string())?;
                writes.push(write(requests));
                while writes.len() >= WRITES_IN_FLIGHT {
                    tally.stored += writes
                        .next()
                        .await
                        .expect("non-empty")
                        .map_err(|e| format!("storing entries: {e}"))?;
                }
                let position = if gzip { bytes.load(Ordering::Relaxed) } else { consumed };
                let done = if total > 0 { position * 100 / total } else { 0 };
                if done >= next_step && next_step < 100 {
                    let pct = (done / 10 * 10).min(90);
                    self.progress(job, pct as u8, format!("{pct}% complete ({number} lines)"))
                        .await?;
                    next_step = pct + 10;
                }
            }
        }
        if !batch.is_empty() {
            let requests = self.entries.items(job.id, &batch).map_err(|e| e.to_string())?;
            writes.push(write(requests));
        }
        while let Some(written) = writes.next().await {
            tally.stored += written.map_err(|e| format!("storing entries: {e}"))?;
        }
        if tally.read > 0 && tally.non_json == tally.read {
            return Err(format!("not a JSONL file: none of its {} lines is JSON", tally.read));
        }
        Ok(tally.into_result(bytes.load(Ordering::Relaxed)))
    }
}

/// Counts of one file.
#[derive(Default)]
struct Tally {
    read: u64,
    stored: u64,
    rejected: u64,
    non_json: u64,
    first_rejections: Vec<Rejection>,
    levels: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Counts a parsed line; returns the entry to store, if valid.
    fn add(&mut self, parsed: Result<LogEntry, Rejection>) -> Option<LogEntry> {
        self.read += 1;
        match parsed {
            Ok(entry) => {
                *self.levels.entry(entry.level.as_str()).or_default() += 1;
                Some(entry)
            }
            Err(rejection) => {
                self.rejected += 1;
                if rejection.reason.starts_with("invalid JSON") {
                    self.non_json += 1;
                }
                if self.first_rejections.len() < KEPT_REJECTIONS {
                    self.first_rejections.push(rejection);
                }
                None
            }
        }
    }

    fn into_result(self, bytes: u64) -> Value {
        json!({
            "lines_read": self.read,
            "lines_stored": self.stored,
            "lines_rejected": self.rejected,
            "rejected": self.first_rejections,
            "levels": self.levels,
            "bytes_read": bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_plus_and_percent_forms() {
        assert_eq!(decode_key("uploads/my+file.jsonl"), "uploads/my file.jsonl");
        assert_eq!(decode_key("uploads/my%20file.jsonl"), "uploads/my file.jsonl");
        assert_eq!(decode_key("a%2Bb.jsonl"), "a+b.jsonl");
    }

    #[test]
    fn the_first_100_rejections_are_kept_and_all_are_counted() {
        let mut t = Tally::default();
        for n in 1..=150 {
            t.add(shared::logs::parse_line(n, "nope"));
        }
        assert_eq!(
            (t.read, t.rejected, t.non_json, t.first_rejections.len()),
            (150, 150, 150, 100)
        );
        assert_eq!(t.first_rejections[99].line, 100);
    }
}
