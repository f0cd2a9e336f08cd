//! The sweeper's rules: what to do with a job that is not moving, and with a message that reached
//! a dead-letter queue. Every accepted job ends in `completed`, `failed` or `cancelled`; this is
//! the backstop for everything the normal paths cannot see (a function that crashed, a message
//! that was lost or dead-lettered, an upload that never came, a submit cut off half way).
//!
//! | job | stale when | then |
//! |---|---|---|
//! | `pending`, parked (due more than 15 min after creation, no message yet) | due within 15 min (SQS's longest delay; from the wake index) | send its delayed message, stays `pending` |
//! | `pending`, never sent (no `enqueued_at`) | created more than `pending` ago (the submit died before enqueueing) | enqueue, `queued` |
//! | `pending` sent, or `queued`; due | not updated for `queued` (its message was lost, its upload never made) | send its message again; after 3 times, `failed` |
//! | `pending` sent, or `queued`; scheduled later | never (visibly scheduled) | — |
//! | `processing`, with a lease | lease expired more than `lease_grace` ago (its worker died and SQS did not bring it back) | `queued` + a message while attempts remain, else `failed` |
//! | `processing`, in parts (image) | no part finished for `parts_stalled` (a part was dead-lettered) | the same |
//!
//! A job "past its bound" (the console's flag, [`past_bound`]) is one whose verdict is not
//! [`Verdict::Fine`]: the sweeper acts on it at its next run; the console lists the same jobs
//! the sweeper looks at ([`candidates`]).
//!
//! [`verdict`] is pure; [`Sweeper`] applies it through the store's conditional writes, deciding
//! again on the fresh job inside each write, so a job that moved meanwhile is left alone.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::clock;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::metrics;
use crate::queue::{JobQueue, MAX_DELAY};
use crate::store::JobStore;

/// Times a stale queued job's message is sent again before the job is failed.
pub const MAX_RESENDS: u32 = 3;
/// Jobs looked at per status in one sweep (oldest first).
pub const SWEEP_PAGE: usize = 500;
/// Parked jobs sent at once (each a send and a write).
pub const WAKE_AT_ONCE: usize = 16;
/// Pages of parked jobs ([`SWEEP_PAGE`] each) one sweep sends at most: 10,000 a run, so a crowd
/// due at the same time (more than the page) is sent within its 15 minutes.
pub const WAKE_PAGES: usize = 20;

/// How long each state may stand still before the sweeper acts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub pending: Duration,
    pub queued: Duration,
    pub lease_grace: Duration,
    pub parts_stalled: Duration,
}

impl Default for Bounds {
    /// Sized to the template: worker and ingest visibility timeouts (360 s, 1,800 s) bring a
    /// crashed delivery back on their own before the sweeper steps in; a presigned upload URL
    /// lives 15 minutes.
    fn default() -> Self {
        Bounds {
            pending: Duration::minutes(2),
            queued: Duration::minutes(20),
            lease_grace: Duration::minutes(5),
            parts_stalled: Duration::minutes(25),
        }
    }
}

impl Bounds {
    /// The defaults, each overridable in seconds: `SWEEP_PENDING_SECONDS`,
    /// `SWEEP_QUEUED_SECONDS`, `SWEEP_LEASE_GRACE_SECONDS`, `SWEEP_PARTS_STALLED_SECONDS`.
    pub fn from_env() -> Result<Bounds> {
        let d = Bounds::default();
        let secs = |name: &str, default: Duration| -> Result<Duration> {
            Ok(Duration::seconds(crate::settings::optional(
                name,
                default.whole_seconds(),
            )?))
        };
        Ok(Bounds {
            pending: secs("SWEEP_PENDING_SECONDS", d.pending)?,
            queued: secs("SWEEP_QUEUED_SECONDS", d.queued)?,
            lease_grace: secs("SWEEP_LEASE_GRACE_SECONDS", d.lease_grace)?,
            parts_stalled: secs("SWEEP_PARTS_STALLED_SECONDS", d.parts_stalled)?,
        })
    }
}

