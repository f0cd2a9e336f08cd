//! The job: identity, kinds with typed payloads, and the one state machine every writer uses.
//!
//! ```text
//! pending ---------> processing -> completed
//!    |                 ^  |  \----> failed -> queued (retry)
//!    +--> queued ------+  \-------> queued  (automatic retry, attempts < max)
//!    +------+--> failed    (its work can never start: upload never made, message lost)
//!    \------+--> cancelled
//! ```
//! `queued` means waiting again (a retry, an operator's send, an upload on its way); a job
//! created through the API stays `pending` until a worker takes it (`Job::enqueued_at` tells
//! that its message is sent).
//!
//! Everything here is pure: methods change a `Job` value or refuse with [`Error::Conflict`]. The
//! store persists the result with a conditional write on `version`, so a change computed from a
//! stale copy never lands (see `store::JobStore::modify`).
//!
//! - `id.rs` holds [`JobId`];
//! - `status.rs` holds [`JobStatus`], the table of legal moves and the operator's moves;
//! - `kinds/` holds [`JobKind`], [`JobSpec`] and the typed payloads with their validation;
//! - this file holds the [`Job`] itself and its lifecycle (claim, progress, complete, fail,
//!   retry, cancel).

mod id;
mod kinds;
mod status;

pub use id::JobId;
pub use kinds::*;
pub use status::JobStatus;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::auth::Owner;
use crate::clock::serde_ts;
use crate::error::{Error, Result, invalid};
use crate::limits::{self, clip};

/// Attempts a job gets before it is `failed` for good (and its message goes to the DLQ).
pub const MAX_ATTEMPTS: u32 = 3;
/// Timeline entries kept on a job: the first one and the latest ones; the entries dropped in
/// between are counted in `Job::timeline_dropped` (the item must stay small).
pub const TIMELINE_LIMIT: usize = 100;

/// How far a running job is: a percentage and a short stage text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub percent: u8,
    #[serde(default)]
    pub stage: String,
}

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    pub status: JobStatus,
    pub attempt: u32,
    pub message: String,
}

/// A job as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: JobId,
    /// Who it belongs to (the creating token's `sub`; an S3 drop's `uploads/<owner>/` prefix).
    /// `None` for jobs only admins see: made before owners existed, or dropped outside an
    /// owner's prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(flatten)]
    pub spec: JobSpec,
    pub status: JobStatus,
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the work produced, in its kind's shape (one of `JobResult`'s; `Job::typed_result`
    /// reads it typed).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<JobResult>))]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default)]
    pub progress: Progress,
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub scheduled_for: Option<OffsetDateTime>,
    /// When its message was sent while the job stayed `pending` (a new job waits as `pending`
    /// until a worker takes it). `None`: not sent yet, or a job from before this field (those
    /// went to `queued` when sent).
    #[serde(default, with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub enqueued_at: Option<OffsetDateTime>,
    /// While `processing`: the time after which another delivery may take the job over.
    #[serde(default, with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub lease_until: Option<OffsetDateTime>,
    /// The claim that holds the lease: a claim whose write landed but whose answer was lost
    /// recognizes itself on the retry instead of seeing another delivery's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Times the sweeper sent a stale queued job's message again since it was last claimed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sweeps: u32,
    /// Timeline entries dropped from the middle to keep the item small.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeline_dropped: u32,
    /// Bumped by every write; the store's conditional writes compare it.
    pub version: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a delivery may not work on a job right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefused {
    /// Completed, failed or cancelled: acknowledge the message, do nothing.
    Finished(JobStatus),
    /// Another delivery holds a live lease: leave the message for later.
    Busy { lease_until: OffsetDateTime },
}

