//! The ingest in-process over the in-memory stand-ins (`shared::store::memory`): jobs, queue,
//! entries and objects in maps, no emulators, no network; the whole file runs in about a second.
//! `tests/emulators.rs` tells the main stories again against the local stack.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Value, json};
use shared::job::{Job, JobId, JobSpec, JobStatus, LogIngestPayload};
use shared::logs::Level;
use shared::service::{DEFAULT_PRIORITY, Jobs};
use shared::store::JobStore;
use shared::store::memory::{Fault, MemoryEntryStore, MemoryJobStore, MemoryObjects, MemoryQueue};
use time::Duration;

use crate::handler::{Ingest, Limits};

const BUCKET: &str = "uploads-bucket";

struct Harness {
    ingest: Ingest,
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
    entries: Arc<MemoryEntryStore>,
    objects: Arc<MemoryObjects>,
}

fn harness() -> Harness {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let entries = Arc::new(MemoryEntryStore::new());
    let objects = Arc::new(MemoryObjects::new());
    let ingest = Ingest {
        jobs: Jobs::new(store.clone(), queue.clone(), Duration::seconds(60)),
        entries: entries.clone(),
        objects: objects.clone(),
        lease: Duration::seconds(60),
        line_delay_ms: 0,
        time_budget: std::time::Duration::from_secs(600),
        limits: Limits::default(),
    };
    Harness {
        ingest,
        store,
        queue,
        entries,
        objects,
    }
}

/// The S3 event of `events/ingest/s3-put-jsonl.json`, as the fixture is.
fn fixture() -> Value {
    let path = format!(
        "{}/../../events/ingest/s3-put-jsonl.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's event for `key` (encoded as AWS encodes keys, `+` for a space) in [`BUCKET`].
fn event(key: &str, size: usize) -> Value {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    let mut event = fixture();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = json!(BUCKET);
    s3["object"]["key"] = json!(encoded);
    s3["object"]["size"] = json!(size);
    event
}

/// One SQS record of the ingest queue, as the event source mapping delivers it.
fn sqs_event(body: &str) -> Value {
    json!({"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": body, "eventSource": "aws:sqs",
                        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}}]})
}

impl Harness {
    async fn drop_file(&self, key: &str, body: impl Into<Vec<u8>>) -> Job {
        let body = body.into();
        let size = body.len();
        self.objects.put(BUCKET, key, body);
        self.deliver(key, size).await
    }

    /// Delivers the S3 event of `key`; returns its job as it then is.
    async fn deliver(&self, key: &str, size: usize) -> Job {
        self.handle(event(key, size)).await
    }

    async fn handle(&self, event: Value) -> Job {
        let out = self.ingest.handle(event, None).await.unwrap();
        let id: JobId = out["jobs"][0].as_str().unwrap().parse().unwrap();
        self.job(id).await
    }

    async fn job(&self, id: JobId) -> Job {
        self.store.get(id).await.unwrap().unwrap()
    }

