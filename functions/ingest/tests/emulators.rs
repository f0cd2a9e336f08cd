//! The ingest against the emulators: real S3 objects, real tables, events as S3 sends them.
//! Needs the local stack (`infra/up`); the same stories run in-process in `src/fast_tests.rs`.

use std::io::Write;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use ingest::handler::Ingest;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};
use shared::job::{Job, JobId, JobStatus};
use shared::logs::Level;
use shared::objects::S3Objects;
use shared::queue::SqsJobQueue;
use shared::service::Jobs;
use shared::store::entries::DynamoEntryStore;
use shared::store::{DynamoJobStore, JobStore};
use time::Duration;

struct Harness {
    t: TestStack,
    ingest: Ingest,
    store: Arc<DynamoJobStore>,
    bucket: String,
}

async fn harness() -> Harness {
    let t = TestStack::new(None).await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let store = Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(
        SqsJobQueue::new(clients.sqs.clone(), t.var("HIGH_QUEUE_URL"), t.var("NORMAL_QUEUE_URL"))
            .with_ingest(t.var("INGEST_QUEUE_URL")),
    );
    let ingest = Ingest {
        jobs: Jobs::new(store.clone(), queue, Duration::seconds(60)),
        entries: Arc::new(DynamoEntryStore::new(
            clients.dynamodb.clone(),
            t.var("LOG_ENTRIES_TABLE"),
        )),
        objects: Arc::new(S3Objects::new(clients.s3.clone())),
        lease: Duration::seconds(60),
        line_delay_ms: 0,
        time_budget: std::time::Duration::from_secs(600),
        limits: Default::default(),
    };
    let bucket = t.var("UPLOADS_BUCKET").to_string();
    Harness {
        t,
        ingest,
        store,
        bucket,
    }
}

/// An S3 event for `key`, encoded as AWS encodes keys (`+` for spaces).
fn event(bucket: &str, key: &str, size: usize) -> S3Event {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    serde_json::from_value(json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-23T10:15:00.000Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "A"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "IngestFunction-JsonlDrop",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A"}, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": size, "eTag": "e", "sequencer": "0055AED6DCD90281E5"}}}]}))
    .unwrap()
}

impl Harness {
    async fn drop_file(&self, key: &str, body: Vec<u8>) -> Job {
        let size = body.len();
        self.t
            .clients
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
        self.deliver(key, size).await
    }

    async fn deliver(&self, key: &str, size: usize) -> Job {
        let out = self
            .ingest
            .handle(serde_json::to_value(event(&self.bucket, key, size)).unwrap(), None)
            .await
            .unwrap();
        let id: JobId = out["jobs"][0].as_str().unwrap().parse().unwrap();
        self.store.get(id).await.unwrap().unwrap()
    }

    /// Plays the continuation queue's event source: delivers each checkpoint to a new
    /// invocation until the job is no longer processing. Returns the invocations made.
    async fn drain_continuations(&self, id: JobId) -> usize {
        let (h, first_id) = (self, id);
        let queue = h.t.var("INGEST_QUEUE_URL").to_string();
        let mut invocations = 1;
        loop {
            let job = h.store.get(first_id).await.unwrap().unwrap();
            if job.status != JobStatus::Processing {
                break;
            }
            let out =
                h.t.clients
                    .sqs
                    .receive_message()
                    .queue_url(&queue)
                    .wait_time_seconds(2)
                    .send()
                    .await
                    .unwrap();
            for m in out.messages.unwrap_or_default() {
                let record = json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                                "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}});
                let response = h.ingest.handle(json!({"Records": [record]}), None).await.unwrap();
                assert_eq!(response["batchItemFailures"], json!([]));
                h.t.clients
                    .sqs
                    .delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                invocations += 1;
            }
            assert!(invocations < 100, "no end in sight");
        }
        invocations
    }

