//! The SQS side of jobs: which queue a priority goes to, what a message says, and delays.
//!
//! Priorities 4-5 go to the high queue, 1-3 to the normal one. Each queue has its own event
//! source mapping, so a high-priority job never waits behind a normal-priority backlog.

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobKind, PartImage};

/// SQS refuses delays above 15 minutes; later jobs are re-delayed by the worker until due.
pub const MAX_DELAY: Duration = Duration::minutes(15);

/// The body of every job message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
    /// For jobs split into parts (image jobs): which part this message carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// With `part`: the run it belongs to (`Job::run_key`); a part of an earlier run is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// With `part`: the part's own images, so that a part run never reads the job's payload.
    /// Messages sent before parts carried them have none; their part is read from the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<PartImage>>,
}

/// SQS's limit on one message and on the sum of a batch's messages.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Bytes counted per message on top of its body: the `priority` attribute (name, type, value)
/// with room to spare.
const ATTRIBUTE_BYTES: usize = 64;
/// Headroom kept under [`MAX_BATCH_BYTES`].
const BATCH_BUDGET: usize = MAX_BATCH_BYTES - 8 * 1024;

/// Splits message bodies into `SendMessageBatch` calls: at most 10 messages and at most
/// [`BATCH_BUDGET`] bytes each (bodies plus attributes). Returns index ranges into `sizes`.
/// A single message over the budget is a batch of its own (SQS refuses it with a clear error).
pub fn batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        let size = size + ATTRIBUTE_BYTES;
        if i > start && (i - start == 10 || bytes + size > BATCH_BUDGET) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Which queue a priority uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    High,
    Normal,
}

impl Band {
    pub fn of(priority: u8) -> Band {
        if priority >= 4 { Band::High } else { Band::Normal }
    }
}

/// How long to delay a message so that it arrives at `scheduled_for` (capped at 15 minutes).
pub fn delay_until(scheduled_for: Option<OffsetDateTime>, now: OffsetDateTime) -> Duration {
    match scheduled_for {
        Some(at) if at > now => (at - now).min(MAX_DELAY),
        _ => Duration::ZERO,
    }
}

/// Sends job messages.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues `message` on the queue of `priority`, invisible for `delay`.
    async fn send(&self, message: &JobMessage, priority: u8, delay: Duration) -> Result<()>;

    /// Enqueues several messages on the queue of `priority` without delay (the parts of a job).
    async fn send_all(&self, messages: &[JobMessage], priority: u8) -> Result<()> {
        for message in messages {
            self.send(message, priority, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Sends `message` to the ingest function's queue (`INGEST_QUEUE_URL`): a `log_ingest` job
    /// to run from the start (a retry, or one the sweeper brings back).
    async fn send_ingest(&self, message: &JobMessage, delay: Duration) -> Result<()>;

    /// Sends a checkpoint of the ingest function's own to its queue, after `delay`: `body` is the
    /// JSON it reads back to go on with a file in a fresh invocation (only the ingest knows its
    /// shape).
    async fn send_ingest_checkpoint(&self, body: &str, delay: Duration) -> Result<()>;

    /// Enqueues the message for a job as it stands (priority, schedule). `log_ingest` jobs are
    /// run by the ingest function, so theirs goes to its queue; every other kind to the worker's.
    async fn enqueue(&self, job: &Job, now: OffsetDateTime) -> Result<()> {
        let message = JobMessage {
            job_id: job.id,
            part: None,
            run: None,
            images: None,
        };
        let delay = delay_until(job.scheduled_for, now);
        match job.kind() {
            JobKind::LogIngest => self.send_ingest(&message, delay).await,
            _ => self.send(&message, job.priority, delay).await,
        }
    }
}

/// The SQS implementation.
#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    high_url: String,
    normal_url: String,
    ingest_url: Option<String>,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, high_url: impl Into<String>, normal_url: impl Into<String>) -> Self {
        SqsJobQueue {
            client,
            high_url: high_url.into(),
            normal_url: normal_url.into(),
            ingest_url: None,
        }
    }

    /// The three queues a function's settings name (high, normal, and the ingest function's).
    pub fn from_settings(client: aws_sdk_sqs::Client, settings: &crate::settings::Settings) -> Self {
        SqsJobQueue::new(client, &settings.high_queue_url, &settings.normal_queue_url)
            .with_ingest(&settings.ingest_queue_url)
    }

    /// Where `log_ingest` jobs go (the ingest function's queue).
    pub fn with_ingest(mut self, ingest_url: impl Into<String>) -> Self {
        self.ingest_url = Some(ingest_url.into());
        self
    }

    fn ingest_url(&self) -> Result<&str> {
        self.ingest_url
            .as_deref()
            .ok_or_else(|| Error::Internal("no ingest queue configured (INGEST_QUEUE_URL)".into()))
    }

    async fn send_to(&self, url: &str, message: &JobMessage, priority: u8, delay: Duration) -> Result<()> {
        let body = serde_json::to_string(message).map_err(|e| Error::Internal(e.to_string()))?;
        let priority_attr = MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(priority.to_string())
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(delay.whole_seconds().clamp(0, MAX_DELAY.whole_seconds()) as i32)
            .message_attributes("priority", priority_attr)
            .set_message_system_attributes(trace_attribute()?)
            .send()
            .await
            .map_err(|e| Error::aws("SendMessage", e))?;
        Ok(())
    }

    pub fn url(&self, band: Band) -> &str {
        match band {
            Band::High => &self.high_url,
            Band::Normal => &self.normal_url,
        }
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, message: &JobMessage, priority: u8, delay: Duration) -> Result<()> {
        self.send_to(self.url(Band::of(priority)), message, priority, delay)
            .await
    }

    async fn send_ingest(&self, message: &JobMessage, delay: Duration) -> Result<()> {
        self.send_to(self.ingest_url()?, message, 3, delay).await
    }

    async fn send_ingest_checkpoint(&self, body: &str, delay: Duration) -> Result<()> {
        self.client
            .send_message()
            .queue_url(self.ingest_url()?)
            .message_body(body)
            .delay_seconds(delay.whole_seconds().clamp(0, MAX_DELAY.whole_seconds()) as i32)
            .set_message_system_attributes(trace_attribute()?)
            .send()
            .await
            .map_err(|e| Error::aws("SendMessage", e))?;
        Ok(())
    }

    /// `SendMessageBatch`, at most 10 messages and 248 KiB a call ([`batches`]); any entry SQS
    /// refuses fails the whole call (the caller repeats it, and repeated part messages are harmless).
    async fn send_all(&self, messages: &[JobMessage], priority: u8) -> Result<()> {
        let priority_attr = MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(priority.to_string())
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
        let trace = trace_attribute()?;
        for range in batches(&sizes) {
            let count = range.len();
            let mut entries = Vec::with_capacity(count);
            for (i, body) in bodies[range].iter().enumerate() {
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body.clone())
                        .message_attributes("priority", priority_attr.clone())
                        .set_message_system_attributes(trace.clone())
                        .build()
                        .map_err(|e| Error::Internal(e.to_string()))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.url(Band::of(priority)))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Error::aws("SendMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(Error::Internal(format!(
                    "SendMessageBatch refused {} of {} messages: {} {}",
                    out.failed().len(),
                    count,
                    failed.code(),
                    failed.message().unwrap_or("")
                )));
            }
        }
        Ok(())
    }
}

