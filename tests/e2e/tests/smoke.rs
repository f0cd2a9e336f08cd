//! The wiring, end to end: HTTP -> api -> DynamoDB + SQS -> bridge -> worker, and
//! S3 put -> notification -> bridge -> ingest, each visible in the job's stored state.

use std::time::{Duration, Instant};

use e2e::{api_url, s3, stack_var, wait_finished};
use serde_json::{Value, json};

#[tokio::test]
async fn an_http_job_is_picked_up_by_the_worker_from_sqs() {
    let source = e2e::upload(vec![1u8; 1000]).await;
    let http = e2e::http();
    let resp = http
        .post(format!("{}/jobs", api_url()))
        .json(&json!({"kind": "archive", "payload": {"asset_id": "smoke", "source": source}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let job: Value = resp.json().await.unwrap();
    assert!(
        matches!(job["status"].as_str(), Some("pending" | "processing" | "completed")),
        "{job}"
    );
    let done = wait_finished(job["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempts"], 1);
    let steps: Vec<&str> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    // A new job stays `pending` until a worker takes it: the api notes its message as a
    // `pending` entry, unless a worker claimed it first (the note then changes nothing). It is
    // never `queued` on the way.
    assert!(
        steps == ["pending", "pending", "processing", "completed"] || steps == ["pending", "processing", "completed"],
        "{steps:?}"
    );
}

#[tokio::test]
async fn a_jsonl_dropped_into_the_bucket_reaches_the_ingest_function() {
    let bucket = stack_var("UPLOADS_BUCKET");
    let key = format!("uploads/e2e-admin/smoke {}.jsonl", uuid::Uuid::new_v4());
    let lines = "{\"timestamp\":\"2026-11-23T10:00:00Z\",\"level\":\"info\",\"message\":\"a\"}\n{broken\n";
    s3().await
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(lines.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let http = e2e::http();
    loop {
        let page: Value = e2e::get_json_with(&http, &format!("/jobs?kind=log_ingest&limit=50")).await;
        if let Some(job) = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["payload"]["key"] == key.as_str())
        {
            let done = wait_finished(job["id"].as_str().unwrap(), Duration::from_secs(60)).await;
            assert_eq!(done["status"], "completed", "{done}");
            assert_eq!(done["result"]["lines_read"], 2);
            assert_eq!(done["result"]["lines_rejected"], 1);
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no job for {key}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