/// What the sweeper does with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Moving, finished, or visibly scheduled: nothing.
    Fine,
    /// Parked and now due within SQS's longest delay: send its (delayed) message; it stays `pending`.
    Wake,
    /// Created but never enqueued: enqueue it and mark it `queued`.
    Enqueue,
    /// Queued but not picked up: send its message again.
    Resend,
    /// Its attempt stopped responding and attempts remain: `queued` again, with a new message.
    Requeue(String),
    /// No way forward: `failed` with this reason.
    Fail(String),
}

/// The rule for one job at `now` (see the module's table).
pub fn verdict(job: &Job, now: OffsetDateTime, bounds: &Bounds) -> Verdict {
    // A job waiting for a worker with its message sent: a new one (`pending` with
    // `enqueued_at`) or one waiting again (`queued`).
    let sent_and_waiting = match job.status {
        JobStatus::Queued => true,
        JobStatus::Pending => job.enqueued_at.is_some(),
        _ => false,
    };
    match job.status {
        JobStatus::Pending if job.is_parked() => {
            if job.scheduled_for.is_some_and(|at| at - now <= MAX_DELAY) {
                Verdict::Wake
            } else {
                Verdict::Fine
            }
        }
        JobStatus::Pending if !sent_and_waiting => {
            if now - job.created_at > bounds.pending {
                Verdict::Enqueue
            } else {
                Verdict::Fine
            }
        }
        _ if sent_and_waiting => {
            if job.scheduled_for.is_some_and(|at| at > now) || now - job.updated_at <= bounds.queued {
                Verdict::Fine
            } else if job.sweeps >= MAX_RESENDS {
                Verdict::Fail(format!(
                    "never picked up: its message was sent {} times and no run started",
                    job.sweeps + 1
                ))
            } else {
                Verdict::Resend
            }
        }
        JobStatus::Processing => {
            let stalled = match job.lease_until {
                Some(until) if now - until > bounds.lease_grace => Some(format!(
                    "attempt {} stopped responding (its lease ended at {})",
                    job.attempts,
                    clock::format(until)
                )),
                Some(_) => None,
                None if now - job.updated_at > bounds.parts_stalled => Some(format!(
                    "attempt {} made no progress for {} ({})",
                    job.attempts,
                    span(bounds.parts_stalled, ("seconds", "minutes")),
                    if job.progress.stage.is_empty() {
                        "no progress"
                    } else {
                        &job.progress.stage
                    }
                )),
                None => None,
            };
            match stalled {
                None => Verdict::Fine,
                Some(why) if job.attempts < job.max_attempts => Verdict::Requeue(why),
                Some(why) => Verdict::Fail(format!("{why}; no attempts left")),
            }
        }
        _ => Verdict::Fine,
    }
}

/// Why `job` is past its bound at `now` (the sweeper acts on it at its next run), in words; `None`
/// while it is within every bound ([`verdict`] is [`Verdict::Fine`]). The one rule: the console's
/// flag and the sweeper's action come from the same [`verdict`].
pub fn past_bound(job: &Job, now: OffsetDateTime, bounds: &Bounds) -> Option<String> {
    let minutes = |d: Duration| span(d, ("s", "min"));
    match verdict(job, now, bounds) {
        // Waking a parked job is its normal path, not a job left behind.
        Verdict::Fine | Verdict::Wake => None,
        Verdict::Enqueue => Some(format!(
            "never sent to a queue: created {} ago (bound: {})",
            minutes(now - job.created_at),
            minutes(bounds.pending)
        )),
        Verdict::Resend => Some(format!(
            "waiting for a worker for {} (bound: {})",
            minutes(now - job.updated_at),
            minutes(bounds.queued)
        )),
        Verdict::Requeue(why) | Verdict::Fail(why) => Some(why),
    }
}

