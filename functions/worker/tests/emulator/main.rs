//! The job lifecycle through the worker, against the emulators: jobs submitted with the real
//! `Jobs` service, delivered by the real SQS event source (`local-bridge`), run by `Worker`.
//! Only the work of an attempt is scripted (a `Runner`), so failures and crashes can be staged.
//!
//! Needs the local stack (`infra/up`, then `source infra/env.sh`; `infra/test` does both). The
//! same stories run in-process in seconds, with in-memory stores, in `src/tests/`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use local_bridge::invoke::{InProcess, InvokeError};
use local_bridge::sqs_source::SqsPoller;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};
use shared::auth::Caller;
use shared::job::{ArchiveResult, Job, JobId, JobStatus};
use shared::queue::{JobMessage, SqsJobQueue};
use shared::service::{Jobs, NewJob};
use shared::store::{DynamoJobStore, JobStore};
use time::Duration;

use worker::handler::{ProcessError, RecordError, Runner, Worker};
use worker::image::ImageJobs;
use worker::image::fetch::{FetchConfig, Fetcher};
use worker::testing::{Scripted, ok};

mod claim_check;
mod email;
mod images;
mod notification;
mod report;
mod store_master;

/// The caller of the tests' API-side operations: an admin, so tests are not about ownership.
static OPS: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(|| Caller::admin("ops"));

struct Harness {
    t: TestStack,
    store: Arc<DynamoJobStore>,
    jobs: Jobs,
}

async fn harness(visibility_timeout: u32) -> Harness {
    let t = TestStack::new(Some(visibility_timeout)).await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let store = Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(
        SqsJobQueue::new(clients.sqs.clone(), t.var("HIGH_QUEUE_URL"), t.var("NORMAL_QUEUE_URL"))
            .with_ingest(t.var("INGEST_QUEUE_URL")),
    );
    let jobs = Jobs::new(store.clone(), queue, Duration::seconds(60));
    Harness { t, store, jobs }
}

/// Images from 127.0.0.1 allowed, short timeouts.
fn short_fetches() -> FetchConfig {
    FetchConfig {
        timeout: StdDuration::from_millis(1500),
        attempts: 2,
        retry_base: StdDuration::from_millis(50),
        allow_hosts: "127.0.0.1".into(),
        // The test servers listen on random ports.
        allow_ports: "1-65535".parse().unwrap(),
        ..FetchConfig::default()
    }
}

impl Harness {
    fn worker(&self, runner: Arc<dyn Runner>, lease: Duration) -> Arc<Worker> {
        self.worker_fetching(runner, lease, short_fetches())
    }

    fn worker_fetching(&self, runner: Arc<dyn Runner>, lease: Duration, fetch: FetchConfig) -> Arc<Worker> {
        Arc::new(Worker {
            store: self.store.clone(),
            queue: self.jobs.queue.clone(),
            runner,
            images: Arc::new(self.image_jobs(fetch)),
            lease,
            max_receives: 3,
        })
    }

    /// Image jobs with the sample store master.
    fn image_jobs(&self, config: FetchConfig) -> ImageJobs {
        ImageJobs::new(
            self.store.clone(),
            Arc::new(shared::store::DynamoPartStore::new(
                self.t.clients.dynamodb.clone(),
                self.t.var("JOBS_TABLE"),
            )),
            self.jobs.queue.clone(),
            Fetcher::new(config).unwrap(),
        )
    }

    /// The template's event source on `queue` (logical id), invoking `worker` in-process.
    fn poller(&self, queue: &str, worker: Arc<Worker>) -> SqsPoller {
        let url = self.t.stack.reference(queue).unwrap();
        let source = self
            .t
            .stack
            .sqs_sources
            .iter()
            .find(|s| s.queue_url == url)
            .unwrap()
            .clone();
        let invoker = InProcess(move |_name: String, event: Value| {
            let worker = worker.clone();
            Box::pin(async move {
                let event: SqsEvent =
                    serde_json::from_value(event).map_err(|e| InvokeError::Transport(e.to_string()))?;
                let response = worker.handle(event).await.map_err(|e| InvokeError::Function {
                    error_type: "Error".into(),
                    message: e.to_string(),
                })?;
                Ok(serde_json::to_value(response).unwrap())
            }) as _
        });
        SqsPoller {
            sqs: self.t.clients.sqs.clone(),
            source,
            invoker: Arc::new(invoker),
            wait_secs: 1,
        }
    }

