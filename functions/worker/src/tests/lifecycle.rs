//! The job lifecycle through `Worker`, in-process: completed once, duplicates, crashes, retries,
//! permanent failures, cancellation, priority bands, schedules.

use shared::clock;
use shared::job::{ArchiveResult, JobStatus};
use shared::queue::MAX_DELAY;

use super::*;
use crate::handler::RecordError;

#[tokio::test]
async fn a_submitted_job_is_sent_on_its_priority_band_and_completed_by_the_worker() {
    let h = harness();
    let runner = Scripted::new(0, ok);
    let job = h.submit(5).await;
    assert_eq!(job.status, JobStatus::Pending, "pending until a worker takes it");
    assert!(job.enqueued_at.is_some());
    assert_eq!(h.sqs.depth(Band::High), 1);
    assert_eq!(h.sqs.depth(Band::Normal), 0);
    let o = h
        .sqs
        .poll(Band::High, &h.worker(runner.clone(), Duration::seconds(60)))
        .await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    assert_eq!(done.typed_result().unwrap(), Some(ArchiveResult::example()));
    assert_eq!(done.progress.percent, 100);
    assert!(done.started_at.is_some() && done.completed_at.is_some());
    assert_eq!(h.sqs.depth(Band::High), 0);
}

#[tokio::test]
async fn a_duplicate_delivery_does_the_work_once() {
    let h = harness();
    let runner = Scripted::new(200, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(60));

    // Two copies at once: one runs, the other sees the live lease and stays on the queue.
    let a = h.submit(3).await;
    let (first, second) = tokio::join!(worker.handle_record(delivery(a.id, 1)), async {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        worker.handle_record(delivery(a.id, 1)).await
    });
    assert!(first.is_ok(), "{first:?}");
    match second {
        // held under the first copy's lease (60 s from its claim)
        Err(RecordError::Busy(until)) => assert!(until > clock::now() && until <= clock::now() + Duration::seconds(60)),
        other => panic!("the second copy must find the job busy: {other:?}"),
    }
    // The copy coming back later finds the job finished and is acknowledged.
    assert!(worker.handle_record(delivery(a.id, 2)).await.is_ok());
    assert_eq!(runner.calls(), 1);
    let done = h.job(a.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
}

#[tokio::test]
async fn a_job_whose_worker_crashed_completes_once_after_its_lease_expires() {
    let h = harness();
    let job = h.submit(3).await;
    let hung = Scripted::new(3_600_000, ok);
    let crashed = h.worker(hung.clone(), Duration::seconds(1));
    let task = tokio::spawn(async move { crashed.handle_record(delivery(job.id, 1)).await });
    while hung.calls() == 0 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    task.abort(); // the Lambda died mid-job

    let runner = Scripted::new(0, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(1));
    let busy = worker.handle_record(delivery(job.id, 2)).await;
    assert!(
        matches!(&busy, Err(e @ RecordError::Busy(_)) if e.to_string().starts_with("job is held by another delivery until ")),
        "{busy:?}"
    );
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    worker.handle_record(delivery(job.id, 3)).await.unwrap();
    worker.handle_record(delivery(job.id, 3)).await.unwrap();
    assert_eq!(runner.calls(), 1);
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 2));
    assert!(done.timeline.iter().any(|e| e.message.contains("lease expired")));
}

#[tokio::test]
async fn a_job_failing_every_attempt_is_failed_after_3_and_its_message_is_in_the_dead_letter_queue() {
    let h = harness();
    let runner = Scripted::new(0, |n| Err(ProcessError::Transient(format!("timeout #{n}"))));
    let job = h.submit(2).await;
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    let mut dead = 0;
    for _ in 0..10 {
        let o = h.sqs.poll(Band::Normal, &worker).await;
        dead += o.dead_lettered;
        if o.delivered == 0 {
            break;
        }
    }
    assert_eq!(dead, 1);
    assert_eq!(runner.calls(), 3);
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 3));
    assert_eq!(failed.error.as_deref(), Some("timeout #3"));
    let statuses: Vec<JobStatus> = failed.timeline.iter().map(|e| e.status).collect();
    use JobStatus::*;
    assert_eq!(
        statuses,
        [
            Pending, Pending, Processing, Queued, Processing, Queued, Processing, Failed
        ]
    );
    assert_eq!(
        h.sqs.dead_letters(Band::Normal),
        [JobMessage {
            job_id: job.id,
            part: None,
            run: None,
            images: None,
        }]
    );
    assert_eq!(h.sqs.depth(Band::Normal), 0);
    // And the retry endpoint's operation brings it back with a fresh message.
    let retried = h.jobs.retry(&OPS, job.id).await.unwrap();
    assert_eq!((retried.status, retried.attempts), (JobStatus::Queued, 0));
    assert_eq!(h.sqs.depth(Band::Normal), 1);
}

