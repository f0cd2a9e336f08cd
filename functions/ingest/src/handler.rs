//! One S3 `ObjectCreated` record = one `.jsonl` (or `.jsonl.gz`) object to ingest.
//!
//! - The object's `log_ingest` job: an upload through the API already made one (its id is in the
//!   key, `uploads/<owner>/<job_id>/<file>`); a file dropped straight into the bucket gets one
//!   through `shared::service::Jobs::ingest_job_of_object`, once: its idempotency key is the
//!   object's bucket, key and sequencer, so a twice-delivered event finds the same job, and the
//!   claim refuses a second run.
//! - The object is streamed line by line (constant memory) through `shared::objects::Objects`;
//!   each line is validated (`shared::logs`), valid entries stored 25 at a time through
//!   `shared::store::entries::EntryStore` (a line re-ingested overwrites its entry), the first 100
//!   rejections kept with line number and reason.
//! - Progress goes on the job at `started processing`, every 10 % of bytes read, and `completed`.
//! - A missing object, a body that is not UTF-8 or not JSONL, or a storage failure that outlasts
//!   the retries fails the job with a clear error. A bad line never fails the file.
//! - A file that outlasts an invocation is checkpointed and continued through the ingest queue
//!   (`shared::queue::JobQueue::send_ingest_checkpoint`); a transient failure gives the attempt
//!   back and starts it again through the same queue.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::clock;
use shared::job::{ClaimRefused, IngestResult, Job, JobId, JobKind, JobSpec};
use shared::logs::{LogEntry, Rejection};
use shared::metrics::{self, Dims, Metric};
use shared::objects::{Body, ObjectError, Objects};
use shared::queue::JobMessage;
use shared::service::{Claim, Ended, Jobs, end_attempt};
use shared::store::entries::{BATCH, EntryStore};
use shared::trace::TraceHeader;
use time::Duration;
use tokio::io::AsyncBufRead;
use tracing::{Instrument, Span};

use crate::reader;

/// Rejected lines kept with their reasons; the rest are only counted.
pub const KEPT_REJECTIONS: usize = 100;
/// `BatchWriteItem` calls in flight at once.
pub const WRITES_IN_FLIGHT: usize = 4;
/// Lines an invocation reads at least before it may checkpoint: a deadline that leaves almost
/// nothing must still move the file forward, or it would be handed on forever.
pub const MIN_LINES_PER_INVOCATION: u64 = BATCH as u64;

pub struct Ingest {
    /// The jobs: their store, and the queues (the ingest's own carries checkpoints and restarts).
    pub jobs: Jobs,
    /// Where the valid lines go.
    pub entries: Arc<dyn EntryStore>,
    /// Where the files are read from.
    pub objects: Arc<dyn Objects>,
    /// How long a run holds its job: above the function's timeout (`INGEST_LEASE_SECONDS`, 360 s),
    /// renewed by every continuation, so a late duplicate event never takes over a live ingest.
    pub lease: Duration,
    /// The seed's random per-line delay (0..=this many ms); 0 = off.
    pub line_delay_ms: u64,
    /// Upper bound on the time one invocation works before it checkpoints (`INGEST_TIME_BUDGET_MS`;
    /// the invocation's own deadline, less a safety margin, bounds it too).
    pub time_budget: std::time::Duration,
    pub limits: Limits,
}

/// What a file may do to the function (memory, time): beyond these it is refused or its line
/// rejected, never the function knocked over.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest line read (`INGEST_MAX_LINE_BYTES`, 1 MiB): a longer one is a rejected line,
    /// skipped without being buffered.
    pub max_line: usize,
    /// Most bytes a `.gz` object may inflate to (`INGEST_MAX_INFLATED_BYTES`, 16 GiB).
    pub max_inflated: u64,
    /// Most a `.gz` object may inflate per compressed byte, past its first 16 MiB
    /// (`INGEST_MAX_GZIP_RATIO`, 200; JSONL logs compress 5-20x).
    pub max_gzip_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: shared::limits::LINE_READ,
            max_inflated: 16 << 30,
            max_gzip_ratio: 200,
        }
    }
}

