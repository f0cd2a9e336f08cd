//! One SQS record = one delivery of a job message. The generic batch loop
//! (`shared::sqs_batch`) reports the records this returns `Err` for; those stay on the queue.
//!
//! At-least-once delivery is assumed throughout:
//! - a finished or cancelled job is acknowledged and not run again;
//! - a job another delivery holds under a live lease is left on the queue (not acknowledged: if
//!   that delivery dies, this message is what brings the job back after its lease);
//! - a `processing` job whose lease expired is taken over (its worker died).
//!
//! A transient failure returns the job to `queued` and leaves the message for SQS to redeliver; after
//! the last attempt the job is `failed` and the message goes on to the dead-letter queue.
//! A permanent failure (bad input) fails the job at once and acknowledges the message.
//! Image jobs do not take a lease: they run in parts, see [`crate::image`].

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::clock;
use shared::job::{ClaimRefused, Job, JobResult, JobSpec, JobStatus};
use shared::queue::{JobMessage, JobQueue, delay_until};
use shared::service::{Claim, Ended, end_attempt};
use shared::store::JobStore;
use shared::trace::TraceHeader;
use time::{Duration, OffsetDateTime};
use tracing::Instrument;

use crate::archive::Archiver;
use crate::email::Emailer;
use crate::image::ImageJobs;
use crate::notification::Notifier;
use crate::report::Reporter;

/// Records of one batch processed at once.
const CONCURRENCY: usize = 4;

/// Why an attempt did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Worth another attempt (timeouts, throttling, 5xx).
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time (bad input, missing source).
    #[error("{0}")]
    Permanent(String),
}

impl ProcessError {
    /// `error` while `doing` something: transient or permanent as [`shared::Error::is_transient`]
    /// says, with the error's short summary (the full error belongs in the log line).
    pub fn of(doing: &str, error: &shared::Error) -> Self {
        let msg = format!("{doing}: {}", error.summary());
        if error.is_transient() {
            ProcessError::Transient(msg)
        } else {
            ProcessError::Permanent(msg)
        }
    }
}

/// Why a record stays on the queue.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed message: empty body")]
    EmptyBody,
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Another delivery holds the job's lease until then.
    #[error("job is held by another delivery until {}", clock::format(*.0))]
    Busy(OffsetDateTime),
    /// A transient failure of the attempt; the job is `queued` again, or `failed` after its last.
    #[error("attempt failed: {0}")]
    Failed(ProcessError),
    /// An image part ran out of invocation time before every image was measured; a later
    /// delivery measures the part afresh.
    #[error("attempt failed: {images} images of part {part} not measured before the deadline")]
    OutOfTime { part: u32, images: usize },
    #[error(transparent)]
    Store(#[from] shared::Error),
}

/// The work of one attempt, by kind. [`Processors`] is the real one.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    async fn run(&self, job: &Job) -> Result<JobResult, ProcessError>;
}

/// Per-kind work.
pub struct Processors {
    pub archive: Archiver,
    pub email: Emailer,
    pub notify: Notifier,
    pub report: Reporter,
}

#[async_trait::async_trait]
impl Runner for Processors {
    async fn run(&self, job: &Job) -> Result<JobResult, ProcessError> {
        match &job.spec {
            JobSpec::Archive(p) => self.archive.run(p, job.owner.as_ref()).await,
            JobSpec::Email(p) => self.email.run(p, job.id).await,
            JobSpec::Notification(p) => self.notify.run(p, job.id).await,
            JobSpec::Report(p) => self.report.run(p, job).await,
            JobSpec::Image(_) => Err(ProcessError::Permanent(
                "image jobs run in parts, through image::ImageJobs".into(),
            )),
            JobSpec::LogIngest(_) => Err(ProcessError::Permanent(
                "log_ingest jobs are run by the ingest function".into(),
            )),
        }
    }
}

pub struct Worker {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub runner: Arc<dyn Runner>,
    /// Image jobs: fanned out in parts, each part measured and recorded once.
    pub images: Arc<ImageJobs>,
    pub lease: Duration,
    /// The queues' `maxReceiveCount`: the delivery with this count is the last one.
    pub max_receives: u32,
}

