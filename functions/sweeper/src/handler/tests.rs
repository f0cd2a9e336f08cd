//! The sweeper function in-process, over the in-memory store and queue: no emulators.

use std::sync::Arc;

use serde_json::{Value, json};
use shared::auth::Owner;
use shared::clock;
use shared::job::{Job, JobSpec, JobStatus, LogIngestPayload};
use shared::store::JobStore;
use shared::store::memory::{MemoryJobStore, MemoryQueue};
use shared::sweep::{Bounds, Sweeper};
use time::Duration;

use super::Handler;

fn handler() -> (Handler, Arc<MemoryJobStore>, Arc<MemoryQueue>) {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let handler = Handler {
        sweeper: Sweeper {
            store: store.clone(),
            queue: queue.clone(),
            bounds: Bounds::default(),
        },
        max_receives: 3,
        keys: None,
    };
    (handler, store, queue)
}

fn image_job() -> Job {
    let spec = JobSpec::from_json(
        "image",
        json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["http://a/1.jpg", "http://a/2.jpg"], "visit_time": "t"}]}),
    )
    .unwrap();
    Job::new(spec, 3, None, clock::now()).unwrap()
}

fn sqs(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": b.to_string(), "eventSource": "aws:sqs",
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}})
        })
        .collect();
    json!({ "Records": records })
}

/// What EventBridge sends for a `rate(...)` schedule.
fn scheduled_event() -> Value {
    json!({"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "account": "000000000000",
           "time": "2026-11-30T12:00:00Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:000000000000:rule/sweep"], "detail": {}})
}

#[tokio::test]
async fn the_schedule_sweeps_and_reports_what_it_did() {
    let (h, store, queue) = handler();
    let mut stuck = image_job();
    stuck.created_at = clock::now() - Duration::hours(2);
    stuck.start_parts(1, clock::now() - Duration::hours(1)).unwrap();
    store.put(stuck.clone());
    let out = h.handle(scheduled_event()).await.unwrap();
    assert_eq!(out["sweep"]["requeued"], 1, "{out}");
    let job = store.get(stuck.id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert!(job.error.unwrap().contains("made no progress"));
    assert_eq!(queue.messages().len(), 1);
}

#[tokio::test]
async fn a_dead_lettered_part_of_the_current_run_fails_its_job_and_one_of_an_earlier_run_does_not() {
    let (h, store, _) = handler();
    let mut job = image_job();
    job.start_parts(1, clock::now()).unwrap();
    store.put(job.clone());
    let run = job.run_key().unwrap();

    let old = h
        .handle(sqs(&[json!({"job_id": job.id, "part": 0, "run": "12345"})]))
        .await
        .unwrap();
    assert_eq!(old["batchItemFailures"], json!([]));
    assert_eq!(store.get(job.id).await.unwrap().unwrap().status, JobStatus::Processing);

    let out = h
        .handle(sqs(&[
            json!({"job_id": job.id, "part": 0, "run": run}),
            json!("not a message"),
        ]))
        .await
        .unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "both acknowledged");
    let failed = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("part 1 was dead-lettered after 3 deliveries")
    );
}

#[tokio::test]
async fn a_dead_lettered_s3_event_of_an_upload_fails_its_ingest_job() {
    let (h, store, _) = handler();
    let spec = JobSpec::from_json("log_ingest", json!({"bucket": "b", "key": "uploads/x/a.jsonl"})).unwrap();
    let mut job = Job::new(spec, 3, None, clock::now()).unwrap();
    job.transition(JobStatus::Queued, clock::now(), "uploaded").unwrap();
    store.put(job.clone());
    let key = LogIngestPayload::upload_key(&Owner::parse("alice").unwrap(), job.id, "a.jsonl");
    let record = json!({"version": "1.0", "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
                        "requestPayload": {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": key}}}]}});
    h.handle(sqs(&[record])).await.unwrap();
    let failed = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().starts_with("its S3 event was dead-lettered"));
}