impl Limits {
    pub fn from_env() -> shared::Result<Limits> {
        let d = Limits::default();
        Ok(Limits {
            max_line: shared::settings::optional("INGEST_MAX_LINE_BYTES", d.max_line)?,
            max_inflated: shared::settings::optional("INGEST_MAX_INFLATED_BYTES", d.max_inflated)?,
            max_gzip_ratio: shared::settings::optional("INGEST_MAX_GZIP_RATIO", d.max_gzip_ratio)?,
        })
    }
}

/// Where an ingest stopped: enough to go on from there in a fresh invocation, every line once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub job_id: JobId,
    pub attempt: u32,
    pub bucket: String,
    pub key: String,
    /// Bytes of the (decoded) object consumed so far; the next line starts here.
    pub offset: u64,
    /// Lines consumed so far (the next line is `line + 1`).
    pub line: u64,
    tally: Tally,
}

/// What arrives on the ingest function's queue.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IngestMessage {
    /// A file being continued from where the last invocation stopped.
    Continue(Checkpoint),
    /// A queued `log_ingest` job to run from the start: a retry, a transient failure given back,
    /// or a job the sweeper brought back (the `JobMessage` every queue carries).
    Start { job_id: JobId },
    /// An S3 event whose asynchronous invocations all failed (the function's on-failure
    /// destination, Lambda's record around it): run again.
    Redrive {
        #[serde(rename = "requestPayload")]
        request_payload: S3Event,
    },
}

/// How an invocation's share of a file ended.
pub enum Outcome {
    Done(IngestResult),
    Paused(Checkpoint),
}

/// Why an ingest run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file itself is bad (missing, not UTF-8, not JSONL, a gzip bomb): the job fails, as it
    /// would every time.
    #[error("{0}")]
    Bad(String),
    /// Reading the object broke off: another attempt may well succeed.
    #[error("{0}")]
    Read(String),
    /// Storage or queue failure; transient or not as [`shared::Error::is_transient`] says.
    #[error(transparent)]
    Store(#[from] shared::Error),
}

impl IngestError {
    fn is_transient(&self) -> bool {
        match self {
            IngestError::Bad(_) => false,
            IngestError::Read(_) => true,
            IngestError::Store(e) => e.is_transient(),
        }
    }

    /// What the job's readers see: short, without SDK internals.
    fn summary(&self) -> String {
        match self {
            IngestError::Store(e) => e.summary(),
            other => shared::limits::clip(&other.to_string(), shared::limits::JOB_ERROR),
        }
    }
}