impl Worker {
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        shared::sqs_batch::process(event, CONCURRENCY, |record| self.handle_record(record)).await
    }

    /// [`Worker::handle`] in an invocation with `remaining` time left (from the Lambda context):
    /// image parts stop fetching shortly before its deadline ([`crate::image::invocation_deadline`]).
    pub async fn handle_within(
        &self,
        event: SqsEvent,
        remaining: std::time::Duration,
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        match crate::image::invocation_deadline(remaining) {
            Some(deadline) => crate::image::DEADLINE.scope(deadline, self.handle(event)).await,
            None => self.handle(event).await,
        }
    }

    /// One record, in the trace it was sent in (its `AWSTraceHeader`, else the invocation's): the
    /// messages it sends carry that trace on, and its log lines `trace_id` and `job_id`.
    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let trace = TraceHeader::from_record(&record).or_else(shared::trace::current);
        let span = shared::trace::job_span(trace.as_ref());
        if let Some(id) = record.message_id.as_deref() {
            span.record("message_id", id);
        }
        shared::trace::scope(trace, self.handle_message(record).instrument(span)).await
    }

    async fn handle_message(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.as_deref().ok_or(RecordError::EmptyBody)?;
        let message: JobMessage = serde_json::from_str(body)?;
        let receives = receive_count(&record);
        let id = message.job_id;
        tracing::Span::current().record("job_id", tracing::field::display(id));

        let Some(job) = self.store.get(id).await? else {
            tracing::warn!(job_id = %id, "message for a job that does not exist; acknowledged");
            return Ok(());
        };
        let now = clock::now();
        if matches!(job.status, JobStatus::Pending | JobStatus::Queued)
            && delay_until(job.scheduled_for, now) > Duration::seconds(1)
        {
            // Scheduled beyond SQS's 15-minute delay: wait again.
            self.queue
                .send(&message, job.priority, delay_until(job.scheduled_for, now))
                .await?;
            tracing::info!(job_id = %id, scheduled_for = ?job.scheduled_for, "not due yet; re-delayed");
            return Ok(());
        }

        if let JobSpec::Image(payload) = &job.spec {
            let payload = payload.clone();
            let last_delivery = receives >= self.max_receives;
            return self.images.handle(job, &payload, &message, last_delivery).await;
        }

        let job = match shared::service::claim(self.store.as_ref(), id, self.lease).await? {
            Claim::Claimed(job) => job,
            Claim::Refused(ClaimRefused::Finished(status)) => {
                tracing::info!(job_id = %id, %status, "duplicate delivery of a finished job; acknowledged");
                return Ok(());
            }
            Claim::Refused(ClaimRefused::Busy { lease_until }) => {
                return Err(RecordError::Busy(lease_until));
            }
        };
        let attempt = job.attempts;
        tracing::info!(job_id = %id, kind = %job.kind(), attempt, receives, "processing");

        let ended = match self.runner.run(&job).await {
            Ok(result) => Ended::Completed(result),
            Err(ProcessError::Permanent(error)) => Ended::Permanent(error),
            Err(ProcessError::Transient(error)) => Ended::Transient {
                error,
                // SQS will not deliver again after the last receive (the message goes to the DLQ).
                redelivered: receives < self.max_receives,
            },
        };
        let job = end_attempt(self.store.as_ref(), id, attempt, &ended).await?;
        match ended {
            Ended::Completed(_) => {
                tracing::info!(job_id = %id, attempt, "completed");
                Ok(())
            }
            Ended::Permanent(error) => {
                tracing::warn!(job_id = %id, attempt, %error, "failed permanently");
                Ok(())
            }
            Ended::Transient { error, .. } => {
                tracing::warn!(job_id = %id, attempt, %error, status = %job.status, "attempt failed");
                Err(RecordError::Failed(ProcessError::Transient(error)))
            }
        }
    }
}

/// The record's `ApproximateReceiveCount` (1 for the first delivery). A missing or unreadable
/// count is taken as 1, the reading that never gives up early, and logged.
fn receive_count(record: &SqsMessage) -> u32 {
    match record.attributes.get("ApproximateReceiveCount") {
        Some(count) => count.parse().unwrap_or_else(|_| {
            tracing::warn!(%count, "unreadable ApproximateReceiveCount; taken as 1");
            1
        }),
        None => {
            tracing::warn!("record without ApproximateReceiveCount; taken as 1");
            1
        }
    }
}