/// The `AWSTraceHeader` system attribute for a message sent now: the trace of the work at hand
/// ([`crate::trace::current`]), so that the function that takes the message goes on in that trace.
fn trace_attribute()
-> Result<Option<std::collections::HashMap<MessageSystemAttributeNameForSends, MessageSystemAttributeValue>>> {
    let Some(trace) = crate::trace::current() else {
        return Ok(None);
    };
    let value = MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(trace.as_str())
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(std::collections::HashMap::from([(
        MessageSystemAttributeNameForSends::AwsTraceHeader,
        value,
    )])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_split_into_two_bands() {
        assert_eq!(
            [1, 2, 3, 4, 5].map(Band::of),
            [Band::Normal, Band::Normal, Band::Normal, Band::High, Band::High]
        );
    }

    #[test]
    fn delays_cap_at_fifteen_minutes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(delay_until(None, now), Duration::ZERO);
        assert_eq!(delay_until(Some(now - Duration::minutes(1)), now), Duration::ZERO);
        assert_eq!(
            delay_until(Some(now + Duration::seconds(90)), now),
            Duration::seconds(90)
        );
        assert_eq!(delay_until(Some(now + Duration::hours(2)), now), MAX_DELAY);
    }

    /// The worst part message: 25 URLs of 2,048 bytes and store ids of 64 characters.
    fn worst_part() -> JobMessage {
        JobMessage {
            job_id: JobId::new(),
            part: Some(3_999),
            run: Some("1800000000000000000".into()),
            images: Some(
                (0..crate::job::IMAGES_PER_PART)
                    .map(|_| PartImage {
                        store_id: "S".repeat(crate::limits::STORE_ID),
                        url: format!("https://img.example/{}", "u".repeat(crate::limits::IMAGE_URL - 20)),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn batches_split_by_count_and_by_bytes() {
        assert!(batches(&[]).is_empty());
        assert_eq!(batches(&[100; 25]), vec![0..10, 10..20, 20..25]);
        let worst = serde_json::to_string(&worst_part()).unwrap().len();
        assert!(worst < 60 * 1024, "a part message is {worst} bytes");
        let sizes = vec![worst; 40];
        let split = batches(&sizes);
        assert!(split.len() > 4, "{split:?}");
        assert_eq!(split.iter().map(|r| r.len()).sum::<usize>(), 40);
        for range in &split {
            let bytes: usize = sizes[range.clone()].iter().map(|s| s + ATTRIBUTE_BYTES).sum();
            assert!(bytes <= MAX_BATCH_BYTES && range.len() <= 10, "{range:?}: {bytes}");
        }
        // Ranges are contiguous and in order.
        assert!(split.windows(2).all(|w| w[0].end == w[1].start));
        // A message over the budget goes alone.
        assert_eq!(batches(&[10, 300_000, 10]), vec![0..1, 1..2, 2..3]);
    }
}