    async fn submit(&self, priority: u8) -> Job {
        let new = NewJob {
            kind: "archive".into(),
            payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
            priority: Some(priority),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }

    async fn job(&self, id: JobId) -> Job {
        self.store.get(id).await.unwrap().unwrap()
    }

    async fn depth(&self, queue: &str) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .t
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(self.t.stack.reference(queue).unwrap())
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        attrs.values().filter_map(|v| v.parse::<usize>().ok()).sum()
    }
}

/// A delivery of the job's message, as SQS would hand it over.
fn delivery(id: JobId, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(uuid_like(id));
    m.body = Some(
        serde_json::to_string(&JobMessage {
            job_id: id,
            part: None,
            run: None,
            images: None,
        })
        .unwrap(),
    );
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn uuid_like(id: JobId) -> String {
    format!("msg-{id}")
}

#[tokio::test]
async fn a_submitted_job_is_sent_on_its_priority_band_and_completed_by_the_worker() {
    let h = harness(30).await;
    let runner = Scripted::new(0, ok);
    let job = h.submit(5).await;
    assert_eq!(job.status, JobStatus::Pending, "pending until a worker takes it");
    assert!(job.enqueued_at.is_some());
    assert_eq!(h.depth("HighQueue").await, 1);
    assert_eq!(h.depth("NormalQueue").await, 0);
    let o = h
        .poller("HighQueue", h.worker(runner.clone(), Duration::seconds(60)))
        .poll_once()
        .await
        .unwrap();
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    assert_eq!(done.typed_result().unwrap(), Some(ArchiveResult::example()));
    assert_eq!(done.progress.percent, 100);
    assert!(done.started_at.is_some() && done.completed_at.is_some());
}

#[tokio::test]
async fn a_duplicate_delivery_does_the_work_once() {
    let h = harness(30).await;
    let runner = Scripted::new(300, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(60));

    // Two copies at once: one runs, the other sees the live lease and stays on the queue. Which
    // one claims first is up to the machine (a loaded one let the later copy win).
    let a = h.submit(3).await;
    let (first, second) = tokio::join!(worker.handle_record(delivery(a.id, 1)), async {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        worker.handle_record(delivery(a.id, 1)).await
    });
    let (ran, busy) = if first.is_ok() {
        (first, second)
    } else {
        (second, first)
    };
    assert!(ran.is_ok(), "{ran:?}");
    assert!(matches!(busy, Err(RecordError::Busy(_))), "{busy:?}");
    // The copy coming back later finds the job finished and is acknowledged.
    assert!(worker.handle_record(delivery(a.id, 2)).await.is_ok());
    assert_eq!(runner.calls(), 1);
    let done = h.job(a.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
}

#[tokio::test]
async fn a_job_whose_worker_crashed_completes_once_after_its_lease_expires() {
    let h = harness(30).await;
    let job = h.submit(3).await;
    let hung = Scripted::new(3_600_000, ok);
    let crashed = h.worker(hung.clone(), Duration::seconds(2));
    let task = tokio::spawn(async move { crashed.handle_record(delivery(job.id, 1)).await });
    while hung.calls() == 0 {
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    task.abort(); // the Lambda died mid-job

    let runner = Scripted::new(0, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(2));
    assert!(matches!(
        worker.handle_record(delivery(job.id, 2)).await,
        Err(RecordError::Busy(_))
    ));
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    worker.handle_record(delivery(job.id, 3)).await.unwrap();
    worker.handle_record(delivery(job.id, 3)).await.unwrap();
    assert_eq!(runner.calls(), 1);
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 2));
    assert!(done.timeline.iter().any(|e| e.message.contains("lease expired")));
}

#[tokio::test]
async fn a_job_failing_every_attempt_is_failed_after_3_and_its_message_is_in_the_dead_letter_queue() {
    let h = harness(1).await;
    let runner = Scripted::new(0, |n| Err(ProcessError::Transient(format!("timeout #{n}"))));
    let job = h.submit(2).await;
    let poller = h.poller("NormalQueue", h.worker(runner.clone(), Duration::seconds(60)));
    for _ in 0..20 {
        let o = poller.poll_once().await.unwrap();
        if o.moved_to_dead_letter_queue > 0 || (runner.calls() == 3 && h.depth("NormalQueue").await == 0) {
            break;
        }
    }
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
    let dlq =
        h.t.clients
            .sqs
            .receive_message()
            .queue_url(h.t.stack.reference("NormalDeadLetterQueue").unwrap())
            .wait_time_seconds(3)
            .send()
            .await
            .unwrap();
    let bodies: Vec<JobMessage> = dlq
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [JobMessage {
            job_id: job.id,
            part: None,
            run: None,
            images: None,
        }]
    );
    // And the retry endpoint's operation brings it back with a fresh message.
    let retried = h.jobs.retry(&OPS, job.id).await.unwrap();
    assert_eq!((retried.status, retried.attempts), (JobStatus::Queued, 0));
    assert_eq!(h.depth("NormalQueue").await, 1);
}