#[tokio::test]
async fn a_transient_failure_on_the_last_delivery_fails_the_job_at_once() {
    // GIVEN a job whose message was received twice without being run (say, busy both times)
    let h = harness();
    let runner = Scripted::new(0, |n| Err(ProcessError::Transient(format!("timeout #{n}"))));
    let job = h.submit(3).await;
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    // WHEN its third and last delivery fails transiently
    let out = worker.handle_record(delivery(job.id, MAX_RECEIVES)).await;
    // THEN the message stays (for the dead-letter queue) and the job is failed now, not queued for
    // an attempt no delivery would bring
    match out {
        Err(RecordError::Failed(e @ ProcessError::Transient(_))) => assert_eq!(e.to_string(), "timeout #1"),
        other => panic!("{other:?}"),
    }
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(failed.error.as_deref(), Some("timeout #1 (no deliveries left)"));
}

#[tokio::test]
async fn a_permanent_failure_fails_the_job_at_once_and_acknowledges_the_message() {
    let h = harness();
    let runner = Scripted::new(0, |_| Err(ProcessError::Permanent("source object not found".into())));
    let job = h.submit(3).await;
    let o = h
        .sqs
        .poll(Band::Normal, &h.worker(runner.clone(), Duration::seconds(60)))
        .await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(failed.error.as_deref(), Some("source object not found"));
    assert_eq!(runner.calls(), 1);
}