    /// Plays the ingest queue's event source: delivers each message sent to it to a new
    /// invocation, until none is left. Returns the invocations made.
    async fn drain_queue(&self) -> usize {
        let mut invocations = 0;
        loop {
            let sent = self.queue.take_ingest();
            if sent.is_empty() {
                return invocations;
            }
            for (body, _) in sent {
                let response = self.ingest.handle(sqs_event(&body), None).await.unwrap();
                assert_eq!(response["batchItemFailures"], json!([]), "{body}");
                invocations += 1;
            }
            assert!(invocations < 200, "no end in sight");
        }
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

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

fn result(job: &Job) -> &Value {
    job.result.as_ref().expect("a result")
}

fn counts(job: &Job) -> (Option<u64>, Option<u64>, Option<u64>) {
    let r = result(job);
    (
        r["lines_read"].as_u64(),
        r["lines_stored"].as_u64(),
        r["lines_rejected"].as_u64(),
    )
}

fn rejected_lines(job: &Job) -> Vec<u64> {
    result(job)["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_u64().unwrap())
        .collect()
}

/// `lines` lines of valid JSONL, numbered from 1, ending in `eol`.
fn jsonl(lines: u64, eol: &str) -> String {
    (1..=lines)
        .map(|n| {
            format!(
                "{{\"timestamp\":{},\"level\":\"info\",\"message\":\"line {n}\"}}{eol}",
                1_795_428_000 + n
            )
        })
        .collect()
}

#[tokio::test]
async fn the_fixture_event_stores_the_good_lines_and_names_the_bad_ones() {
    let h = harness();
    // GIVEN the sample file where the fixture event says it is
    let event = fixture();
    let bucket = event["Records"][0]["s3"]["bucket"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    h.objects.put(&bucket, "uploads/sample logs.jsonl", sample());
    // WHEN S3 delivers the event
    let job = h.handle(event).await;
    // THEN the valid lines are stored, the two bad ones counted and named
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(counts(&job), (Some(7), Some(5), Some(2)));
    let r = result(&job);
    assert_eq!(r["rejected"][0]["line"], 5);
    assert!(r["rejected"][0]["reason"].as_str().unwrap().starts_with("invalid JSON"));
    assert_eq!(r["rejected"][1], json!({"line": 6, "reason": "message is empty"}));
    let by_level: u64 = r["levels"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!((by_level, &r["levels"]["warn"]), (5, &json!(1)), "{}", r["levels"]);
    assert_eq!(r["bytes_read"], sample().len());
    assert_eq!(h.entries(job.id, None).await, [1, 2, 3, 4, 7]);
    assert_eq!(h.entries(job.id, Some(Level::Error)).await, [4]);
    assert_eq!(h.entries(job.id, Some(Level::Warn)).await, [3]);
    let stored = h.ingest.entries.list(job.id, None, 10, None).await.unwrap().entries;
    assert_eq!(stored[2].attributes["duration_ms"], 812);
    assert_eq!(stored[2].trace_id.as_deref(), Some("4bf92f3577b34da6"));
    // AND the job is a dropped file's: default priority, the decoded key, admins' (no owner prefix)
    let JobSpec::LogIngest(p) = &job.spec else {
        panic!("{:?}", job.spec)
    };
    assert_eq!(
        (p.bucket.as_str(), p.key.as_str(), p.file_name.as_str()),
        (bucket.as_str(), "uploads/sample logs.jsonl", "sample logs.jsonl")
    );
    assert_eq!(
        (job.priority, job.owner.as_ref(), job.attempts),
        (DEFAULT_PRIORITY, None, 1)
    );
    let stages: Vec<&str> = job.timeline.iter().map(|e| e.message.as_str()).collect();
    assert!(
        stages.contains(&"started processing") && stages.contains(&"completed"),
        "{stages:?}"
    );
    assert_eq!(job.progress.percent, 100);
    assert!(h.queue.take_ingest().is_empty(), "nothing to continue");
}

#[tokio::test]
async fn a_dropped_file_belongs_to_the_owner_of_its_prefix() {
    let h = harness();
    let job = h.drop_file("uploads/alice/app.jsonl", sample()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(job.owner.as_ref().map(|o| o.as_str()), Some("alice"));
}

#[tokio::test]
async fn a_duplicate_event_finds_the_same_job_and_stores_nothing_twice() {
    let h = harness();
    let first = h.drop_file("uploads/dup.jsonl", sample()).await;
    assert_eq!(h.entries.written(), 5);
    let second = h.deliver("uploads/dup.jsonl", sample().len()).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 1, "the finished job is not run again");
    assert_eq!(h.store.all().len(), 1, "one job");
    assert_eq!(h.entries.written(), 5, "no entry written twice");
    assert_eq!(h.entries(first.id, None).await.len(), 5);
}

#[tokio::test]
async fn an_uploaded_file_is_ingested_under_the_job_the_api_made() {
    let h = harness();
    // GIVEN the job the api makes for an upload (its id is in the key)
    let alice = shared::auth::Owner::parse("alice").unwrap();
    let id = JobId::new();
    let key = LogIngestPayload::upload_key(&alice, id, "app.jsonl");
    let spec = JobSpec::LogIngest(LogIngestPayload {
        bucket: BUCKET.into(),
        key: key.clone(),
        file_name: "app.jsonl".into(),
        size: sample().len() as u64,
    });
    let mut job = Job::new(spec, DEFAULT_PRIORITY, None, shared::clock::now())
        .unwrap()
        .owned_by(alice);
    job.id = id;
    h.ingest.jobs.create_pending(job, None, true).await.unwrap();
    h.ingest.jobs.mark_queued(id, "uploaded").await.unwrap();
    // WHEN its object's event arrives
    let job = h.drop_file(&key, sample()).await;
    // THEN that job runs; no other is made
    assert_eq!(job.id, id);
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(h.store.all().len(), 1);
}

#[tokio::test]
async fn a_gzip_file_is_read_through_the_decoder() {
    let h = harness();
    let gz = gzip(&sample());
    let job = h.drop_file("uploads/app.jsonl.gz", gz.clone()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(counts(&job), (Some(7), Some(5), Some(2)));
    assert_eq!(
        result(&job)["bytes_read"],
        gz.len(),
        "progress counts the compressed bytes"
    );
}

#[tokio::test]
async fn an_empty_file_completes_with_nothing_stored() {
    let h = harness();
    let job = h.drop_file("uploads/empty.jsonl", Vec::new()).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(counts(&job), (Some(0), Some(0), Some(0)));
    assert_eq!(h.entries.written(), 0);
}

#[tokio::test]
async fn unreadable_files_fail_the_job_with_a_clear_error() {
    let h = harness();
    let binary = h
        .drop_file("uploads/binary.jsonl", vec![0xff, 0xfe, 0x00, 0x41, b'\n'])
        .await;
    assert_eq!(binary.status, JobStatus::Failed);
    assert!(
        binary
            .error
            .as_deref()
            .unwrap()
            .contains("line 1: the file is not UTF-8"),
        "{:?}",
        binary.error
    );

    let csv = h.drop_file("uploads/table.jsonl", b"a,b,c\n1,2,3\n".to_vec()).await;
    assert_eq!(csv.status, JobStatus::Failed);
    assert_eq!(
        csv.error.as_deref(),
        Some("not a JSONL file: none of its 2 lines is JSON")
    );

    let missing = h.deliver("uploads/gone.jsonl", 10).await;
    assert_eq!(missing.status, JobStatus::Failed);
    assert_eq!(
        missing.error.as_deref(),
        Some(format!("object s3://{BUCKET}/uploads/gone.jsonl not found (never uploaded, or deleted)").as_str())
    );
    for job in [&binary, &csv, &missing] {
        assert_eq!(job.attempts, 1, "a bad file is not tried again");
    }
    assert!(h.queue.take_ingest().is_empty(), "nothing restarted");
}

#[tokio::test]
async fn lines_too_long_to_read_or_to_store_are_rejected_by_number() {
    let mut h = harness();
    h.ingest.limits.max_line = 400 * 1024;
    let long = format!(
        "{{\"timestamp\":1795428000,\"level\":\"info\",\"message\":\"{}\"}}\n",
        "x".repeat(350 * 1024)
    );
    let huge = format!("{}\n", "y".repeat(500 * 1024));
    let body = format!("{}{long}{huge}{}", jsonl(1, "\n"), jsonl(1, "\n"));
    let job = h.drop_file("uploads/long-lines.jsonl", body).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(counts(&job), (Some(4), Some(2), Some(2)));
    let r = result(&job);
    assert!(
        r["rejected"][0]["reason"].as_str().unwrap().starts_with("line is 358"),
        "{}",
        r["rejected"][0]
    );
    assert_eq!(
        r["rejected"][1],
        json!({"line": 3, "reason": "line is longer than 409600 bytes; skipped"})
    );
    assert_eq!(rejected_lines(&job), [2, 3]);
    assert_eq!(h.entries(job.id, None).await, [1, 4]);
}

#[tokio::test]
async fn progress_is_recorded_every_ten_percent_of_the_bytes() {
    let h = harness();
    let mut body = String::new();
    for n in 0..3000 {
        body.push_str(&format!(
            "{{\"timestamp\":\"2026-11-23T10:00:00Z\",\"level\":\"info\",\"message\":\"event {n}\",\"padding\":\"{}\"}}\n",
            "x".repeat(200)
        ));
    }
    let job = h.drop_file("uploads/big.jsonl", body).await;
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
    assert!(steps.iter().all(|s| s % 10 == 0 && *s < 100), "{steps:?}");
    assert_eq!(h.entries(job.id, None).await.len(), 3000);
    assert_eq!(job.progress.percent, 100);
}

#[tokio::test]
async fn a_file_that_outlasts_an_invocation_continues_from_its_checkpoint_and_stores_every_line_once() {
    let mut h = harness();
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
    let first = h.drop_file("uploads/long.jsonl", body).await;
    assert_eq!(first.status, JobStatus::Processing, "paused after its first batch");
    let sent = h.queue.ingest.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one checkpoint handed on");
    let checkpoint: Value = serde_json::from_str(&sent[0].0).unwrap();
    assert_eq!((checkpoint["line"].as_u64(), sent[0].1), (Some(25), Duration::ZERO));

    let invocations = 1 + h.drain_queue().await;
    let job = h.job(first.id).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert!(invocations >= 20, "{invocations} invocations");
    assert_eq!(counts(&job), (Some(520), Some(515), Some(5)));
    assert_eq!(rejected_lines(&job), [100, 200, 300, 400, 500]);
    let expected: Vec<u64> = (1..=520).filter(|n| n % 100 != 0).collect();
    assert_eq!(h.entries(job.id, None).await, expected);
    assert_eq!(h.entries.written(), 515, "every valid line stored exactly once");
    assert_eq!(job.attempts, 1, "one attempt, handed over between invocations");
    assert!(
        job.timeline.len() < 20,
        "checkpoints update the progress, they do not fill the timeline: {:?}",
        job.timeline
    );
}

#[tokio::test]
async fn a_gzip_file_that_outlasts_an_invocation_skips_the_lines_already_done() {
    let mut h = harness();
    h.ingest.time_budget = std::time::Duration::ZERO;
    let job = h
        .drop_file("uploads/long.jsonl.gz", gzip(jsonl(110, "\n").as_bytes()))
        .await;
    assert_eq!(job.status, JobStatus::Processing);
    let invocations = 1 + h.drain_queue().await;
    let job = h.job(job.id).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(invocations, 5, "25 lines each, the last 10 in the fifth");
    assert_eq!(counts(&job), (Some(110), Some(110), Some(0)));
    assert_eq!(h.entries(job.id, None).await, (1..=110).collect::<Vec<u64>>());
    assert_eq!(h.entries.written(), 110, "no line stored twice");
}

#[tokio::test]
async fn a_checkpoint_taken_at_the_very_end_of_the_file_completes_in_the_next_invocation() {
    let mut h = harness();
    h.ingest.time_budget = std::time::Duration::ZERO; // checkpoint after every 25 lines
    let first = h.drop_file("uploads/exact.jsonl", jsonl(50, "\n")).await;
    assert_eq!(first.status, JobStatus::Processing);
    let invocations = 1 + h.drain_queue().await;
    let job = h.job(first.id).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(invocations, 3, "the third starts past the end and finds nothing left");
    assert_eq!(counts(&job), (Some(50), Some(50), Some(0)));
    assert_eq!(result(&job)["bytes_read"], jsonl(50, "\n").len());
    assert_eq!(h.entries.written(), 50);
}

/// GIVEN a file whose first attempt fails with `fault`, WHEN the fault is gone and the queue's
/// restart is delivered, THEN the second attempt completes and every line is stored once.
async fn given_back_and_restarted(h: &Harness, key: &str, expected_error: &str) {
    let job = h.drop_file(key, sample()).await;
    assert_eq!(job.status, JobStatus::Queued, "given back: {:?}", job.error);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.error.as_deref(), Some(expected_error));
    let sent = h.queue.ingest.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&sent[0].0).unwrap(),
        json!({"job_id": job.id}),
        "a restart"
    );
    assert_eq!(
        sent[0].1,
        Duration::seconds(10),
        "after a pause that grows with the attempts"
    );

    h.objects.fail(None);
    h.entries.fail(None);
    *h.objects.break_after.lock().unwrap() = None;
    assert_eq!(h.drain_queue().await, 1);
    let job = h.job(job.id).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(job.attempts, 2);
    assert_eq!(counts(&job), (Some(7), Some(5), Some(2)));
    assert_eq!(h.entries(job.id, None).await, [1, 2, 3, 4, 7]);
}

#[tokio::test]
async fn a_transient_object_failure_gives_the_attempt_back() {
    let h = harness();
    h.objects.fail(Some(Fault::Throttled));
    given_back_and_restarted(&h, "uploads/throttled.jsonl", "GetObject failed (ThrottlingException)").await;
}

#[tokio::test]
async fn a_body_that_breaks_off_gives_the_attempt_back() {
    let h = harness();
    *h.objects.break_after.lock().unwrap() = Some(100);
    given_back_and_restarted(
        &h,
        "uploads/reset.jsonl",
        "reading s3://uploads-bucket/uploads/reset.jsonl: connection reset by peer (MemoryObjects)",
    )
    .await;
}

#[tokio::test]
async fn a_transient_store_failure_gives_the_attempt_back() {
    let h = harness();
    h.entries.fail(Some(Fault::Throttled));
    given_back_and_restarted(&h, "uploads/store.jsonl", "BatchWriteItem failed (ThrottlingException)").await;
}

#[tokio::test]
async fn a_permanent_failure_fails_the_job_at_once() {
    let h = harness();
    h.objects.fail(Some(Fault::Denied));
    let job = h.drop_file("uploads/denied.jsonl", sample()).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.as_deref(), Some("GetObject failed (AccessDenied)"));
    assert_eq!(job.attempts, 1);
    assert!(h.queue.take_ingest().is_empty(), "nothing restarted");
}

#[tokio::test]
async fn a_failure_that_outlasts_the_attempts_fails_the_job() {
    let h = harness();
    h.objects.fail(Some(Fault::Throttled));
    let job = h.drop_file("uploads/down.jsonl", sample()).await;
    assert_eq!(h.drain_queue().await, 2, "restarted twice");
    let job = h.job(job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, shared::job::MAX_ATTEMPTS);
    assert_eq!(job.error.as_deref(), Some("GetObject failed (ThrottlingException)"));
}