/// The jobs one sweep looks at: `pending`, `queued` and `processing`, each status's oldest
/// first from the status index (never a scan), at most `per_status` of each, each with the
/// statuses' cut-offs the sweeper uses. What [`Sweeper::sweep`] and the console's list of jobs
/// past their bound read.
pub async fn candidates(
    store: &dyn JobStore,
    now: OffsetDateTime,
    bounds: &Bounds,
    per_status: usize,
) -> Result<Vec<Job>> {
    let statuses = [
        (JobStatus::Pending, now - bounds.pending),
        (JobStatus::Queued, now - bounds.queued),
        (JobStatus::Processing, now),
    ];
    let mut jobs = Vec::new();
    for (status, created_before) in statuses {
        jobs.extend(store.oldest(status, created_before, per_status).await?);
    }
    Ok(jobs)
}

/// A duration in words, whole minutes, or seconds under 2 minutes (a test stack's bounds), in
/// the `(seconds, minutes)` units given: "25 minutes", "20 seconds"; "10 min", "45 s".
fn span(d: Duration, (seconds, minutes): (&str, &str)) -> String {
    match d.whole_seconds() {
        s if s < 120 => format!("{s} {seconds}"),
        s => format!("{} {minutes}", s / 60),
    }
}

/// What a message in a dead-letter queue means for its job: nothing if the job is finished, a
/// live attempt holds it, or the message belongs to an earlier run (`run`, for parts); else the
/// job fails with the reason (its retry is the redrive).
pub fn dead_lettered(job: &Job, what: &str, run: Option<&str>, receives: u32, now: OffsetDateTime) -> Verdict {
    let live = job.status == JobStatus::Processing && job.lease_until.is_some_and(|until| until > now);
    let stale = run.is_some_and(|run| job.run_key().as_deref() != Some(run));
    if job.status.is_finished() || live || stale {
        return Verdict::Fine;
    }
    let last = job
        .error
        .as_deref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    Verdict::Fail(format!("{what} was dead-lettered after {receives} deliveries{last}"))
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub looked_at: usize,
    /// Parked jobs whose message was sent (due within 15 minutes).
    pub woken: usize,
    pub enqueued: usize,
    pub resent: usize,
    pub requeued: usize,
    pub failed: usize,
    /// Jobs that changed between the look and the write (left alone) or whose write failed.
    pub skipped: usize,
}

/// Applies the rules to the jobs the status index shows.
#[derive(Clone)]
pub struct Sweeper {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub bounds: Bounds,
}

