//! One S3 `ObjectCreated` record = one `.jsonl` object to ingest.
//!
//! The object's `log_ingest` job is created here, once: its idempotency key is the object's
//! bucket, key and version (sequencer), so a twice-delivered event finds the same job. The object is
//! streamed line by line (constant memory) and the counts recorded on the job.

use std::sync::Arc;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::clock;
use shared::job::{ClaimRefused, Job, JobSpec, LogIngestPayload};
use shared::store::{Created, IdempotencyKey, JobStore};
use time::Duration;
use tokio::io::AsyncBufReadExt;

pub struct Ingest {
    pub store: Arc<dyn JobStore>,
    pub s3: aws_sdk_s3::Client,
    pub lease: Duration,
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

    async fn handle_record(&self, record: S3EventRecord) -> Result<shared::job::JobId, lambda_runtime::Error> {
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
        let file_name = key.rsplit('/').next().unwrap_or(&key).to_string();
        let spec = JobSpec::LogIngest(LogIngestPayload {
            bucket: bucket.clone(),
            key: key.clone(),
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
        let job = match self.store.create(&job, Some(&idempotency)).await? {
            Created::New(j) | Created::Existing(j) => j,
        };
        let id = job.id;
        let lease = self.lease;
        let mut refused = None;
        let claimed = self
            .store
            .modify(id, &mut |j| {
                j.claim(clock::now(), lease).map_err(|r| {
                    refused = Some(r);
                    shared::Error::Conflict("claim refused".into())
                })
            })
            .await;
        let job = match (claimed, refused) {
            (Ok(j), _) => j,
            (Err(_), Some(ClaimRefused::Finished(status))) => {
                tracing::info!(job_id = %id, %status, "duplicate S3 event for a finished ingest; nothing to do");
                return Ok(id);
            }
            (Err(_), Some(ClaimRefused::Busy { .. })) => {
                tracing::info!(job_id = %id, "duplicate S3 event while the ingest runs; nothing to do");
                return Ok(id);
            }
            (Err(e), None) => return Err(e.into()),
        };
        let attempt = job.attempts;
        tracing::info!(job_id = %id, %bucket, %key, "ingest started");
        match self.count_lines(&bucket, &key).await {
            Ok(counts) => {
                self.store
                    .modify(id, &mut |j| j.complete(attempt, counts.clone(), clock::now()))
                    .await?;
            }
            Err(error) => {
                self.store
                    .modify(id, &mut |j| j.fail_permanently(attempt, error.clone(), clock::now()))
                    .await?;
            }
        }
        Ok(id)
    }

    async fn count_lines(&self, bucket: &str, key: &str) -> Result<Value, String> {
        let object = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
            format!(
                "cannot read s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
        let mut lines = tokio::io::BufReader::new(object.body.into_async_read()).lines();
        let mut tally = Tally::default();
        let mut number = 0u64;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?
        {
            number += 1;
            if !line.trim().is_empty() {
                tally.add(shared::logs::parse_line(number, &line));
            }
        }
        Ok(tally.into_result())
    }
}

/// Counts of one file: lines read, valid and rejected (the first 100 with their reasons), by level.
#[derive(Default)]
struct Tally {
    read: u64,
    valid: u64,
    rejected: u64,
    first_rejections: Vec<shared::logs::Rejection>,
    levels: std::collections::BTreeMap<&'static str, u64>,
}

/// Rejected lines kept with their reasons; the rest are only counted.
const KEPT_REJECTIONS: usize = 100;

impl Tally {
    fn add(&mut self, parsed: Result<shared::logs::LogEntry, shared::logs::Rejection>) {
        self.read += 1;
        match parsed {
            Ok(entry) => {
                self.valid += 1;
                *self.levels.entry(entry.level.as_str()).or_default() += 1;
            }
            Err(rejection) => {
                self.rejected += 1;
                if self.first_rejections.len() < KEPT_REJECTIONS {
                    self.first_rejections.push(rejection);
                }
            }
        }
    }

    fn into_result(self) -> Value {
        json!({
            "lines_read": self.read,
            "lines_valid": self.valid,
            "lines_rejected": self.rejected,
            "rejected": self.first_rejections,
            "levels": self.levels,
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
}