impl Job {
    /// A new job in `pending`, with its first timeline entry.
    pub fn new(spec: JobSpec, priority: u8, scheduled_for: Option<OffsetDateTime>, now: OffsetDateTime) -> Result<Job> {
        if !(1..=5).contains(&priority) {
            return Err(invalid("priority", "must be between 1 and 5"));
        }
        spec.validate()?;
        let mut job = Job {
            id: JobId::at(now),
            owner: None,
            spec,
            status: JobStatus::Pending,
            priority,
            result: None,
            error: None,
            attempts: 0,
            max_attempts: MAX_ATTEMPTS,
            progress: Progress::default(),
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            scheduled_for,
            enqueued_at: None,
            lease_until: None,
            lease_owner: None,
            timeline: Vec::new(),
            timeline_dropped: 0,
            sweeps: 0,
            version: 0,
        };
        job.record(now, "created");
        Ok(job)
    }

    /// The same job, belonging to `owner`.
    pub fn owned_by(mut self, owner: Owner) -> Job {
        self.owner = Some(owner);
        self
    }

    pub fn kind(&self) -> JobKind {
        self.spec.kind()
    }

    fn record(&mut self, now: OffsetDateTime, message: impl Into<String>) {
        self.timeline.push(TimelineEntry {
            at: now,
            status: self.status,
            attempt: self.attempts,
            message: clip(&message.into(), limits::TIMELINE_MESSAGE),
        });
        if self.timeline.len() > TIMELINE_LIMIT {
            let excess = self.timeline.len() - TIMELINE_LIMIT;
            self.timeline.drain(1..=excess); // keep "created"
            self.timeline_dropped = self.timeline_dropped.saturating_add(excess as u32);
        }
        self.updated_at = now;
    }

    /// Moves to `to` if the state machine allows it; the only way `status` changes.
    pub fn transition(&mut self, to: JobStatus, now: OffsetDateTime, message: impl Into<String>) -> Result<()> {
        if !self.status.can_become(to) {
            return Err(Error::Conflict(format!(
                "job {} is {} and cannot become {}",
                self.id, self.status, to
            )));
        }
        if self.status == JobStatus::Processing {
            self.lease_until = None;
            self.lease_owner = None;
        }
        match to {
            JobStatus::Processing => self.started_at = Some(now),
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => self.completed_at = Some(now),
            JobStatus::Queued | JobStatus::Pending => self.completed_at = None,
        }
        self.status = to;
        self.record(now, message);
        Ok(())
    }

    /// Takes the job for one attempt, with a lease. Refuses finished jobs and live leases;
    /// takes over a `processing` job whose lease has expired (its worker died).
    pub fn claim(&mut self, now: OffsetDateTime, lease: Duration) -> Result<(), ClaimRefused> {
        match self.status {
            JobStatus::Pending | JobStatus::Queued => {
                self.attempts += 1;
                let attempt = self.attempts;
                self.transition(JobStatus::Processing, now, format!("attempt {attempt} started"))
                    .expect("pending/queued -> processing is legal");
            }
            JobStatus::Processing => match self.lease_until {
                Some(until) if until > now => {
                    return Err(ClaimRefused::Busy { lease_until: until });
                }
                _ => {
                    self.attempts += 1;
                    self.started_at = Some(now);
                    let attempt = self.attempts;
                    self.record(now, format!("lease expired; attempt {attempt} started"));
                }
            },
            s @ (JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled) => {
                return Err(ClaimRefused::Finished(s));
            }
        }
        self.lease_until = Some(now + lease);
        self.error = None;
        self.sweeps = 0;
        Ok(())
    }

    /// The sweeper takes back a `processing` job whose attempt stopped responding: `queued` again
    /// with the reason, for a new message to run it.
    pub fn requeue_stalled(&mut self, reason: &str, now: OffsetDateTime) -> Result<()> {
        if self.status != JobStatus::Processing {
            return Err(Error::Conflict(format!(
                "job {} is {}, not processing",
                self.id, self.status
            )));
        }
        let reason = clip(reason, limits::JOB_ERROR);
        self.error = Some(reason.clone());
        self.sweeps = 0;
        self.transition(JobStatus::Queued, now, format!("requeued: {reason}"))
    }

