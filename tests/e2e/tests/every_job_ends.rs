//! The issue "every job ends", observation by observation, through the running stack: what a
//! careless or hostile client sends either gets a 4xx naming the field, or becomes a job that
//! reaches a final state with a short, clear reason. Nothing is left `processing`.

use std::io::Write;
use std::time::{Duration, Instant};

use e2e::{api_url, get_json};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn post(path: &str, body: Value) -> (u16, Value) {
    e2e::post_json(path, &body).await
}

async fn upload(name: &str, bytes: Vec<u8>) -> String {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    let resp = e2e::http()
        .post(format!("{}/api/v1/files/upload", api_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "upload of {name}");
    let accepted: Value = resp.json().await.unwrap();
    accepted["job_id"].as_str().unwrap().to_string()
}

/// Waits (at most `secs`) until the ingest job is completed or failed; says what it waited for.
async fn ingest_ended(id: &str, secs: u64) -> Value {
    let start = Instant::now();
    loop {
        let status = get_json(&format!("/api/v1/jobs/{id}")).await;
        if matches!(status["status"].as_str(), Some("completed" | "failed")) {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "ingest job {id} not completed or failed after {secs} s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn line(level: &str, message: &str) -> String {
    json!({"timestamp": "2026-11-30T10:00:00Z", "level": level, "message": message}).to_string() + "\n"
}

/// (1) A 10,000-character store id with 25 image URLs used to make every part record too big to
/// store, dead-letter the part and leave the job `ongoing` forever: it is refused at the edge.
#[tokio::test]
async fn a_store_id_too_long_to_store_is_refused_with_a_400_naming_it() {
    let urls: Vec<String> = (0..25).map(|i| format!("http://127.0.0.1:8090/{i}.png")).collect();
    let (status, body) = post(
        "/api/submit/",
        json!({"count": 1, "visits": [{"store_id": "S".repeat(10_000), "image_url": urls, "visit_time": "now"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("store_id") && error.contains("at most 64"), "{error}");
    assert!(error.len() < 200, "the refusal does not echo the value: {error}");
}

/// (7) A 420 KB asset id was answered 503 "try again later": a client mistake reported as ours.
#[tokio::test]
async fn an_asset_id_too_long_to_store_is_a_400_not_a_503() {
    let (status, body) = post(
        "/jobs",
        json!({"kind": "archive", "payload": {"asset_id": "a".repeat(420 * 1024), "source": "s3://b/k.mp4"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("payload.asset_id"),
        "{body}"
    );
}

/// (2) 100 lines whose level is 5,000 characters: the reasons quote the value in part, the job
/// item stays small, and the ingest completes with every line rejected by number.
#[tokio::test]
async fn lines_with_huge_bad_values_are_rejected_with_short_reasons_and_the_job_completes() {
    let level = "L".repeat(5_000);
    let body: String = (0..100).map(|n| line(&level, &format!("event {n}"))).collect();
    assert!(body.len() > 500_000);
    let id = upload("huge-levels.jsonl", body.into_bytes()).await;
    let status = ingest_ended(&id, 120).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        (status["lines_read"].as_u64(), status["lines_rejected"].as_u64()),
        (Some(100), Some(100))
    );
    let rejected = status["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 100);
    for r in rejected {
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.starts_with("unknown level") && reason.len() <= 200, "{reason}");
    }
}

/// (3) One 420 KB line used to fail the whole file (BatchWriteItem refused the item): it is a
/// rejected line; the lines around it are stored.
#[tokio::test]
async fn one_line_too_big_to_store_is_rejected_and_the_rest_of_the_file_is_stored() {
    let mut body = line("info", "before");
    body.push_str(&line("info", &"m".repeat(420 * 1024)));
    body.push_str(&line("warn", "after"));
    let id = upload("one-big-line.jsonl", body.into_bytes()).await;
    let status = ingest_ended(&id, 120).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        (status["lines_stored"].as_u64(), status["lines_rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(status["rejected"][0]["line"], 2);
    assert!(
        status["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("stored up to")
    );
}

/// (4) A small .jsonl.gz that inflates to hundreds of MB without a newline used to exhaust the
/// function's memory: it is refused as it is read, and the job fails saying why.
#[tokio::test]
async fn a_gzip_bomb_fails_its_job_with_the_reason() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..300 {
        gz.write_all(&zeros).unwrap();
    }
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() < 1 << 20, "{} compressed bytes", bytes.len());
    let id = upload("bomb.jsonl.gz", bytes).await;
    let status = ingest_ended(&id, 120).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("decompression bomb"),
        "{status}"
    );
}

/// (6) Retrying a failed log_ingest job sent it to the worker, which failed it again: now the
/// ingest function runs it. (10) The same path is what the sweeper uses for an upload that never
/// came: the job runs from the queue and fails saying the object is missing.
#[tokio::test]
async fn a_retried_ingest_job_is_run_by_the_ingest_function() {
    let (status, presigned) = post("/api/v1/files", json!({"file_name": "late.jsonl", "size": 64})).await;
    assert_eq!(status, 201, "{presigned}");
    let id = presigned["job_id"].as_str().unwrap().to_string();
    // Nothing is uploaded: ended by hand (queued -> failed), as the sweeper would after its bound.
    let resp = e2e::http()
        .put(format!("{}/jobs/{id}/status", api_url()))
        .json(&json!({"status": "failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let (status, retried) = post(&format!("/jobs/{id}/retry"), json!({})).await;
    assert_eq!(status, 200, "{retried}");
    let ended = ingest_ended(&id, 120).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["error"].as_str().unwrap();
    assert!(
        error.contains("not found"),
        "run by the ingest function, which finds no object: {error}"
    );
    assert!(!error.contains("log_ingest jobs are run by"), "{error}");

    // Once the file is there, a retry ingests it.
    let key = presigned["key"]
        .as_str()
        .map(str::to_owned)
        .expect("the presign answer names its key");
    let s3 = e2e::s3().await;
    let bucket = e2e::stack_var("UPLOADS_BUCKET");
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(line("info", "finally").into_bytes().into())
        .send()
        .await
        .unwrap();
    // The upload's own S3 event finds the job failed and leaves it; the retry runs it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = post(&format!("/jobs/{id}/retry"), json!({})).await;
    assert_eq!(status, 200);
    let ended = ingest_ended(&id, 120).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["lines_stored"], 1);
}

/// (10) An image job whose part is dead-lettered used to stay `processing` (`ongoing`) forever:
/// the message on the dead-letter queue is delivered to the sweeper, which fails the job with the
/// reason.
#[tokio::test]
async fn a_dead_lettered_part_fails_its_image_job() {
    // An image server that accepts and never answers: the part is still being measured while
    // its (copied) message reaches the dead-letter queue, as when a worker crashes on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let (status, body) = post(
        "/api/submit/",
        json!({"count": 1, "visits": [{"store_id": "S00339218", "image_url": [format!("http://127.0.0.1:{port}/a.jpg")], "visit_time": "now"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let job = loop {
        let job = get_json(&format!("/jobs/{id}")).await;
        if job["status"] == "processing" {
            break job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not start: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The run key is the run's start in nanoseconds (milliseconds on the wire).
    let started = job["started_at"].as_str().unwrap();
    let started = time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339).unwrap();
    let run = started.unix_timestamp_nanos().to_string();
    let sqs = aws_sdk_sqs::Client::new(&aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await);
    sqs.send_message()
        .queue_url(e2e::stack_var("NORMAL_DLQ_URL"))
        .message_body(json!({"job_id": id, "part": 0, "run": run}).to_string())
        .send()
        .await
        .unwrap();
    let ended = e2e::wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"], "part 1 was dead-lettered after 3 deliveries");
    let status = get_json(&format!("/api/status?jobid={id}")).await;
    assert_eq!(status["status"], "failed", "the Retail Pulse view agrees: {status}");
}

/// The sweeper through `cargo lambda invoke`, with the schedule's event: it answers with what
/// it did (the running stack's jobs are all moving, so it changes nothing of theirs), and with the
/// shard counts the table's job items are kept keyed with: the stack's.
#[test]
fn the_sweeper_answers_a_scheduled_event_with_its_report() {
    let out = e2e::invoke("sweeper", "events/sweeper/scheduled-event.json");
    let sweep = &out["sweep"];
    assert!(sweep["looked_at"].is_u64(), "{out}");
    for field in ["woken", "enqueued", "resent", "requeued", "failed", "skipped"] {
        assert!(sweep[field].is_u64(), "{field}: {out}");
    }
    let keyed = format!(
        "status {}, list {}",
        e2e::stack_var("STATUS_SHARDS"),
        e2e::stack_var("LIST_SHARDS")
    );
    assert_eq!(out["keys"]["keyed"], keyed.as_str(), "{out}");
    assert!(out["keys"]["done"].is_boolean(), "{out}");
}

/// A job due more than 15 minutes ahead (SQS's longest delay) gets no message when created: it is
/// parked, and the sweeper sends its message once it is due within 15 minutes. Through the API and
/// the sweeper function: a job due in 15 minutes and 3 seconds, a sweep 4 s later.
#[tokio::test]
async fn a_job_due_beyond_15_minutes_is_parked_and_sent_by_the_sweeper_once_due_within_them() {
    let source = e2e::upload(b"parked".to_vec()).await;
    let due = time::OffsetDateTime::now_utc() + time::Duration::seconds(15 * 60 + 3);
    let (status, job) = post(
        "/jobs",
        json!({"kind": "archive", "scheduled_for": shared::clock::format(due),
               "payload": {"asset_id": "parked", "source": source}}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let sent = |job: &Value| {
        job["timeline"]
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["message"] == "enqueued; waiting for a worker"))
    };
    assert!(!sent(&job), "parked: no message yet: {job}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The stack's scheduled sweeper may have sent it already; this sweep does if not.
    let out = e2e::invoke("sweeper", "events/sweeper/scheduled-event.json");
    assert!(out["sweep"]["woken"].is_u64(), "{out}");
    let job = get_json(&format!("/jobs/{id}")).await;
    assert!(sent(&job), "sent once due within 15 minutes: {job}");
    assert_eq!(job["status"], "pending", "{job}");
    let cancelled = e2e::http()
        .delete(format!("{}/jobs/{id}", api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200, "cancelled, not left for 15 minutes");
}