#[tokio::test]
async fn a_job_cancelled_before_pickup_is_skipped() {
    let h = harness();
    let runner = Scripted::new(0, ok);
    let job = h.submit(3).await;
    let cancelled = h.jobs.cancel(&OPS, job.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let o = h
        .sqs
        .poll(Band::Normal, &h.worker(runner.clone(), Duration::seconds(60)))
        .await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    assert_eq!(runner.calls(), 0);
    assert_eq!(h.job(job.id).await.status, JobStatus::Cancelled);
    assert!(matches!(
        h.jobs.cancel(&OPS, job.id).await,
        Err(shared::Error::Conflict(_))
    ));
}

#[tokio::test]
async fn a_priority_5_job_starts_before_a_priority_1_backlog_drains() {
    let h = harness();
    let runner = Scripted::new(5, ok);
    let mut backlog = Vec::new();
    for _ in 0..30 {
        backlog.push(h.submit(1).await.id);
    }
    let urgent = h.submit(5).await.id;
    assert_eq!((h.sqs.depth(Band::Normal), h.sqs.depth(Band::High)), (30, 1));
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    // Each queue has its own event source, polling on its own.
    let source = |band| {
        let (h, worker) = (&h, &worker);
        async move { while h.sqs.poll(band, worker).await.delivered > 0 {} }
    };
    tokio::join!(source(Band::Normal), source(Band::High));
    let order = runner.started.lock().unwrap().clone();
    assert_eq!(order.len(), 31, "all jobs ran");
    let position = order.iter().position(|id| *id == urgent).unwrap();
    let backlog_started_before = order[..position].iter().filter(|id| backlog.contains(id)).count();
    assert!(
        backlog_started_before < 20,
        "the urgent job waited for {backlog_started_before} of 30 backlog jobs"
    );
}

#[tokio::test]
async fn scheduled_jobs_wait_in_sqs_within_15_minutes_and_are_parked_beyond() {
    let h = harness();
    let runner = Scripted::new(0, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    let soon = time::OffsetDateTime::now_utc() + Duration::seconds(2);
    let later = time::OffsetDateTime::now_utc() + Duration::hours(2);
    let submit = |at| NewJob {
        kind: "archive".into(),
        payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
        priority: Some(3),
        scheduled_for: Some(at),
    };
    let soon_job = h.jobs.submit(&OPS, submit(soon), None).await.unwrap().0;
    let later_job = h.jobs.submit(&OPS, submit(later), None).await.unwrap().0;
    let sent = h.queue.sent.lock().unwrap().clone();
    assert_eq!(
        sent.iter().map(|(m, _, _)| m.job_id).collect::<Vec<_>>(),
        [soon_job.id],
        "due in 2 h: parked, no message (SQS delays at most 15 minutes; the sweeper sends it)"
    );
    assert!(h.job(later_job.id).await.is_parked());

    // A delivery that arrives early (a message sent before the job was due within SQS's
    // 15-minute cap) re-delays the message and does no work.
    worker.handle_record(delivery(later_job.id, 1)).await.unwrap();
    assert_eq!(runner.calls(), 0);
    assert_eq!(h.job(later_job.id).await.status, JobStatus::Pending);
    let (message, priority, delay) = h.queue.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!((message.job_id, priority, delay), (later_job.id, 3, MAX_DELAY));

    // The near one is invisible until due, then runs.
    let polled_at = time::OffsetDateTime::now_utc();
    let first = h.sqs.poll(Band::Normal, &worker).await;
    if polled_at + Duration::seconds(1) < soon {
        assert_eq!(first.delivered, 0, "not due yet");
    }
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while h.job(soon_job.id).await.status != JobStatus::Completed && Instant::now() < deadline {
        h.sqs.poll(Band::Normal, &worker).await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let done = h.job(soon_job.id).await;
    assert_eq!(done.status, JobStatus::Completed);
    assert!(
        done.started_at.unwrap() >= soon - Duration::seconds(1),
        "started at {:?}",
        done.started_at
    );
    assert_eq!(runner.calls(), 1);
    assert_eq!(
        h.job(later_job.id).await.status,
        JobStatus::Pending,
        "the far one still waits"
    );
}

#[tokio::test]
async fn a_re_delay_that_cannot_be_sent_leaves_the_message_on_the_queue() {
    let h = harness();
    let runner = Scripted::new(0, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    let later = NewJob {
        kind: "archive".into(),
        payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
        priority: Some(3),
        scheduled_for: Some(clock::now() + Duration::hours(1)),
    };
    let job = h.jobs.submit(&OPS, later, None).await.unwrap().0;
    *h.queue.fail_with.lock().unwrap() = Some("SQS is down".into());
    let out = worker.handle_record(delivery(job.id, 1)).await;
    assert!(
        matches!(&out, Err(RecordError::Store(shared::Error::Internal(why))) if why == "SQS is down"),
        "{out:?}"
    );
    assert_eq!(h.job(job.id).await.status, JobStatus::Pending);
    assert_eq!(runner.calls(), 0);
}

#[tokio::test]
async fn the_fixture_batch_acknowledges_an_unknown_job_and_keeps_a_malformed_record() {
    // GIVEN the batch in events/worker/sqs-batch.json: a job that does not exist, and a body that
    // is not a job message
    let h = harness();
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));
    let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    let malformed = event.records[1].message_id.clone().unwrap();
    // WHEN the worker handles it THEN only the malformed record is reported
    let response = worker.handle(event).await.unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [malformed.as_str()]);

    let mut empty = delivery(JobId::new(), 1);
    empty.body = None;
    let out = worker.handle_record(empty).await;
    assert!(matches!(out, Err(RecordError::EmptyBody)), "{out:?}");
    let mut garbage = delivery(JobId::new(), 1);
    garbage.body = Some("this is not a job message".into());
    match worker.handle_record(garbage).await {
        Err(e @ RecordError::Malformed(_)) => assert!(e.to_string().starts_with("malformed message: "), "{e}"),
        other => panic!("{other:?}"),
    }
}