    /// Ends a job that cannot go on (its attempts are used up, its upload never came, its message
    /// was dead-lettered): `failed`, with the reason.
    pub fn fail_stuck(&mut self, reason: &str, now: OffsetDateTime) -> Result<()> {
        self.fail_with(reason, now)
    }

    /// `failed`, with `error` (clipped) on the job and in the timeline.
    fn fail_with(&mut self, error: &str, now: OffsetDateTime) -> Result<()> {
        let error = clip(error, limits::JOB_ERROR);
        self.error = Some(error.clone());
        self.transition(JobStatus::Failed, now, format!("failed: {error}"))
    }

    /// Records that a `pending` job's message was sent: the job stays `pending` (no transition)
    /// until a worker takes it. A job that moved on meanwhile is left as it is.
    pub fn mark_enqueued(&mut self, now: OffsetDateTime) {
        if self.status == JobStatus::Pending && self.enqueued_at.is_none() {
            self.enqueued_at = Some(now);
            self.record(now, "enqueued; waiting for a worker");
        }
    }

    /// Notes that the sweeper sent a stale waiting job's message again (`queued`, or `pending`
    /// with its message sent).
    pub fn note_resent(&mut self, now: OffsetDateTime) -> Result<()> {
        let waiting = match self.status {
            JobStatus::Queued => true,
            JobStatus::Pending => self.enqueued_at.is_some(),
            _ => false,
        };
        if !waiting {
            return Err(Error::Conflict(format!(
                "job {} is {}, not waiting for a worker",
                self.id, self.status
            )));
        }
        self.sweeps += 1;
        let n = self.sweeps;
        self.record(now, format!("not picked up; message sent again by the sweeper ({n})"));
        Ok(())
    }

