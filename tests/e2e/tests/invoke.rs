//! Each function through `cargo lambda invoke --data-file events/...`, the events users start from.

use std::time::Duration;

use e2e::{body, invoke, s3, stack_var, wait_finished};

/// The `sub` of the JWT authorizer claims in `events/api/*.json` (an admin).
const FIXTURE_SUB: &str = "5f1c2a9e-7b3d-4c8a-9e21-6d0b4f3a8c17";

#[test]
fn api_health_and_errors_are_json() {
    let r = invoke("api", "events/api/health.json");
    assert_eq!(r["statusCode"], 200);
    assert_eq!(body(&r)["status"], "ok");

    let r = invoke("api", "events/api/create-invalid-job.json");
    assert_eq!(r["statusCode"], 400);
    assert_eq!(body(&r)["error"], "payload: missing field `source`");

    let r = invoke("api", "events/api/get-job.json");
    assert_eq!(r["statusCode"], 404);
    assert!(body(&r)["error"].as_str().unwrap().contains("not found"));

    let r = invoke("api", "events/api/list-jobs.json");
    assert_eq!(r["statusCode"], 200);
    let listed = body(&r);
    assert!(listed["jobs"].as_array().unwrap().len() <= 5);
    for job in listed["jobs"].as_array().unwrap() {
        assert_eq!(job["kind"], "archive");
        assert!(matches!(job["status"].as_str(), Some("completed" | "failed")));
    }
}

#[tokio::test]
async fn api_create_event_makes_a_job_the_worker_completes() {
    let bucket = stack_var("UPLOADS_BUCKET");
    s3().await
        .put_object()
        .bucket(&bucket)
        .key(format!("uploads/{FIXTURE_SUB}/sample clip.mp4"))
        .body(vec![7u8; 4096].into())
        .send()
        .await
        .unwrap();
    let r = tokio::task::spawn_blocking(|| invoke("api", "events/api/create-archive-job.json"))
        .await
        .unwrap();
    // The event carries an Idempotency-Key: 201 the first time, 200 with the same job after.
    assert!(r["statusCode"] == 201 || r["statusCode"] == 200, "{r}");
    let job = body(&r);
    assert_eq!(job["kind"], "archive");
    let again = body(
        &tokio::task::spawn_blocking(|| invoke("api", "events/api/create-archive-job.json"))
            .await
            .unwrap(),
    );
    assert_eq!(again["id"], job["id"]);
    let done = wait_finished(job["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["archived_key"],
        format!("archive/{FIXTURE_SUB}/clip-0042/sample clip.mp4"),
        "under its owner, the fixture's token subject"
    );
    assert_eq!(done["result"]["size"], 4096);
}

#[tokio::test]
async fn ingest_s3_event_with_a_plus_encoded_key_ingests_the_file_once() {
    let bucket = stack_var("UPLOADS_BUCKET");
    let data = std::fs::read(e2e::root().join("events/samples/app-logs.jsonl")).unwrap();
    // The event names "uploads/sample+logs.jsonl": '+' is a space in S3 event keys.
    s3().await
        .put_object()
        .bucket(&bucket)
        .key("uploads/sample logs.jsonl")
        .body(data.into())
        .send()
        .await
        .unwrap();
    let first = tokio::task::spawn_blocking(|| invoke("ingest", "events/ingest/s3-put-jsonl.json"))
        .await
        .unwrap();
    let id = first["jobs"][0].as_str().unwrap().to_string();
    let job = wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["payload"]["key"], "uploads/sample logs.jsonl");
    assert_eq!(job["result"]["lines_read"], 7);
    assert_eq!(job["result"]["lines_stored"], 5);
    let rejected: Vec<u64> = job["result"]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [5, 6], "the non-JSON line and the empty message");
    assert_eq!(
        job["result"]["levels"],
        serde_json::json!({"debug": 1, "error": 1, "fatal": 1, "info": 1, "warn": 1})
    );
    // The same event again (at-least-once delivery) finds the same job and does not redo it.
    let second = tokio::task::spawn_blocking(|| invoke("ingest", "events/ingest/s3-put-jsonl.json"))
        .await
        .unwrap();
    assert_eq!(second["jobs"][0], first["jobs"][0]);
    let after = wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(after["attempts"], job["attempts"]);
}

#[test]
fn worker_reports_only_the_malformed_record_of_the_sqs_batch() {
    let r = invoke("worker", "events/worker/sqs-batch.json");
    let failures: Vec<&str> = r["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    // Record 1 names a job that does not exist (acknowledged); record 2 is not a job message.
    assert_eq!(failures, ["059f36b4-87a3-44ab-83d2-661975830a7d"]);
}