/// Time kept in reserve before the Lambda deadline.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// S3 event keys are URL-encoded with `+` for a space (AWS) or `%20` (LocalStack): decode both.
pub fn decode_key(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Ingest {
    /// An S3 notification (new files) or an SQS batch from the ingest queue (files continued,
    /// jobs started again, S3 events redriven). `deadline` is the invocation's (Lambda context);
    /// work stops in time to checkpoint.
    pub async fn handle(&self, event: Value, deadline: Option<Instant>) -> Result<Value, lambda_runtime::Error> {
        let stop_at = self.stop_at(deadline);
        match event.pointer("/Records/0/eventSource").and_then(Value::as_str) {
            Some("aws:sqs") => {
                let event: SqsEvent = serde_json::from_value(event)?;
                let response = shared::sqs_batch::process(event, 1, |record| self.on_message(record, stop_at)).await?;
                Ok(serde_json::to_value(response)?)
            }
            _ => {
                let event: S3Event = serde_json::from_value(event)?;
                let jobs = self.on_s3_event(event, stop_at).await?;
                Ok(json!({ "jobs": jobs }))
            }
        }
    }

    /// Each object of an S3 event, in the trace at hand (the invocation's, or the redriving
    /// record's) and in a span naming its job once it is known.
    async fn on_s3_event(&self, event: S3Event, stop_at: Instant) -> shared::Result<Vec<String>> {
        let mut jobs = Vec::new();
        for record in event.records {
            let span = shared::trace::job_span(shared::trace::current().as_ref());
            jobs.push(self.handle_record(record, stop_at).instrument(span).await?.to_string());
        }
        Ok(jobs)
    }

    /// When this invocation stops reading: before the deadline less the margin (or half of
    /// what is left, when the deadline leaves less than twice the margin), within the budget.
    fn stop_at(&self, deadline: Option<Instant>) -> Instant {
        let now = Instant::now();
        let budget = now + self.time_budget;
        match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(now);
                (now + left.saturating_sub(DEADLINE_MARGIN).max(left / 2)).min(budget)
            }
            None => budget,
        }
    }

    /// One record of the ingest queue, in the trace it was sent in (its `AWSTraceHeader`, else
    /// the invocation's) and in a span naming its job.
    async fn on_message(&self, record: SqsMessage, stop_at: Instant) -> shared::Result<()> {
        let trace = TraceHeader::from_record(&record).or_else(shared::trace::current);
        let span = shared::trace::job_span(trace.as_ref());
        if let Some(id) = record.message_id.as_deref() {
            span.record("message_id", id);
        }
        shared::trace::scope(trace, self.on_record(record, stop_at).instrument(span)).await
    }

    async fn on_record(&self, record: SqsMessage, stop_at: Instant) -> shared::Result<()> {
        let body = record.body.as_deref().unwrap_or_default();
        let message: IngestMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                // Nothing will ever read it: acknowledged, and said loudly.
                tracing::error!(error = %e, body = %shared::limits::clip(body, 500), "unreadable message on the ingest queue; dropped");
                return Ok(());
            }
        };
        let job_id = match &message {
            IngestMessage::Continue(cp) => Some(cp.job_id),
            IngestMessage::Start { job_id } => Some(*job_id),
            // A redriven S3 event: its object's job is found in on_s3_event.
            IngestMessage::Redrive { .. } => None,
        };
        if let Some(id) = job_id {
            Span::current().record("job_id", tracing::field::display(id));
        }
        match message {
            IngestMessage::Continue(cp) => self.continue_from(cp, stop_at).await,
            IngestMessage::Start { job_id } => self.start(job_id, stop_at).await,
            IngestMessage::Redrive { request_payload } => self.on_s3_event(request_payload, stop_at).await.map(|_| ()),
        }
    }

    /// Goes on with a checkpointed file, if its attempt still holds the job.
    async fn continue_from(&self, cp: Checkpoint, stop_at: Instant) -> shared::Result<()> {
        let lease = self.lease;
        let renewed = self
            .jobs
            .store
            .modify(cp.job_id, &mut |j| j.renew_lease(cp.attempt, clock::now(), lease))
            .await;
        let job = match renewed {
            Ok(job) => job,
            Err(shared::Error::Conflict(why)) | Err(shared::Error::NotFound(why)) => {
                tracing::info!(job_id = %cp.job_id, %why, "checkpoint of an attempt that no longer holds the job; dropped");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        tracing::info!(job_id = %job.id, line = cp.line, offset = cp.offset, "continuing ingest");
        let (bucket, key) = (cp.bucket.clone(), cp.key.clone());
        self.finish(&job, &bucket, &key, Some(cp), stop_at).await
    }

    /// Runs a queued `log_ingest` job from the start.
    async fn start(&self, id: JobId, stop_at: Instant) -> shared::Result<()> {
        let Some(job) = self.claim(id).await? else {
            return Ok(());
        };
        let JobSpec::LogIngest(p) = &job.spec else {
            tracing::error!(job_id = %id, kind = %job.kind(), "not a log_ingest job; dropped");
            return Ok(());
        };
        let (bucket, key) = (p.bucket.clone(), p.key.clone());
        tracing::info!(job_id = %id, %bucket, %key, attempt = job.attempts, "ingest started from the queue");
        self.finish(&job, &bucket, &key, None, stop_at).await
    }

    /// Claims the job for an attempt; `None` if it is finished or a live run holds it.
    async fn claim(&self, id: JobId) -> shared::Result<Option<Job>> {
        match shared::service::claim(self.jobs.store.as_ref(), id, self.lease).await {
            Ok(Claim::Claimed(job)) => Ok(Some(job)),
            Ok(Claim::Refused(ClaimRefused::Finished(status))) => {
                tracing::info!(job_id = %id, %status, "ingest already finished; nothing to do");
                Ok(None)
            }
            Ok(Claim::Refused(ClaimRefused::Busy { .. })) => {
                tracing::info!(job_id = %id, "a live run holds the ingest; nothing to do");
                Ok(None)
            }
            Err(shared::Error::NotFound(_)) => {
                tracing::warn!(job_id = %id, "no such job; dropped");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn handle_record(&self, record: S3EventRecord, stop_at: Instant) -> shared::Result<JobId> {
        let missing = |what: &str| shared::Error::Invalid(format!("S3 record without {what}"));
        let bucket = record.s3.bucket.name.clone().ok_or_else(|| missing("bucket name"))?;
        let key = decode_key(record.s3.object.key.as_deref().ok_or_else(|| missing("object key"))?);
        let size = record.s3.object.size.unwrap_or_default().max(0) as u64;
        let version = record
            .s3
            .object
            .sequencer
            .clone()
            .or(record.s3.object.e_tag.clone())
            .unwrap_or_default();
        let job = self.jobs.ingest_job_of_object(&bucket, &key, size, &version).await?;
        let id = job.id;
        Span::current().record("job_id", tracing::field::display(id));
        let Some(job) = self.claim(id).await? else {
            return Ok(id);
        };
        tracing::info!(job_id = %id, %bucket, %key, "ingest started");
        self.finish(&job, &bucket, &key, None, stop_at).await?;
        Ok(id)
    }

    /// Runs (or continues) the ingest and records how it ended: completed; failed (a bad file);
    /// given back to `queued` and started again through the queue (a transient failure, while
    /// attempts remain); or checkpointed and handed to the next invocation.
    /// An `Err` means nothing durable records the outcome: Lambda must retry the event.
    async fn finish(
        &self,
        job: &Job,
        bucket: &str,
        key: &str,
        from: Option<Checkpoint>,
        stop_at: Instant,
    ) -> shared::Result<()> {
        let attempt = job.attempts;
        let id = job.id;
        // The result of a finished run, or why it did not finish (a checkpoint that could not be
        // handed over counts as a storage failure).
        let outcome = match self.ingest(job, bucket, key, from, stop_at).await {
            Ok(Outcome::Done(result)) => Ok(result),
            Ok(Outcome::Paused(cp)) => match self.hand_over(&cp).await {
                Ok(()) => {
                    tracing::info!(job_id = %id, line = cp.line, "checkpointed; continuing in a new invocation");
                    return Ok(());
                }
                Err(e) => Err(IngestError::Store(e)),
            },
            Err(error) => Err(error),
        };
        let written = match outcome {
            Ok(result) => end_attempt(self.jobs.store.as_ref(), id, attempt, &Ended::Completed(result.into())).await,
            Err(IngestError::Store(shared::Error::Conflict(why))) => {
                tracing::info!(job_id = %id, attempt, %why, "the attempt lost the job; stopping");
                return Ok(());
            }
            Err(error) if error.is_transient() => return self.give_back(id, attempt, &error).await,
            Err(error) => {
                tracing::warn!(job_id = %id, attempt, error = %error, "ingest failed");
                end_attempt(
                    self.jobs.store.as_ref(),
                    id,
                    attempt,
                    &Ended::Permanent(error.summary()),
                )
                .await
            }
        };
        match written {
            Ok(_) => Ok(()),
            Err(shared::Error::Conflict(why)) => {
                tracing::info!(job_id = %id, attempt, %why, "the job moved on before the outcome was recorded");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A transient failure: the attempt goes back (`queued`, while attempts remain) and starts
    /// again from the queue, after a pause that grows with the attempts. If even this send fails,
    /// the error makes Lambda retry the event, which claims the queued job again; the sweeper is
    /// the last resort.
    async fn give_back(&self, id: JobId, attempt: u32, error: &IngestError) -> shared::Result<()> {
        tracing::warn!(job_id = %id, attempt, %error, "ingest attempt failed; giving it back");
        // The ingest sends the restart itself (below), so the attempt is always redelivered.
        let ended = Ended::Transient {
            error: error.summary(),
            redelivered: true,
        };
        let job = end_attempt(self.jobs.store.as_ref(), id, attempt, &ended).await?;
        if job.status == shared::job::JobStatus::Queued {
            // The message every queue carries for a job: the ingest reads it as a start.
            let message = JobMessage {
                job_id: id,
                part: None,
                run: None,
                images: None,
            };
            let pause = Duration::seconds(10 * i64::from(job.attempts));
            self.jobs.queue.send_ingest(&message, pause).await?;
        }
        Ok(())
    }

    /// Hands a checkpoint to the next invocation, through the ingest queue.
    async fn hand_over(&self, cp: &Checkpoint) -> shared::Result<()> {
        let body = serde_json::to_string(cp).map_err(|e| shared::Error::Internal(format!("checkpoint JSON: {e}")))?;
        self.jobs.queue.send_ingest_checkpoint(&body, Duration::ZERO).await
    }

    async fn progress(&self, job: &Job, percent: u8, stage: String, timeline: bool) -> Result<(), IngestError> {
        let attempt = job.attempts;
        let now = clock::now();
        self.jobs
            .store
            .modify(job.id, &mut |j| {
                if timeline {
                    j.set_progress(attempt, percent, stage.clone(), now)
                } else {
                    j.note_progress(attempt, percent, stage.clone(), now)
                }
            })
            .await?;
        Ok(())
    }

    /// Streams, validates and stores the object from where `from` stopped (or its start), until
    /// its end or `stop_at`; returns the job's result, or where the next invocation goes on.
    pub async fn ingest(
        &self,
        job: &Job,
        bucket: &str,
        key: &str,
        from: Option<Checkpoint>,
        stop_at: Instant,
    ) -> Result<Outcome, IngestError> {
        let resumed = from.is_some();
        let mut run = Run::new(self, job, bucket, key, from);
        let began = (Instant::now(), run.tally.metered());
        let mut lines = run.open().await?;
        if !resumed {
            run.report(0, "started processing".into());
        }
        let mut buf = Vec::new();
        while let Some(read) = run.read_line(&mut *lines, &mut buf).await? {
            if run.skip_done_gzip_line() {
                continue;
            }
            run.pause_per_line().await;
            run.record_line(read, &buf)?;
            if run.batch.len() == BATCH {
                run.flush_batch().await?;
                run.report_progress();
            }
            // The clock, on every line: a file of blank or bad lines stops in time too.
            if run.past(stop_at) {
                run.tally.meter(began);
                return Ok(Outcome::Paused(run.checkpoint().await?));
            }
        }
        run.tally.meter(began);
        Ok(Outcome::Done(run.complete().await?))
    }
}

/// A line as [`Run::read_line`] read it.
#[derive(Debug, Clone, Copy)]
struct Read {
    /// Its bytes in the (decoded) file, terminator included.
    size: usize,
    /// Whether it is in the buffer: a line over [`Limits::max_line`] is consumed, not kept.
    kept: bool,
}

/// One invocation's share of a file: where it is, what it counted, what it has in flight.
struct Run<'a> {
    ingest: &'a Ingest,
    job: &'a Job,
    bucket: &'a str,
    key: &'a str,
    /// A `.gz` object: read through the decoder, and from its start every time (no seeking).
    gzip: bool,
    tally: Tally,
    /// Lines consumed so far: the number of the last one.
    line: u64,
    /// Bytes of the decoded file consumed so far, `\r\n` included: where the next line starts.
    offset: u64,
    /// Lines of a gzip file that earlier invocations did, still to skip.
    skip: u64,
    /// Lines this invocation recorded.
    recorded: u64,
    /// The whole object's size, for progress.
    size: u64,
    /// Bytes read from the object (compressed ones, for gzip).
    raw: Arc<AtomicU64>,
    /// The next 10 % step to record.
    next_step: u64,
    /// Valid entries not yet handed to a write.
    batch: Vec<LogEntry>,
    in_flight: InFlight<'a>,
}

impl<'a> Run<'a> {
    fn new(ingest: &'a Ingest, job: &'a Job, bucket: &'a str, key: &'a str, from: Option<Checkpoint>) -> Self {
        let gzip = key.ends_with(".gz");
        let (tally, line, offset) = match from {
            Some(cp) => (cp.tally, cp.line, cp.offset),
            None => (Tally::default(), 0, 0),
        };
        Run {
            ingest,
            job,
            bucket,
            key,
            gzip,
            tally,
            line,
            offset,
            skip: if gzip { line } else { 0 },
            recorded: 0,
            size: 0,
            raw: Arc::new(AtomicU64::new(0)),
            next_step: 10,
            batch: Vec::with_capacity(BATCH),
            in_flight: InFlight::default(),
        }
    }

    /// Opens the object where this run starts: a plain file at its checkpoint's offset (a
    /// checkpoint taken right at the end leaves nothing to read), a gzip file at its start.
    async fn open(&mut self) -> Result<Box<dyn AsyncBufRead + Send + Unpin>, IngestError> {
        let from = if self.gzip { 0 } else { self.offset };
        let body: Body = match self.ingest.objects.read(self.bucket, self.key, from).await {
            Ok(opened) => {
                self.size = opened.size;
                opened.body
            }
            Err(ObjectError::RangeNotSatisfiable { .. }) => {
                self.size = self.offset;
                Box::pin(tokio::io::empty())
            }
            Err(ObjectError::NotFound { bucket, key }) => {
                return Err(IngestError::Bad(format!(
                    "object s3://{bucket}/{key} not found (never uploaded, or deleted)"
                )));
            }
            Err(ObjectError::Other(e)) => return Err(IngestError::Store(e)),
        };
        self.next_step = (self.offset * 100)
            .checked_div(self.size)
            .map_or(10, |pct| pct / 10 * 10 + 10);
        let inflate = reader::InflateLimits {
            max_bytes: self.ingest.limits.max_inflated,
            max_ratio: self.ingest.limits.max_gzip_ratio,
        };
        Ok(reader::lines(body, self.gzip, self.raw.clone(), inflate))
    }

    /// The next line into `buf`; `None` at the end. A gzip bomb is a bad file; any other read
    /// error a broken connection (another attempt may succeed).
    async fn read_line(
        &mut self,
        lines: &mut (dyn AsyncBufRead + Send + Unpin),
        buf: &mut Vec<u8>,
    ) -> Result<Option<Read>, IngestError> {
        match reader::read_line(lines, buf, self.ingest.limits.max_line).await {
            Ok(reader::Line::End) => Ok(None),
            Ok(reader::Line::Text(size)) => Ok(Some(Read { size, kept: true })),
            Ok(reader::Line::TooLong(size)) => Ok(Some(Read { size, kept: false })),
            Err(e) => match reader::bomb(&e) {
                Some(bomb) => Err(IngestError::Bad(bomb.0.clone())),
                None => Err(IngestError::Read(format!(
                    "reading s3://{}/{}: {e}",
                    self.bucket, self.key
                ))),
            },
        }
    }

    /// A gzip stream cannot seek: the lines earlier invocations did are read again and skipped.
    fn skip_done_gzip_line(&mut self) -> bool {
        if self.skip == 0 {
            return false;
        }
        self.skip -= 1;
        true
    }

    /// The seed's random per-line delay, when it is on.
    async fn pause_per_line(&mut self) {
        let max = self.ingest.line_delay_ms;
        if max > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(0..=max))).await;
        }
    }

    /// Counts the line in `text` and validates it: a valid entry joins the batch, a bad line is
    /// a rejection; a line that is not UTF-8 makes the file a bad one.
    fn record_line(&mut self, read: Read, text: &[u8]) -> Result<(), IngestError> {
        self.line += 1;
        self.recorded += 1;
        self.offset += read.size as u64; // exact, "\r\n" included: the resume offset depends on it
        if !read.kept {
            let max = self.ingest.limits.max_line;
            let why = format!("line is longer than {max} bytes; skipped");
            self.tally.reject(Rejection::new(self.line, why));
            return Ok(());
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| IngestError::Bad(format!("line {}: the file is not UTF-8 text", self.line)))?;
        if let Some(entry) = self.tally.line(self.line, text) {
            self.batch.push(entry);
        }
        Ok(())
    }

    /// Hands the batch to a write, then waits while [`WRITES_IN_FLIGHT`] writes are in flight.
    async fn flush_batch(&mut self) -> Result<(), IngestError> {
        self.send_batch();
        while self.in_flight.writes >= WRITES_IN_FLIGHT {
            self.in_flight.settle_one(&mut self.tally).await?;
        }
        Ok(())
    }

    /// Starts the write of the batch (if any), and a fresh batch.
    fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let entries = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let (store, id, n) = (self.ingest.entries.as_ref(), self.job.id, entries.len() as u64);
        self.in_flight.push(
            Box::pin(async move {
                store.write_batch(id, entries).await?;
                Ok(Finished::Stored(n))
            }),
            true,
        );
    }

    /// Records the next 10 % step once the bytes read reach it: of the decoded lines for plain
    /// files (exact), of the compressed stream for gzip (read ahead in buffer-sized steps, so
    /// coarser). A step reached while the previous record is still in flight is recorded at a
    /// later batch.
    fn report_progress(&mut self) {
        let done = (self.position() * 100).checked_div(self.size).unwrap_or(0);
        if done >= self.next_step && self.next_step < 100 && !self.in_flight.progress {
            let pct = (done / 10 * 10).min(90);
            self.report(pct as u8, format!("{pct}% complete ({} lines)", self.line));
            self.next_step = pct + 10;
        }
    }

    /// Puts a progress record on the job's timeline, alongside the writes: it must not stall the
    /// write pipeline for a DynamoDB round trip. At most one at a time, so they land in order.
    fn report(&mut self, percent: u8, stage: String) {
        let (ingest, job) = (self.ingest, self.job);
        self.in_flight.push(
            Box::pin(async move {
                ingest.progress(job, percent, stage, true).await?;
                Ok(Finished::Progress)
            }),
            false,
        );
    }

    /// How far into the object the run is, for progress.
    fn position(&self) -> u64 {
        if self.gzip {
            self.raw.load(Ordering::Relaxed)
        } else {
            self.offset
        }
    }

    /// Time to stop: `stop_at` has come, and this invocation moved the file forward by at least
    /// [`MIN_LINES_PER_INVOCATION`] (or it would be handed on forever).
    fn past(&self, stop_at: Instant) -> bool {
        self.recorded >= MIN_LINES_PER_INVOCATION && Instant::now() >= stop_at
    }

    /// Stores what was read, notes the progress (on the job, not its timeline) and says where
    /// the next invocation goes on.
    async fn checkpoint(mut self) -> Result<Checkpoint, IngestError> {
        self.send_batch();
        self.in_flight.settle_all(&mut self.tally).await?;
        let pct = (self.offset * 100).checked_div(self.size).map_or(0, |pct| pct.min(99)) as u8;
        let stage = format!("checkpointed at line {} ({pct}%)", self.line);
        self.ingest.progress(self.job, pct, stage, false).await?;
        Ok(Checkpoint {
            job_id: self.job.id,
            attempt: self.job.attempts,
            bucket: self.bucket.into(),
            key: self.key.into(),
            offset: self.offset,
            line: self.line,
            tally: self.tally,
        })
    }

    /// Stores the rest and totals the file. A file none of whose lines is JSON is not JSONL.
    async fn complete(mut self) -> Result<IngestResult, IngestError> {
        self.send_batch();
        self.in_flight.settle_all(&mut self.tally).await?;
        if self.tally.read > 0 && self.tally.non_json == self.tally.read {
            return Err(IngestError::Bad(format!(
                "not a JSONL file: none of its {} lines is JSON",
                self.tally.read
            )));
        }
        let bytes = self.position();
        Ok(self.tally.into_result(bytes))
    }
}

/// A DynamoDB write of the ingest loop: entries, or a progress record.
type Pending<'a> = Pin<Box<dyn Future<Output = Result<Finished, IngestError>> + Send + 'a>>;

enum Finished {
    Stored(u64),
    Progress,
}

/// The writes in flight, and how many of them store entries.
#[derive(Default)]
struct InFlight<'a> {
    futures: FuturesUnordered<Pending<'a>>,
    writes: usize,
    progress: bool,
}

impl<'a> InFlight<'a> {
    fn push(&mut self, future: Pending<'a>, entries: bool) {
        if entries {
            self.writes += 1;
        } else {
            self.progress = true;
        }
        self.futures.push(future);
    }

    /// Waits for one write to finish (there must be one); entries stored are counted.
    async fn settle_one(&mut self, tally: &mut Tally) -> Result<(), IngestError> {
        match self.futures.next().await.expect("a write in flight")? {
            Finished::Stored(n) => {
                self.writes -= 1;
                tally.stored += n;
            }
            Finished::Progress => self.progress = false,
        }
        Ok(())
    }

    async fn settle_all(&mut self, tally: &mut Tally) -> Result<(), IngestError> {
        while !self.futures.is_empty() {
            self.settle_one(tally).await?;
        }
        Ok(())
    }
}

/// Counts of one file, and what is done with each of its lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    read: u64,
    stored: u64,
    rejected: u64,
    non_json: u64,
    first_rejections: Vec<Rejection>,
    levels: BTreeMap<String, u64>,
}