    /// Checks that the caller's attempt still holds the job (no one took it over).
    pub fn ensure_attempt(&self, attempt: u32) -> Result<()> {
        if self.status == JobStatus::Processing && self.attempts == attempt {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "job {} attempt {attempt} no longer holds the job (status {}, attempt {})",
                self.id, self.status, self.attempts
            )))
        }
    }

    /// Extends the running attempt's lease (a long job handed to a new invocation keeps its claim).
    pub fn renew_lease(&mut self, attempt: u32, now: OffsetDateTime, lease: Duration) -> Result<()> {
        self.ensure_attempt(attempt)?;
        self.lease_until = Some(now + lease);
        self.updated_at = now;
        Ok(())
    }

    /// Records progress of the running attempt, with a timeline entry (callers record steps,
    /// e.g. every 10 %, so the timeline stays short).
    pub fn set_progress(
        &mut self,
        attempt: u32,
        percent: u8,
        stage: impl Into<String>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.note_progress(attempt, percent, stage, now)?;
        let stage = self.progress.stage.clone();
        self.record(now, stage);
        Ok(())
    }

    /// Records progress of the running attempt without a timeline entry: progress replaces
    /// progress (an ingest's checkpoints would otherwise fill the timeline).
    pub fn note_progress(
        &mut self,
        attempt: u32,
        percent: u8,
        stage: impl Into<String>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.ensure_attempt(attempt)?;
        self.progress = Progress {
            percent: percent.min(100),
            stage: clip(&stage.into(), limits::TIMELINE_MESSAGE),
        };
        self.updated_at = now;
        Ok(())
    }

    /// The result as its kind's type (`None` until the job has one).
    pub fn typed_result(&self) -> Result<Option<JobResult>> {
        self.result
            .as_ref()
            .map(|v| JobResult::parse(self.kind(), v))
            .transpose()
    }

    /// The running attempt succeeded.
    pub fn complete(&mut self, attempt: u32, result: &JobResult, now: OffsetDateTime) -> Result<()> {
        self.ensure_attempt(attempt)?;
        self.result = Some(result.to_value());
        self.error = None;
        self.progress = Progress {
            percent: 100,
            stage: "completed".into(),
        };
        self.transition(JobStatus::Completed, now, "completed")
    }

    /// The running attempt failed. Returns `true` if the job will be tried again (back to
    /// `queued`), `false` if it is now `failed` for good.
    pub fn fail_attempt(&mut self, attempt: u32, error: impl Into<String>, now: OffsetDateTime) -> Result<bool> {
        self.ensure_attempt(attempt)?;
        let error = clip(&error.into(), limits::JOB_ERROR);
        self.error = Some(error.clone());
        if self.attempts < self.max_attempts {
            self.transition(
                JobStatus::Queued,
                now,
                format!("attempt {attempt} failed, will retry: {error}"),
            )?;
            Ok(true)
        } else {
            self.transition(
                JobStatus::Failed,
                now,
                format!("attempt {attempt} failed, giving up: {error}"),
            )?;
            Ok(false)
        }
    }

    /// Fails the job for good, whatever attempts are left (the error is permanent).
    pub fn fail_permanently(&mut self, attempt: u32, error: impl Into<String>, now: OffsetDateTime) -> Result<()> {
        self.ensure_attempt(attempt)?;
        self.fail_with(&error.into(), now)
    }

    /// Manual or bulk retry of a failed job: back to `queued` with a fresh set of attempts.
    pub fn retry(&mut self, now: OffsetDateTime) -> Result<()> {
        if self.status != JobStatus::Failed {
            return Err(Error::Conflict(format!(
                "job {} is {}; only failed jobs can be retried",
                self.id, self.status
            )));
        }
        self.attempts = 0;
        self.progress = Progress::default();
        self.transition(JobStatus::Queued, now, "retry requested")
    }

    /// An operator's "run now" of a job scheduled for later: it becomes due now (`scheduled_for`
    /// cleared); its status stays (`pending` or `queued`, waiting for a worker), the timeline
    /// says who asked. Anything but a waiting job scheduled ahead of `now` is a conflict.
    pub fn run_now(&mut self, who: &str, now: OffsetDateTime) -> Result<()> {
        if !matches!(self.status, JobStatus::Pending | JobStatus::Queued) {
            return Err(Error::Conflict(format!(
                "job {} is {}; only a waiting (pending or queued) job can be run now",
                self.id, self.status
            )));
        }
        if !self.scheduled_for.is_some_and(|at| at > now) {
            return Err(Error::Conflict(format!(
                "job {} is not scheduled for later; it runs as soon as a worker takes it",
                self.id
            )));
        }
        self.scheduled_for = None;
        self.updated_at = now;
        self.record(now, format!("run now (was scheduled), asked by {who}"));
        Ok(())
    }

    /// Parked: created `pending` for a start more than 15 minutes ahead ([`crate::queue::MAX_DELAY`],
    /// the longest an SQS message can be delayed) and not sent to a queue yet. Such a job gets no
    /// message at creation (it would only be received and re-delayed every 15 minutes until due);
    /// it sits in the store's wake index and the sweeper sends its message once it is due within
    /// 15 minutes ([`crate::sweep::Verdict::Wake`]). Sending it, running it now or cancelling it
    /// ends the parking. A function of the stored job alone, so its index keys follow it.
    pub fn is_parked(&self) -> bool {
        self.status == JobStatus::Pending
            && self.enqueued_at.is_none()
            && self
                .scheduled_for
                .is_some_and(|at| at - self.created_at > crate::queue::MAX_DELAY)
    }

    /// Waiting (`pending` or `queued`) for a start time later than its last change: scheduled,
    /// not yet due when it was written. It stays so until a worker takes it, it is cancelled or
    /// run now. A function of the stored job alone, so the `scheduled` counter (moved in the same
    /// write as the job) always equals the number of such jobs.
    pub fn is_scheduled(&self) -> bool {
        matches!(self.status, JobStatus::Pending | JobStatus::Queued)
            && self.scheduled_for.is_some_and(|at| at > self.updated_at)
    }

    /// Compensation for a retry whose message could not be sent: back to `failed` with the reason.
    /// Only valid right after [`Job::retry`] (queued, no attempt made).
    pub fn restore_failed(&mut self, reason: String, now: OffsetDateTime) -> Result<()> {
        if self.status != JobStatus::Queued || self.attempts != 0 {
            return Err(Error::Conflict(format!(
                "job {} is {}; nothing to restore",
                self.id, self.status
            )));
        }
        let reason = clip(&reason, limits::JOB_ERROR);
        self.error = Some(reason.clone());
        self.transition(JobStatus::Failed, now, reason)
    }

    /// Cancels a job that no worker has started.
    pub fn cancel(&mut self, now: OffsetDateTime) -> Result<()> {
        if !matches!(self.status, JobStatus::Pending | JobStatus::Queued) {
            return Err(Error::Conflict(format!(
                "job {} is {}; only pending or queued jobs can be cancelled",
                self.id, self.status
            )));
        }
        self.transition(JobStatus::Cancelled, now, "cancelled")
    }

    /// Starts a run of a job split into parts (image jobs). There is no lease: many deliveries work
    /// on the parts at once, and each part's result is recorded once (see `store::parts`).
    /// Returns `true` if this call started the run, `false` if it was already running.
    pub fn start_parts(&mut self, parts: u32, now: OffsetDateTime) -> Result<bool, ClaimRefused> {
        match self.status {
            JobStatus::Pending | JobStatus::Queued => {
                self.attempts += 1;
                let attempt = self.attempts;
                self.transition(
                    JobStatus::Processing,
                    now,
                    format!("attempt {attempt} started: {parts} parts"),
                )
                .expect("pending/queued -> processing is legal");
                self.lease_until = None;
                self.error = None;
                self.result = None;
                self.sweeps = 0;
                self.progress = Progress {
                    percent: 0,
                    stage: format!("0/{parts} parts"),
                };
                Ok(true)
            }
            JobStatus::Processing => Ok(false),
            s @ (JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled) => Err(ClaimRefused::Finished(s)),
        }
    }

    /// Names the current run of a job split into parts: the parts recorded under it belong to
    /// this run only, so a retried job starts counting again. `None` unless processing.
    pub fn run_key(&self) -> Option<String> {
        match self.status {
            JobStatus::Processing => self.last_run_key(),
            _ => None,
        }
    }

    /// The key of the latest run, running or not (`None` if the job never started).
    pub fn last_run_key(&self) -> Option<String> {
        self.started_at.map(|at| at.unix_timestamp_nanos().to_string())
    }

    fn ensure_run(&self, run: &str) -> Result<()> {
        if self.run_key().as_deref() == Some(run) {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "job {} is {} and no longer in run {run}",
                self.id, self.status
            )))
        }
    }

    /// Records that `done` of `total` parts of run `run` are finished (never moves backwards).
    pub fn part_progress(&mut self, run: &str, done: u32, total: u32, now: OffsetDateTime) -> Result<()> {
        self.ensure_run(run)?;
        let percent = (u64::from(done) * 100 / u64::from(total.max(1))).min(99) as u8;
        if percent > self.progress.percent || self.progress.stage.is_empty() {
            self.progress = Progress {
                percent,
                stage: format!("{done}/{total} parts"),
            };
            self.updated_at = now;
        }
        Ok(())
    }

    /// Ends run `run` once every part is recorded: `completed`, or `failed` with `error` (the
    /// result, with what succeeded, is kept either way).
    pub fn finish_parts(
        &mut self,
        run: &str,
        result: &ImageJobResult,
        error: Option<String>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.ensure_run(run)?;
        self.result = Some(JobResult::Image(result.clone()).to_value());
        // Honest about a failure: the share of images measured, and a stage that says failed
        // (a failed job never reads "100 % completed").
        let images = result.images_ok + result.images_failed;
        self.progress = match error {
            None => Progress {
                percent: 100,
                stage: "completed".into(),
            },
            Some(_) => Progress {
                percent: if images == 0 {
                    0
                } else {
                    (result.images_ok * 100 / images).min(99) as u8
                },
                stage: format!("failed: {} of {images} images measured", result.images_ok),
            },
        };
        match error {
            None => {
                self.error = None;
                self.transition(JobStatus::Completed, now, "completed")
            }
            Some(error) => self.fail_with(&error, now),
        }
    }

    /// An operator's status change (`PUT /jobs/{id}/status`), through the same state machine:
    /// `queued` retries a failed job or sends a pending one, `failed` ends a job that will not
    /// finish (a late worker's result is then refused), `cancelled` stops one not yet started.
    pub fn set_status_manually(&mut self, to: JobStatus, who: &str, now: OffsetDateTime) -> Result<()> {
        if !self.status.operator_moves().contains(&to) {
            return Err(Error::Conflict(format!(
                "job {} is {} and an operator cannot make it {to}",
                self.id, self.status
            )));
        }
        if to == JobStatus::Queued && self.status == JobStatus::Pending && self.enqueued_at.is_some() {
            return Err(Error::Conflict(format!(
                "job {} is pending with its message sent; it waits for a worker",
                self.id
            )));
        }
        match to {
            JobStatus::Queued if self.status == JobStatus::Failed => self.retry(now),
            JobStatus::Queued => self.transition(to, now, format!("queued by {who}")),
            JobStatus::Failed => self.fail_with(&format!("failed by an operator ({who})"), now),
            _ => self.cancel(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn archive() -> JobSpec {
        JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap()
    }

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn state_machine_allows_exactly_the_documented_moves() {
        use JobStatus::*;
        let legal = [
            (Pending, Queued),
            (Pending, Processing),
            (Queued, Processing),
            (Processing, Completed),
            (Processing, Failed),
            (Processing, Queued),
            (Pending, Cancelled),
            (Queued, Cancelled),
            (Pending, Failed),
            (Queued, Failed),
            (Failed, Queued),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_job_is_parked_while_unsent_and_due_more_than_15_minutes_after_its_creation() {
        let at = |mins: i64| Job::new(archive(), 3, Some(t(mins * 60)), t(0)).unwrap();
        assert!(
            !Job::new(archive(), 3, None, t(0)).unwrap().is_parked(),
            "not scheduled"
        );
        assert!(!at(15).is_parked(), "one delayed message reaches it");
        assert!(at(16).is_parked());
        let mut sent = at(60);
        sent.mark_enqueued(t(2700));
        assert!(!sent.is_parked(), "its message is sent");
        let mut ran = at(60);
        ran.run_now("alice", t(5)).unwrap();
        assert!(!ran.is_parked(), "run now");
        let mut cancelled = at(60);
        cancelled.cancel(t(5)).unwrap();
        assert!(!cancelled.is_parked(), "cancelled");
    }

    #[test]
    fn a_failed_image_job_does_not_read_100_percent_completed() {
        let spec = JobSpec::from_json(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["http://a/b.jpg", "http://a/c.jpg", "http://a/d.jpg", "http://a/e.jpg"], "visit_time": "t"}]}),
        )
        .unwrap();
        let mut ended = Vec::new();
        for failed in [0u64, 3] {
            let mut job = Job::new(spec.clone(), 3, None, t(0)).unwrap();
            job.start_parts(1, t(1)).unwrap();
            let run = job.run_key().unwrap();
            let result = ImageJobResult {
                images_ok: 4 - failed,
                images_failed: failed,
                stores: 1,
                stores_failed: u64::from(failed > 0),
                parts: 1,
                ..ImageJobResult::default()
            };
            let error = (failed > 0).then(|| "S1: 3 images failed".to_string());
            job.finish_parts(&run, &result, error, t(2)).unwrap();
            ended.push((job.status, job.progress.percent, job.progress.stage.clone()));
        }
        assert_eq!(ended[0], (JobStatus::Completed, 100, "completed".to_string()));
        assert_eq!(
            ended[1],
            (JobStatus::Failed, 25, "failed: 1 of 4 images measured".to_string())
        );
    }

    #[test]
    fn payload_errors_name_the_field() {
        let err = JobSpec::from_json("archive", json!({"asset_id": "a"})).unwrap_err();
        assert!(err.to_string().contains("source"), "{err}");
        let err = JobSpec::from_json("archive", json!({"asset_id": "a", "source": "http://x"})).unwrap_err();
        assert!(err.to_string().starts_with("payload.source"), "{err}");
        let err = JobSpec::from_json(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": [1], "visit_time": ""}]}),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("payload.visits[0].image_url[0]"), "{err}");
        let err = JobSpec::from_json(
            "image",
            json!({"count": 2, "visits": [{"store_id": "S1", "image_url": ["http://a/b.jpg"], "visit_time": "t"}]}),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("payload.count"), "{err}");
        assert!(
            JobSpec::from_json("fax", json!({}))
                .unwrap_err()
                .to_string()
                .contains("unknown kind")
        );
    }

    #[test]
    fn a_new_jobs_id_sorts_as_its_created_at_does() {
        let jobs: Vec<Job> = [5, 0, 3, 3, 1]
            .iter()
            .map(|&s| Job::new(archive(), 3, None, t(s)).unwrap())
            .collect();
        let mut by_id = jobs.clone();
        by_id.sort_by_key(|j| j.id);
        let mut by_key = jobs.clone();
        by_key.sort_by_key(|j| (j.created_at, j.id));
        assert_eq!(by_id, by_key);
        assert_eq!(by_id[0].created_at, t(0));
    }

    #[test]
    fn job_json_has_kind_and_payload_at_top_level_and_round_trips() {
        let job = Job::new(archive(), 3, None, t(0)).unwrap();
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["kind"], "archive");
        assert_eq!(v["payload"]["asset_id"], "a1");
        assert_eq!(v["status"], "pending");
        let back: Job = serde_json::from_value(v).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn given_a_failing_job_when_it_fails_three_times_then_it_is_failed_for_good() {
        let mut job = Job::new(archive(), 3, None, t(0)).unwrap();
        job.transition(JobStatus::Queued, t(1), "enqueued").unwrap();
        for attempt in 1..=3 {
            job.claim(t(attempt as i64 * 10), Duration::seconds(5)).unwrap();
            assert_eq!(job.attempts, attempt);
            let again = job.fail_attempt(attempt, "boom", t(attempt as i64 * 10 + 1)).unwrap();
            assert_eq!(again, attempt < 3);
        }
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some("boom"));
        assert!(job.completed_at.is_some());
        job.retry(t(100)).unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Queued, 0));
    }

    #[test]
    fn claims_respect_live_leases_and_take_over_expired_ones() {
        let mut job = Job::new(archive(), 3, None, t(0)).unwrap();
        job.claim(t(0), Duration::seconds(30)).unwrap();
        let mut dup = job.clone();
        assert!(matches!(
            dup.claim(t(10), Duration::seconds(30)),
            Err(ClaimRefused::Busy { .. })
        ));
        dup.claim(t(31), Duration::seconds(30)).unwrap();
        assert_eq!(dup.attempts, 2);
        // the first attempt lost the job and may not complete it
        assert!(dup.complete(1, &ArchiveResult::example(), t(32)).is_err());
        dup.complete(2, &ArchiveResult::example(), t(33)).unwrap();
        assert_eq!(
            dup.claim(t(40), Duration::seconds(30)),
            Err(ClaimRefused::Finished(JobStatus::Completed))
        );
    }

    #[test]
    fn only_pending_or_queued_jobs_cancel() {
        let mut job = Job::new(archive(), 3, None, t(0)).unwrap();
        job.cancel(t(1)).unwrap();
        assert!(job.cancel(t(2)).is_err());
        let mut running = Job::new(archive(), 3, None, t(0)).unwrap();
        running.claim(t(1), Duration::seconds(30)).unwrap();
        assert!(matches!(running.cancel(t(2)), Err(Error::Conflict(_))));
    }

    #[test]
    fn priority_is_bounded() {
        assert!(Job::new(archive(), 0, None, t(0)).is_err());
        assert!(Job::new(archive(), 6, None, t(0)).is_err());
    }
}