impl Sweeper {
    /// One sweep over `pending`, `queued` and `processing`, oldest first, from the status index.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<Report> {
        let mut report = Report::default();
        // The parked jobs due soon first (their own index: however many jobs are parked, the
        // soonest are found), then the oldest of each waiting or running status.
        let woken = self.wake(now, &mut report).await?;
        for job in candidates(self.store.as_ref(), now, &self.bounds, SWEEP_PAGE).await? {
            if woken.contains(&job.id) {
                continue;
            }
            report.looked_at += 1;
            let verdict = verdict(&job, now, &self.bounds);
            if verdict == Verdict::Fine {
                continue;
            }
            match self.apply(&job, &verdict, now).await {
                Ok(true) => {
                    let action = match verdict {
                        Verdict::Wake => {
                            report.woken += 1;
                            "woken"
                        }
                        Verdict::Enqueue => {
                            report.enqueued += 1;
                            "enqueued"
                        }
                        Verdict::Resend => {
                            report.resent += 1;
                            "resent"
                        }
                        Verdict::Requeue(_) => {
                            report.requeued += 1;
                            "requeued"
                        }
                        Verdict::Fail(_) => {
                            report.failed += 1;
                            "failed"
                        }
                        Verdict::Fine => continue,
                    };
                    metrics::put(metrics::Dims::Action(action), metrics::Metric::SweeperActions, 1.0);
                }
                Ok(false) => report.skipped += 1,
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %e, ?verdict, "sweep of a job failed; next sweep tries again");
                    report.skipped += 1;
                }
            }
        }
        Ok(report)
    }

    /// Sends the parked jobs due within 15 minutes ([`Verdict::Wake`]), page after page of the
    /// wake index (each page after the last job of the one before, so an index not yet caught up
    /// with the last page's writes does not send a job twice), [`WAKE_AT_ONCE`] at a time, at
    /// most [`WAKE_PAGES`] pages a sweep; the jobs it looked at.
    async fn wake(&self, now: OffsetDateTime, report: &mut Report) -> Result<std::collections::HashSet<JobId>> {
        use futures::StreamExt;
        let mut seen = std::collections::HashSet::new();
        let mut after = None;
        for _ in 0..WAKE_PAGES {
            let due = self.store.due_to_wake(after, now + MAX_DELAY, SWEEP_PAGE).await?;
            let Some(last) = due.last() else { break };
            after = Some((last.scheduled_for.unwrap_or(now), last.id));
            let full = due.len() == SWEEP_PAGE;
            let outcomes: Vec<(JobId, Result<bool>)> =
                futures::stream::iter(due.iter().filter(|j| verdict(j, now, &self.bounds) == Verdict::Wake))
                    .map(|job| async move { (job.id, self.apply(job, &Verdict::Wake, now).await) })
                    .buffer_unordered(WAKE_AT_ONCE)
                    .collect()
                    .await;
            report.looked_at += due.len();
            seen.extend(due.iter().map(|j| j.id));
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(true) => report.woken += 1,
                    Ok(false) => report.skipped += 1,
                    Err(e) => {
                        tracing::error!(job_id = %id, error = %e, "sending a parked job failed; next sweep tries again");
                        report.skipped += 1;
                    }
                }
            }
            if !full {
                break;
            }
        }
        if report.woken > 0 {
            metrics::put(
                metrics::Dims::Action("woken"),
                metrics::Metric::SweeperActions,
                report.woken as f64,
            );
        }
        Ok(seen)
    }

    /// Carries out `verdict` if the job still deserves it (decided again on the job as it is
    /// inside the conditional write). `Ok(false)`: it moved meanwhile.
    pub async fn apply(&self, job: &Job, verdict: &Verdict, now: OffsetDateTime) -> Result<bool> {
        if *verdict == Verdict::Fine {
            return Ok(false);
        }
        // A job that needs its message gets it before the write that says so: if the write then
        // fails, the message finds the job as it was, which is harmless.
        if matches!(verdict, Verdict::Wake | Verdict::Enqueue | Verdict::Resend) {
            self.queue.enqueue(job, clock::now()).await?;
        }
        let bounds = self.bounds;
        let outcome = self
            .store
            .modify(job.id, &mut |j| {
                if self::verdict(j, now, &bounds) != *verdict {
                    return Err(Error::Conflict(format!("job {} changed meanwhile", j.id)));
                }
                match verdict {
                    Verdict::Fine => Ok(()),
                    Verdict::Wake => {
                        j.mark_enqueued(now);
                        Ok(())
                    }
                    Verdict::Enqueue => j.transition(
                        JobStatus::Queued,
                        now,
                        "enqueued by the sweeper (the submit did not finish)",
                    ),
                    Verdict::Resend => j.note_resent(now),
                    Verdict::Requeue(why) => j.requeue_stalled(why, now),
                    Verdict::Fail(why) => j.fail_stuck(why, now),
                }
            })
            .await;
        match outcome {
            Ok(j) => {
                if matches!(verdict, Verdict::Requeue(_)) {
                    // If this send fails, the job is queued without a message: the next sweeps
                    // resend it.
                    self.queue.enqueue(&j, clock::now()).await?;
                }
                tracing::warn!(job_id = %j.id, kind = %j.kind(), status = %j.status, ?verdict, "swept");
                Ok(true)
            }
            Err(Error::Conflict(_)) | Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A message from a dead-letter queue about job `id` (`what` names it: "its message", "part
    /// 3"; `run`: the run a part belonged to). Returns whether the job was ended.
    pub async fn dead_letter(
        &self,
        id: crate::job::JobId,
        what: &str,
        run: Option<&str>,
        receives: u32,
    ) -> Result<bool> {
        let now = clock::now();
        let Some(job) = self.store.get(id).await? else {
            tracing::warn!(job_id = %id, "dead-lettered message of a job that does not exist");
            return Ok(false);
        };
        let Verdict::Fail(why) = dead_lettered(&job, what, run, receives, now) else {
            tracing::info!(job_id = %id, status = %job.status, "dead-lettered message of a job that is finished or running");
            return Ok(false);
        };
        let ended = self
            .store
            .modify(id, &mut |j| match dead_lettered(j, what, run, receives, now) {
                Verdict::Fail(_) => j.fail_stuck(&why, now),
                _ => Err(Error::Conflict("changed meanwhile".into())),
            })
            .await;
        match ended {
            Ok(_) => {
                tracing::warn!(job_id = %id, %why, "job failed: its message was dead-lettered");
                Ok(true)
            }
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobSpec;
    use crate::store::memory::{MemoryJobStore, MemoryQueue};
    use serde_json::json;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn job(kind: &str, payload: serde_json::Value) -> Job {
        Job::new(JobSpec::from_json(kind, payload).unwrap(), 3, None, t(0)).unwrap()
    }

    fn archive() -> Job {
        job("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"}))
    }

    fn image() -> Job {
        job(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["http://a/b.jpg"], "visit_time": "t"}]}),
        )
    }

    fn ingest() -> Job {
        job("log_ingest", json!({"bucket": "b", "key": "uploads/x/a.jsonl"}))
    }

    fn sweeper() -> (Sweeper, Arc<MemoryJobStore>, Arc<MemoryQueue>) {
        let store = Arc::new(MemoryJobStore::new());
        let queue = Arc::new(MemoryQueue::new());
        let s = Sweeper {
            store: store.clone(),
            queue: queue.clone(),
            bounds: Bounds::default(),
        };
        (s, store, queue)
    }

    #[test]
    fn fresh_and_scheduled_jobs_are_left_alone() {
        let b = Bounds::default();
        let mut j = archive();
        assert_eq!(verdict(&j, t(60), &b), Verdict::Fine);
        j.transition(JobStatus::Queued, t(1), "enqueued").unwrap();
        j.scheduled_for = Some(t(86_400));
        assert_eq!(verdict(&j, t(7_200), &b), Verdict::Fine);
        j.scheduled_for = None;
        assert_eq!(verdict(&j, t(600), &b), Verdict::Fine);
        assert_eq!(verdict(&j, t(1_300), &b), Verdict::Resend);
    }

    /// The waiting states, one row each: (what the job is, seconds after creation, verdict).
    #[test]
    fn verdict_table_for_jobs_waiting_for_a_worker() {
        let b = Bounds::default(); // pending 2 min, queued 20 min
        let never_sent = archive();
        let mut sent = archive();
        sent.mark_enqueued(t(1));
        let mut sent_scheduled = sent.clone();
        sent_scheduled.scheduled_for = Some(t(86_400));
        let mut sent_resent_3 = sent.clone();
        sent_resent_3.sweeps = MAX_RESENDS;
        let mut queued = archive();
        queued.transition(JobStatus::Queued, t(1), "retry").unwrap();
        let mut queued_resent_3 = queued.clone();
        queued_resent_3.sweeps = MAX_RESENDS;
        let fail = |why: &str| Verdict::Fail(why.to_string());
        let never = "never picked up: its message was sent 4 times and no run started";
        let rows: [(&str, &Job, i64, Verdict); 12] = [
            ("pending, never sent, fresh", &never_sent, 60, Verdict::Fine),
            (
                "pending, never sent, past the pending bound",
                &never_sent,
                121,
                Verdict::Enqueue,
            ),
            ("pending, sent, past the pending bound", &sent, 600, Verdict::Fine),
            ("pending, sent, within the queued bound", &sent, 1_201, Verdict::Fine),
            ("pending, sent, past the queued bound", &sent, 1_202, Verdict::Resend),
            ("pending, sent, scheduled later", &sent_scheduled, 7_200, Verdict::Fine),
            ("pending, sent, resent 3 times", &sent_resent_3, 1_202, fail(never)),
            ("queued, fresh", &queued, 600, Verdict::Fine),
            ("queued, past the queued bound", &queued, 1_202, Verdict::Resend),
            ("queued, resent 3 times", &queued_resent_3, 1_202, fail(never)),
            (
                "queued (sent), past the pending bound only",
                &queued,
                121,
                Verdict::Fine,
            ),
            ("pending, never sent, long ago", &never_sent, 86_400, Verdict::Enqueue),
        ];
        for (what, job, at, expected) in rows {
            assert_eq!(verdict(job, t(at), &b), expected, "{what}");
        }
    }

    /// The console's flag is the verdict in words: set exactly when the sweeper would act.
    #[test]
    fn past_bound_is_the_sweepers_verdict_in_words() {
        let b = Bounds::default();
        let never_sent = archive();
        let mut queued = archive();
        queued.transition(JobStatus::Queued, t(1), "retry").unwrap();
        let mut scheduled = queued.clone();
        scheduled.scheduled_for = Some(t(86_400));
        let mut leased = archive();
        leased.claim(t(0), Duration::seconds(90)).unwrap();
        for (job, at) in [(&never_sent, 60), (&never_sent, 121), (&queued, 600), (&queued, 1_202)]
            .into_iter()
            .chain([(&scheduled, 7_200), (&leased, 300), (&leased, 400)])
        {
            let flag = past_bound(job, t(at), &b);
            assert_eq!(
                flag.is_some(),
                verdict(job, t(at), &b) != Verdict::Fine,
                "{} at {at}: {flag:?}",
                job.status
            );
        }
        assert_eq!(
            past_bound(&never_sent, t(600), &b).as_deref(),
            Some("never sent to a queue: created 10 min ago (bound: 2 min)")
        );
        assert_eq!(
            past_bound(&queued, t(1_801), &b).as_deref(),
            Some("waiting for a worker for 30 min (bound: 20 min)")
        );
        assert!(past_bound(&leased, t(400), &b).unwrap().contains("stopped responding"));
    }

    #[test]
    fn resending_a_sent_pending_job_keeps_it_pending_and_counts() {
        let mut j = archive();
        assert!(j.note_resent(t(5)).is_err(), "never sent: it is enqueued, not resent");
        j.mark_enqueued(t(1));
        j.note_resent(t(1_300)).unwrap();
        assert_eq!((j.status, j.sweeps), (JobStatus::Pending, 1));
        j.sweeps = MAX_RESENDS;
        j.fail_stuck("never picked up", t(5_000)).unwrap();
        assert_eq!(j.status, JobStatus::Failed);
    }

    #[test]
    fn an_expired_lease_is_requeued_while_attempts_remain_then_failed() {
        let b = Bounds::default();
        let mut j = archive();
        j.claim(t(0), Duration::seconds(90)).unwrap();
        assert_eq!(
            verdict(&j, t(300), &b),
            Verdict::Fine,
            "lease expired, but SQS may still bring it back"
        );
        assert!(matches!(verdict(&j, t(400), &b), Verdict::Requeue(why) if why.contains("stopped responding")));
        j.attempts = 3;
        assert!(matches!(verdict(&j, t(400), &b), Verdict::Fail(why) if why.ends_with("no attempts left")));
    }

    #[test]
    fn a_run_in_parts_without_progress_is_requeued() {
        let b = Bounds::default();
        let mut j = image();
        j.start_parts(3, t(0)).unwrap();
        assert_eq!(verdict(&j, t(1_000), &b), Verdict::Fine);
        assert!(
            matches!(verdict(&j, t(1_501), &b), Verdict::Requeue(why) if why.contains("no progress for 25 minutes"))
        );
    }

    #[test]
    fn a_queued_job_resent_three_times_fails() {
        let b = Bounds::default();
        let mut j = ingest();
        j.transition(JobStatus::Queued, t(0), "waiting for the presigned upload")
            .unwrap();
        j.sweeps = MAX_RESENDS;
        assert!(matches!(verdict(&j, t(1_300), &b), Verdict::Fail(why) if why.starts_with("never picked up")));
    }

    #[tokio::test]
    async fn a_sweep_ends_or_restarts_every_stuck_job_and_leaves_the_rest() {
        let (s, store, queue) = sweeper();
        let now = clock::now();
        let ago = |mins: i64| now - Duration::minutes(mins);
        // pending for 10 minutes: the submit died before enqueueing
        let mut pending = archive();
        pending.created_at = ago(10);
        store.put(pending.clone());
        // queued 30 minutes ago, never picked up: an ingest whose presigned upload never came
        let mut lost = ingest();
        lost.created_at = ago(30);
        lost.transition(JobStatus::Queued, ago(30), "waiting for the presigned upload")
            .unwrap();
        store.put(lost.clone());
        // an archive whose worker died on its last attempt
        let mut dead = archive();
        dead.created_at = ago(40);
        dead.attempts = 2;
        dead.claim(ago(30), Duration::seconds(90)).unwrap();
        store.put(dead.clone());
        // an image job with a dead-lettered part
        let mut parts = image();
        parts.created_at = ago(60);
        parts.start_parts(4, ago(50)).unwrap();
        store.put(parts.clone());
        // sent 30 minutes ago and still pending: its message was lost
        let mut waiting = archive();
        waiting.created_at = ago(30);
        waiting.mark_enqueued(ago(30));
        store.put(waiting.clone());
        // healthy ones
        let mut running = archive();
        running.created_at = ago(1);
        running.claim(now, Duration::seconds(90)).unwrap();
        store.put(running.clone());
        let mut fresh = archive();
        fresh.created_at = ago(1);
        store.put(fresh.clone());

        let report = s.sweep(now).await.unwrap();
        assert_eq!(
            (report.enqueued, report.resent, report.requeued, report.failed),
            (1, 2, 1, 1),
            "{report:?}"
        );
        let get = |id| store.all().into_iter().find(|j: &Job| j.id == id).unwrap();
        assert_eq!(get(pending.id).status, JobStatus::Queued);
        assert_eq!(get(lost.id).status, JobStatus::Queued);
        assert_eq!(get(lost.id).sweeps, 1);
        assert_eq!(
            (get(waiting.id).status, get(waiting.id).sweeps),
            (JobStatus::Pending, 1),
            "a resent new job stays pending"
        );
        assert_eq!(get(dead.id).status, JobStatus::Failed);
        assert!(get(dead.id).error.unwrap().contains("stopped responding"));
        assert_eq!(get(parts.id).status, JobStatus::Queued);
        assert_eq!(get(running.id), running);
        assert_eq!(get(fresh.id), fresh);
        let sent = queue.sent.lock().unwrap().clone();
        let to = |id| {
            sent.iter()
                .filter(|(m, _, _)| m.job_id == id)
                .map(|(_, p, _)| *p)
                .collect::<Vec<_>>()
        };
        assert_eq!(to(pending.id), vec![3]);
        assert_eq!(
            to(lost.id),
            vec![0],
            "a log_ingest job goes back to the ingest function's queue"
        );
        assert_eq!(to(parts.id), vec![3]);
        assert_eq!(to(waiting.id), vec![3]);
        assert!(to(dead.id).is_empty());

        // A second sweep right after does nothing new.
        let again = s.sweep(now).await.unwrap();
        assert_eq!(
            (again.enqueued, again.resent, again.requeued, again.failed),
            (0, 0, 0, 0)
        );
    }

    /// Parked jobs (due more than 15 minutes after creation, no message) are sent by the sweeper
    /// once due within 15 minutes, each with the delay that brings it at its time, however many
    /// older parked jobs there are; then they are ordinary waiting jobs.
    #[tokio::test]
    async fn parked_jobs_are_sent_once_due_within_15_minutes_and_stay_pending() {
        let (s, store, queue) = sweeper();
        let now = clock::now();
        let parked = |created_mins_ago: i64, due_in_mins: i64| {
            let mut j = Job::new(
                JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap(),
                3,
                Some(now + Duration::minutes(due_in_mins)),
                now - Duration::minutes(created_mins_ago),
            )
            .unwrap();
            assert!(j.is_parked());
            j.updated_at = j.created_at;
            store.put(j.clone());
            j
        };
        // 600 parked jobs older than the due one and due next year: more than a sweep's page of
        // the oldest pending jobs, all fine.
        let far: Vec<Job> = (0..600).map(|_| parked(24 * 60, 365 * 24 * 60)).collect();
        let due = parked(60, 10);
        let late = parked(60, -5); // the sweeper was down past its start: sent without delay
        let not_yet = parked(60, 16);
        // A crowd due at the same time, more than two pages of the wake index: all sent in one sweep.
        let crowd: Vec<Job> = (0..1_100).map(|_| parked(60, 12)).collect();
        assert_eq!(verdict(&due, now, &s.bounds), Verdict::Wake);
        assert_eq!(verdict(&not_yet, now, &s.bounds), Verdict::Fine);
        assert_eq!(past_bound(&due, now, &s.bounds), None, "waking is no one's fault");

        let report = s.sweep(now).await.unwrap();
        assert_eq!(
            (report.woken, report.enqueued, report.resent),
            (1_102, 0, 0),
            "{report:?}"
        );
        let sent = queue.sent.lock().unwrap().clone();
        let delay_of = |id| {
            sent.iter()
                .find(|(m, _, _)| m.job_id == id)
                .map(|(_, _, d)| d.whole_seconds())
        };
        assert!(
            delay_of(due.id).is_some_and(|d| (590..=600).contains(&d)),
            "{:?}",
            delay_of(due.id)
        );
        assert_eq!(delay_of(late.id), Some(0));
        assert_eq!(sent.len(), 1_102, "each due one once, nothing else");
        assert!(crowd.iter().all(|j| delay_of(j.id).is_some()));
        let get = |id| store.all().into_iter().find(|j: &Job| j.id == id).unwrap();
        for j in [&due, &late] {
            let j = get(j.id);
            assert_eq!(j.status, JobStatus::Pending);
            assert!(j.enqueued_at.is_some() && !j.is_parked());
        }
        assert!(get(not_yet.id).is_parked() && get(far[0].id).is_parked());
        // Sent, they are waiting jobs like any other: the next sweep leaves them alone.
        let again = s.sweep(now + Duration::minutes(1)).await.unwrap();
        assert_eq!((again.woken, again.enqueued, again.resent), (0, 0, 0), "{again:?}");
        assert_eq!(queue.sent.lock().unwrap().len(), 1_102);
    }

    #[tokio::test]
    async fn a_dead_lettered_message_fails_its_job_unless_it_is_finished_or_running() {
        let (s, store, _) = sweeper();
        let mut queued = archive();
        queued.transition(JobStatus::Queued, clock::now(), "enqueued").unwrap();
        queued.error = Some("copying: timeout".into());
        store.put(queued.clone());
        let mut running = archive();
        running.claim(clock::now(), Duration::seconds(90)).unwrap();
        store.put(running.clone());
        assert!(s.dead_letter(queued.id, "its message", None, 3).await.unwrap());
        assert!(!s.dead_letter(running.id, "its message", None, 3).await.unwrap());
        let failed = store.get(queued.id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("its message was dead-lettered after 3 deliveries; last error: copying: timeout")
        );
        assert!(!s.dead_letter(queued.id, "its message", None, 3).await.unwrap(), "once");
    }
}