#[tokio::test]
async fn a_permanent_failure_fails_the_job_at_once_and_acknowledges_the_message() {
    let h = harness(1).await;
    let runner = Scripted::new(0, |_| Err(ProcessError::Permanent("source object not found".into())));
    let job = h.submit(3).await;
    let o = h
        .poller("NormalQueue", h.worker(runner.clone(), Duration::seconds(60)))
        .poll_once()
        .await
        .unwrap();
    assert_eq!(o.deleted, 1);
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(failed.error.as_deref(), Some("source object not found"));
}

#[tokio::test]
async fn a_job_cancelled_before_pickup_is_skipped() {
    let h = harness(1).await;
    let runner = Scripted::new(0, ok);
    let job = h.submit(3).await;
    let cancelled = h.jobs.cancel(&OPS, job.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let o = h
        .poller("NormalQueue", h.worker(runner.clone(), Duration::seconds(60)))
        .poll_once()
        .await
        .unwrap();
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
    let h = harness(30).await;
    let runner = Scripted::new(50, ok);
    let mut backlog = Vec::new();
    for _ in 0..30 {
        backlog.push(h.submit(1).await.id);
    }
    let urgent = h.submit(5).await.id;
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let normal = tokio::spawn(h.poller("NormalQueue", worker.clone()).run(stopped.clone()));
    let high = tokio::spawn(h.poller("HighQueue", worker.clone()).run(stopped.clone()));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
    while runner.calls() < 31 && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let _ = tokio::join!(normal, high);
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
async fn scheduled_jobs_wait_in_sqs_and_are_re_delayed_beyond_15_minutes() {
    let h = harness(30).await;
    let runner = Scripted::new(0, ok);
    let worker = h.worker(runner.clone(), Duration::seconds(60));
    let soon = time::OffsetDateTime::now_utc() + Duration::seconds(8);
    let later = time::OffsetDateTime::now_utc() + Duration::hours(2);
    let submit = |at| NewJob {
        kind: "archive".into(),
        payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
        priority: Some(3),
        scheduled_for: Some(at),
    };
    let soon_job = h.jobs.submit(&OPS, submit(soon), None).await.unwrap().0;
    let later_job = h.jobs.submit(&OPS, submit(later), None).await.unwrap().0;

    // A delivery that arrives early (SQS's 15-minute cap) re-delays the message and does no work.
    worker.handle_record(delivery(later_job.id, 1)).await.unwrap();
    assert_eq!(runner.calls(), 0);
    assert_eq!(h.job(later_job.id).await.status, JobStatus::Pending);

    // The near one is invisible until due, then runs.
    let poller = h.poller("NormalQueue", worker.clone());
    let polled_at = time::OffsetDateTime::now_utc();
    let first = poller.poll_once().await.unwrap();
    // (Only meaningful while it is not due: a loaded machine may get here late.)
    if polled_at + Duration::seconds(1) < soon {
        assert_eq!(first.delivered, 0, "not due yet");
    }
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    while h.job(soon_job.id).await.status != JobStatus::Completed && std::time::Instant::now() < deadline {
        poller.poll_once().await.unwrap();
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
