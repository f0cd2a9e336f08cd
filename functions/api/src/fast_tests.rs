//! The jobs routes in-process over the in-memory store and queue: no emulators, milliseconds.
//! `cargo test -p api fast_tests` runs them on a machine without the stack; the emulator-backed
//! tests in `tests.rs` cover the same routes against DynamoDB and SQS.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::job::{JobSpec, JobStatus};
use shared::service::Jobs;
use shared::store::JobStore;
use shared::store::memory::{MemoryJobStore, MemoryQueue};
use tower::ServiceExt;

use crate::app::{AppState, router};

struct Api {
    app: axum::Router,
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
}

/// AWS clients that are never called by these routes (uploads and parts are not exercised here).
fn idle_clients() -> (aws_sdk_s3::Client, aws_sdk_dynamodb::Client) {
    let region = aws_sdk_dynamodb::config::Region::new("us-east-1");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(region.clone())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(region)
            .build(),
    );
    (s3, dynamodb)
}

fn api() -> Api {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let (s3, dynamodb) = idle_clients();
    let app = router(AppState {
        jobs: Jobs::new(store.clone(), queue.clone(), time::Duration::seconds(60)),
        files: crate::files::Files {
            s3,
            bucket: "uploads".into(),
            entries: shared::store::entries::EntryStore::new(dynamodb.clone(), "entries"),
            max_upload_bytes: 64 * 1024,
            max_presigned_bytes: 1024 * 1024,
        },
        parts: Arc::new(shared::store::DynamoPartStore::new(dynamodb, "jobs")),
    });
    Api { app, store, queue }
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn archive(priority: u8) -> Value {
    json!({"kind": "archive", "priority": priority, "payload": {"asset_id": "a1", "source": "s3://b/k.mp4"}})
}

#[tokio::test]
async fn a_created_job_is_queued_on_its_priority_band() {
    let api = api();
    let (status, job) = api.call("POST", "/jobs", Some(archive(5))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["status"], "queued");
    let (status, normal) = api.call("POST", "/jobs", Some(archive(2))).await;
    assert_eq!(status, StatusCode::CREATED);
    let sent = api.queue.sent.lock().unwrap().clone();
    let priorities: Vec<u8> = sent.iter().map(|(_, p, _)| *p).collect();
    assert_eq!(priorities, [5, 2]);
    assert_eq!(sent[1].0.job_id.to_string(), normal["id"]);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_creates_nothing() {
    let api = api();
    let cases = [
        (json!({"kind": "archive", "payload": {"asset_id": "a"}}), "payload"),
        (
            json!({"kind": "archive", "payload": {"asset_id": "a".repeat(420 * 1024), "source": "s3://b/k"}}),
            "payload.asset_id",
        ),
        (
            json!({"kind": "archive", "priority": 9, "payload": {"asset_id": "a", "source": "s3://b/k"}}),
            "priority",
        ),
        (
            json!({"kind": "image", "payload": {"count": 1, "visits": [{"store_id": "S".repeat(65), "image_url": ["http://a/b.jpg"], "visit_time": "t"}]}}),
            "payload.visits[0].store_id",
        ),
        (json!({"kind": "email", "payload": {}}), "unknown kind"),
    ];
    for (body, field) in cases {
        let (status, err) = api.call("POST", "/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let text = err["error"].as_str().unwrap();
        assert!(text.contains(field) && text.len() < 300, "{field}: {text}");
    }
    assert!(api.store.all().is_empty());
}

#[tokio::test]
async fn a_queue_outage_is_a_5xx_and_leaves_no_job_behind() {
    let api = api();
    *api.queue.fail_with.lock().unwrap() = Some("SQS is down".into());
    let (status, err) = api.call("POST", "/jobs", Some(archive(3))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{err}");
    assert!(
        !err["error"].as_str().unwrap().contains("SQS is down"),
        "no internals: {err}"
    );
    assert!(api.store.all().is_empty(), "the unsent job was removed");
}

#[tokio::test]
async fn a_failed_ingest_job_is_retried_through_the_ingest_function_and_others_through_the_worker() {
    let api = api();
    let spec = JobSpec::from_json("log_ingest", json!({"bucket": "b", "key": "uploads/x/a.jsonl"})).unwrap();
    let mut ingest = shared::job::Job::new(spec, 3, None, shared::clock::now()).unwrap();
    ingest
        .transition(JobStatus::Queued, shared::clock::now(), "waiting for the upload")
        .unwrap();
    ingest
        .transition(JobStatus::Failed, shared::clock::now(), "never uploaded")
        .unwrap();
    api.store.put(ingest.clone());
    let (status, job) = api.call("POST", &format!("/jobs/{}/retry", ingest.id), None).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "queued");
    let sent = api.queue.sent.lock().unwrap().clone();
    assert_eq!(
        (sent[0].0.job_id, sent[0].1),
        (ingest.id, 0),
        "priority 0 = the ingest function's queue"
    );
    // and the state machine still refuses what it must
    let (status, err) = api.call("POST", &format!("/jobs/{}/retry", ingest.id), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, _) = api
        .call(
            "PUT",
            &format!("/jobs/{}/status", ingest.id),
            Some(json!({"status": "completed"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, job) = api.call("DELETE", &format!("/jobs/{}", ingest.id), None).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    assert_eq!(
        api.store.get(ingest.id).await.unwrap().unwrap().status,
        JobStatus::Cancelled
    );
}

#[tokio::test]
async fn listings_filter_by_status_and_kind_newest_first_in_cursor_pages() {
    let api = api();
    for _ in 0..5 {
        let (status, _) = api.call("POST", "/jobs", Some(archive(3))).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = api.call("GET", "/jobs?status=queued&kind=archive&limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = api
        .call("GET", &format!("/jobs?status=queued&limit=10&next={next}"), None)
        .await;
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 3);
    let (_, none) = api.call("GET", "/jobs?status=failed", None).await;
    assert_eq!(none["jobs"], json!([]));
    let (status, _) = api.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_refusal_quotes_a_huge_value_only_in_part() {
    let api = api();
    let huge = "x".repeat(1 << 20);
    let (status, err) = api
        .call(
            "POST",
            "/jobs",
            Some(json!({"kind": "archive", "priority": huge, "payload": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let text = err["error"].as_str().unwrap();
    assert!(text.starts_with("priority: invalid type"), "{}", &text[..80]);
    assert!(
        text.chars().count() <= shared::limits::RESPONSE_ERROR,
        "{} characters",
        text.len()
    );
    let (status, err) = api.call("GET", &format!("/jobs/{}", "y".repeat(10_000)), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"].as_str().unwrap().len() < 200,
        "{}",
        &err["error"].to_string()[..80]
    );
}

#[tokio::test]
async fn an_image_url_with_credentials_is_a_400_naming_its_field_without_quoting_it() {
    let api = api();
    let visits =
        json!([{"store_id": "S1", "image_url": ["http://a/b.jpg", "http://alice:s3cret@a/c.jpg"], "visit_time": "t"}]);
    let (status, err) = api
        .call("POST", "/api/submit/", Some(json!({"count": 1, "visits": visits})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(
        err,
        json!({"error": "visits[0].image_url[1]: must not carry credentials (user:password@)"})
    );
    let (status, err) = api
        .call(
            "POST",
            "/jobs",
            Some(json!({"kind": "image", "payload": {"count": 1, "visits": visits}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let text = err["error"].as_str().unwrap();
    assert!(
        text.starts_with("payload.visits[0].image_url[1]: must not carry credentials"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert!(api.store.all().is_empty());
}