    async fn entries(&self, id: JobId, level: Option<Level>) -> Vec<u64> {
        let (mut lines, mut next) = (Vec::new(), None);
        loop {
            let page = self.ingest.entries.list(id, level, 7, next.as_deref()).await.unwrap();
            lines.extend(page.entries.iter().map(|e| e.line));
            match page.next {
                Some(n) => next = Some(n),
                None => return lines,
            }
        }
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../events/samples/app-logs.jsonl",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    ))
    .unwrap()
}

fn result(job: &Job) -> &Value {
    job.result.as_ref().expect("a result")
}

#[tokio::test]
async fn a_file_with_bad_lines_stores_the_good_ones_and_names_the_bad_ones() {
    let h = harness().await;
    let job = h.drop_file("uploads/app logs.jsonl", sample()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    let r = result(&job);
    assert_eq!(
        (
            r["lines_read"].as_u64(),
            r["lines_stored"].as_u64(),
            r["lines_rejected"].as_u64()
        ),
        (Some(7), Some(5), Some(2))
    );
    assert_eq!(r["rejected"][0]["line"], 5);
    assert!(r["rejected"][0]["reason"].as_str().unwrap().starts_with("invalid JSON"));
    assert_eq!(r["rejected"][1], json!({"line": 6, "reason": "message is empty"}));
    assert_eq!(h.entries(job.id, None).await, [1, 2, 3, 4, 7]);
    assert_eq!(h.entries(job.id, Some(Level::Error)).await, [4]);
    assert_eq!(h.entries(job.id, Some(Level::Warn)).await, [3]);
    let stored = h.ingest.entries.list(job.id, None, 10, None).await.unwrap().entries;
    assert_eq!(stored[2].attributes["duration_ms"], 812);
    assert_eq!(stored[2].trace_id.as_deref(), Some("4bf92f3577b34da6"));
    let stages: Vec<&str> = job.timeline.iter().map(|e| e.message.as_str()).collect();
    assert!(
        stages.contains(&"started processing") && stages.contains(&"completed"),
        "{stages:?}"
    );
    assert_eq!(job.progress.percent, 100);
}

#[tokio::test]
async fn a_duplicate_event_finds_the_same_job_and_stores_nothing_twice() {
    let h = harness().await;
    let first = h.drop_file("uploads/dup.jsonl", sample()).await;
    let second = h.deliver("uploads/dup.jsonl", sample().len()).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 1);
    assert_eq!(h.entries(first.id, None).await.len(), 5);
}

#[tokio::test]
async fn a_gzip_file_is_read_through_the_decoder() {
    let h = harness().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&sample()).unwrap();
    let job = h.drop_file("uploads/app.jsonl.gz", gz.finish().unwrap()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(result(&job)["lines_stored"], 5);
}

#[tokio::test]
async fn an_empty_file_completes_with_nothing_stored() {
    let h = harness().await;
    let job = h.drop_file("uploads/empty.jsonl", Vec::new()).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(result(&job)["lines_read"], 0);
}

#[tokio::test]
async fn unreadable_files_fail_the_job_with_a_clear_error() {
    let h = harness().await;
    let binary = h
        .drop_file("uploads/binary.jsonl", vec![0xff, 0xfe, 0x00, 0x41, b'\n'])
        .await;
    assert_eq!(binary.status, JobStatus::Failed);
    assert!(
        binary.error.as_deref().unwrap().contains("not UTF-8"),
        "{:?}",
        binary.error
    );

    let csv = h.drop_file("uploads/table.jsonl", b"a,b,c\n1,2,3\n".to_vec()).await;
    assert_eq!(csv.status, JobStatus::Failed);
    assert!(
        csv.error.as_deref().unwrap().contains("not a JSONL file"),
        "{:?}",
        csv.error
    );

    let missing = h.deliver("uploads/gone.jsonl", 10).await;
    assert_eq!(missing.status, JobStatus::Failed);
    assert!(
        missing.error.as_deref().unwrap().contains("not found"),
        "{:?}",
        missing.error
    );
}

#[tokio::test]
async fn progress_is_recorded_every_ten_percent_of_the_bytes() {
    let h = harness().await;
    let mut body = String::new();
    for n in 0..3000 {
        body.push_str(&format!(
            "{{\"timestamp\":\"2026-11-23T10:00:00Z\",\"level\":\"info\",\"message\":\"event {n}\",\"padding\":\"{}\"}}\n",
            "x".repeat(200)
        ));
    }
    let job = h.drop_file("uploads/big.jsonl", body.into_bytes()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(result(&job)["lines_stored"], 3000);
    let steps: Vec<u8> = job
        .timeline
        .iter()
        .filter(|e| e.message.contains("% complete"))
        .map(|e| e.message.split('%').next().unwrap().parse().unwrap())
        .collect();
    assert!(steps.len() >= 8, "{steps:?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(h.entries(job.id, None).await.len(), 3000);
}

#[tokio::test]
async fn a_file_that_outlasts_an_invocation_continues_from_its_checkpoint_and_stores_every_line_once() {
    let mut h = harness().await;
    h.ingest.time_budget = std::time::Duration::ZERO; // checkpoint after every batch
    let mut body = String::new();
    for n in 1..=520 {
        if n % 100 == 0 {
            body.push_str("garbage\r\n"); // CRLF lines too: the resume offset must count both bytes
        } else {
            body.push_str(&format!(
                "{{\"timestamp\":{},\"level\":\"info\",\"message\":\"line {n}\"}}\r\n",
                1_795_428_000 + n
            ));
        }
    }
    let first = h.drop_file("uploads/long.jsonl", body.into_bytes()).await;
    assert_eq!(first.status, JobStatus::Processing, "paused after its first batch");

    let invocations = h.drain_continuations(first.id).await;
    let job = h.store.get(first.id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert!(invocations >= 20, "{invocations} invocations");
    let r = result(&job);
    assert_eq!(
        (
            r["lines_read"].as_u64(),
            r["lines_stored"].as_u64(),
            r["lines_rejected"].as_u64()
        ),
        (Some(520), Some(515), Some(5))
    );
    let rejected: Vec<u64> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [100, 200, 300, 400, 500]);
    let lines = h.entries(job.id, None).await;
    let expected: Vec<u64> = (1..=520).filter(|n| n % 100 != 0).collect();
    assert_eq!(lines, expected, "every valid line stored exactly once");
    assert_eq!(job.attempts, 1, "one attempt, handed over between invocations");
    assert!(
        job.timeline.len() < 20,
        "checkpoints update the progress, they do not fill the timeline: {:?}",
        job.timeline
    );
}

#[tokio::test]
async fn a_checkpoint_taken_at_the_very_end_of_the_file_completes_in_the_next_invocation() {
    let mut h = harness().await;
    h.ingest.time_budget = std::time::Duration::ZERO; // checkpoint after every 25 lines
    let body: String = (1..=50)
        .map(|n| {
            format!(
                "{{\"timestamp\":{},\"level\":\"info\",\"message\":\"line {n}\"}}\n",
                1_795_428_000 + n
            )
        })
        .collect();
    let first = h.drop_file("uploads/exact.jsonl", body.into_bytes()).await;
    assert_eq!(first.status, JobStatus::Processing);
    h.drain_continuations(first.id).await;
    let job = h.store.get(first.id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(result(&job)["lines_stored"], 50);
}