impl Tally {
    /// One line as read (terminator included; `number` is 1-based): blank lines are skipped, the
    /// others validated and counted. Returns the entry to store, if valid. This is the whole
    /// per-line work of the ingest between reading and storing (the benchmark runs exactly this).
    pub fn line(&mut self, number: u64, text: &str) -> Option<LogEntry> {
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return None;
        }
        if line.len() > shared::limits::LINE_STORED {
            self.reject(Rejection::new(
                number,
                format!(
                    "line is {} bytes; entries are stored up to {} bytes",
                    line.len(),
                    shared::limits::LINE_STORED
                ),
            ));
            return None;
        }
        self.add(shared::logs::parse_line(number, line))
    }

    /// Lines read (blank ones aside), and of them rejected.
    pub fn counts(&self) -> (u64, u64) {
        (self.read, self.rejected)
    }

    /// Counts a parsed line; returns the entry to store, if valid.
    fn add(&mut self, parsed: Result<LogEntry, Rejection>) -> Option<LogEntry> {
        match parsed {
            Ok(entry) => {
                self.read += 1;
                match self.levels.get_mut(entry.level.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        self.levels.insert(entry.level.as_str().to_string(), 1);
                    }
                }
                Some(entry)
            }
            Err(rejection) => {
                if rejection.not_json {
                    self.non_json += 1;
                }
                self.reject(rejection);
                None
            }
        }
    }

    /// Counts a rejected line, keeping the first [`KEPT_REJECTIONS`] with their reasons.
    fn reject(&mut self, rejection: Rejection) {
        self.read += 1;
        self.rejected += 1;
        if self.first_rejections.len() < KEPT_REJECTIONS {
            self.first_rejections.push(rejection);
        }
    }

    /// Lines read, stored and rejected so far.
    fn metered(&self) -> [u64; 3] {
        [self.read, self.stored, self.rejected]
    }

    /// This invocation's share of the file as metrics: lines read, stored and rejected since
    /// `began` (a resumed run starts from its checkpoint's counts) and lines read per second.
    fn meter(&self, (at, counts): (Instant, [u64; 3])) {
        let dims = Dims::Kind(JobKind::LogIngest.as_str());
        let [read, stored, rejected] = self.metered();
        let read = read.saturating_sub(counts[0]);
        metrics::put(dims, Metric::IngestLinesRead, read as f64);
        metrics::put(dims, Metric::IngestLinesStored, stored.saturating_sub(counts[1]) as f64);
        metrics::put(
            dims,
            Metric::IngestLinesRejected,
            rejected.saturating_sub(counts[2]) as f64,
        );
        let secs = at.elapsed().as_secs_f64();
        if read > 0 && secs > 0.0 {
            metrics::put(dims, Metric::IngestLinesPerSecond, read as f64 / secs);
        }
    }

    fn into_result(self, bytes: u64) -> IngestResult {
        IngestResult {
            lines_read: self.read,
            lines_stored: self.stored,
            lines_rejected: self.rejected,
            rejected: self.first_rejections,
            levels: self.levels,
            bytes_read: bytes,
        }
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
