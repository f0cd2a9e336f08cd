//! Every endpoint and transition through the router, against the emulators (each test on its own
//! provisioned stack), plus the `events/api/*.json` fixtures as API Gateway would deliver them,
//! and the queue depths the dashboard reads from SQS. The same routes over the in-memory store are
//! `src/fast_tests.rs` (no stack).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};
use shared::queue::SqsJobQueue;
use shared::service::Jobs;
use shared::store::DynamoJobStore;
use tower::ServiceExt;

use api::app::{AppState, router};

struct Api {
    _t: TestStack,
    app: axum::Router,
}

async fn api_with_queues(high: Option<&str>, normal: Option<&str>) -> Api {
    let t = TestStack::new(None).await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let store = Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(
        SqsJobQueue::new(
            clients.sqs.clone(),
            high.unwrap_or(t.var("HIGH_QUEUE_URL")),
            normal.unwrap_or(t.var("NORMAL_QUEUE_URL")),
        )
        .with_ingest(t.var("INGEST_QUEUE_URL")),
    );
    let files = api_files(&t, &clients);
    let parts = Arc::new(shared::store::DynamoPartStore::new(
        clients.dynamodb.clone(),
        t.var("JOBS_TABLE"),
    ));
    let app = router(AppState {
        jobs: Jobs::new(store, queue, time::Duration::seconds(60)),
        files,
        parts,
        auth: api::auth::AuthConfig::default(),
    });
    Api { _t: t, app }
}

fn api_files(t: &TestStack, clients: &shared::aws::Clients) -> api::files::Files {
    api::files::Files {
        s3: clients.s3.clone(),
        bucket: t.var("UPLOADS_BUCKET").to_string(),
        entries: Arc::new(shared::store::entries::DynamoEntryStore::new(
            clients.dynamodb.clone(),
            t.var("LOG_ENTRIES_TABLE"),
        )),
        max_upload_bytes: 64 * 1024,
        max_presigned_bytes: 1024 * 1024,
    }
}

async fn api() -> Api {
    api_with_queues(None, None).await
}

impl Api {
    /// Sends `req`; one without a request context goes as an admin's (these tests are about the
    /// lifecycle; ownership is in `fast_tests`).
    async fn send(&self, mut req: Request<Body>) -> (StatusCode, Value) {
        if req.extensions().get::<lambda_http::request::RequestContext>().is_none() {
            req.extensions_mut().insert(api::auth::authorizer_context("ops", true));
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        self.send(req.body(body).unwrap()).await
    }

    /// Sends an `events/api/*.json` file through lambda_http's conversion, as in Lambda.
    async fn event(&self, file: &str) -> (StatusCode, Value) {
        let path = format!(
            "{}/../../events/api/{file}",
            std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (parts, body) = req.into_parts();
        self.send(Request::from_parts(parts, Body::from(body.to_vec()))).await
    }

    async fn create(&self, priority: u8) -> Value {
        let (status, job) = self
            .call(
                "POST",
                "/jobs",
                Some(json!({"kind": "archive", "priority": priority, "payload": {"asset_id": "a", "source": "s3://b/k"}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job
    }
}

fn id(job: &Value) -> String {
    job["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_event_fixtures_get_the_answers_their_names_promise() {
    let api = api().await;
    assert_eq!(
        api.event("health.json").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, body) = api.event("create-invalid-job.json").await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "payload: missing field `source`")
    );
    let (status, job) = api.event("create-archive-job.json").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (job["kind"].as_str(), job["priority"].as_u64()),
        (Some("archive"), Some(4))
    );
    let (status, again) = api.event("create-archive-job.json").await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::OK, &job["id"]),
        "Idempotency-Key in the fixture"
    );
    assert_eq!(api.event("get-job.json").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.event("update-status.json").await.0, StatusCode::NOT_FOUND);
    let (status, page) = api.event("list-jobs.json").await;
    assert_eq!(
        (status, page["jobs"].as_array().unwrap().len()),
        (StatusCode::OK, 0),
        "no completed/failed archive yet"
    );
    let (status, stats) = api.event("get-stats.json").await;
    assert_eq!(
        (status, stats["by_status"]["pending"].as_i64()),
        (StatusCode::OK, Some(1))
    );
}

#[tokio::test]
async fn a_job_moves_only_along_the_state_machine() {
    let api = api().await;
    let job = api.create(3).await;
    assert_eq!(job["status"], "pending");
    let url = format!("/jobs/{}", id(&job));
    let (status, got) = api.call("GET", &url, None).await;
    assert_eq!((status, &got["id"]), (StatusCode::OK, &job["id"]));

    let put = |s: &str| json!({ "status": s });
    for illegal in ["pending", "completed", "processing"] {
        let (status, body) = api.call("PUT", &format!("{url}/status"), Some(put(illegal))).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "an operator never sets {illegal}: {body}"
        );
        assert!(body["error"].as_str().unwrap().starts_with("status:"), "{body}");
    }
    let (status, body) = api.call("PUT", &format!("{url}/status"), Some(put("nonsense"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.call("PUT", &format!("{url}/status"), Some(put("queued"))).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "already sent, waiting for a worker: {body}"
    );
    assert_eq!(
        api.call("POST", &format!("{url}/retry"), None).await.0,
        StatusCode::CONFLICT,
        "not failed"
    );

    let (status, failed) = api.call("PUT", &format!("{url}/status"), Some(put("failed"))).await;
    assert_eq!((status, failed["status"].as_str()), (StatusCode::OK, Some("failed")));
    assert_eq!(failed["error"], "failed by an operator (ops)");
    assert_eq!(
        api.call("DELETE", &url, None).await.0,
        StatusCode::CONFLICT,
        "cannot cancel a failed job"
    );
    let (status, retried) = api.call("POST", &format!("{url}/retry"), None).await;
    assert_eq!(
        (status, retried["status"].as_str(), retried["attempts"].as_u64()),
        (StatusCode::OK, Some("queued"), Some(0))
    );
    let (status, done) = api.call("PUT", &format!("{url}/status"), Some(put("cancelled"))).await;
    assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    let steps: Vec<&str> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["pending", "pending", "failed", "queued", "cancelled"]);
    assert_eq!(api.call("DELETE", &url, None).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn cancel_then_cancel_again_conflicts() {
    let api = api().await;
    let job = api.create(2).await;
    let url = format!("/jobs/{}", id(&job));
    let (status, cancelled) = api.call("DELETE", &url, None).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(api.call("DELETE", &url, None).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_requests_get_a_json_error_naming_the_problem() {
    let api = api().await;
    let cases = [
        ("POST", "/jobs", Some("{not json"), "invalid JSON"),
        (
            "POST",
            "/jobs",
            Some(r#"{"kind": "fax", "payload": {}}"#),
            "unknown kind",
        ),
        (
            "POST",
            "/jobs",
            Some(r#"{"kind": "archive", "payload": {"asset_id": "a", "source": "s3://b/k"}, "priority": 9}"#),
            "priority",
        ),
        (
            "POST",
            "/jobs",
            Some(r#"{"kind": "archive", "payload": {"asset_id": "a", "source": "s3://b/k"}, "colour": 1}"#),
            "colour",
        ),
        (
            "POST",
            "/jobs",
            Some(
                r#"{"kind": "image", "payload": {"count": 2, "visits": [{"store_id": "S1", "image_url": ["http://x/a.jpg"], "visit_time": "t"}]}}"#,
            ),
            "payload.count",
        ),
        ("GET", "/jobs?status=bogus", None, "unknown status"),
        ("GET", "/jobs?limit=0", None, "limit"),
        ("GET", "/jobs?next=%21%21", None, "cursor"),
        ("GET", "/jobs/not-a-uuid", None, "not a job id"),
        ("POST", "/jobs/retry", Some("{}"), "give a filter"),
    ];
    for (method, path, body, needle) in cases {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if body.is_none() {
            req = Request::builder().method(method).uri(path);
        }
        let (status, json) = api
            .send(req.body(body.map(Body::from).unwrap_or_default()).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {json}");
        assert!(
            json["error"].as_str().unwrap().contains(needle),
            "{method} {path}: {json}"
        );
    }
    let (status, json) = api.call("GET", "/nope", None).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such route"))
    );
    assert_eq!(api.call("PATCH", "/jobs", None).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_job_and_refuses_a_different_body() {
    let api = api().await;
    let body = json!({"kind": "archive", "payload": {"asset_id": "a", "source": "s3://b/k"}});
    let req = |b: &Value| {
        Request::builder()
            .method("POST")
            .uri("/jobs")
            .header("content-type", "application/json")
            .header("idempotency-key", "client-42")
            .body(Body::from(b.to_string()))
            .unwrap()
    };
    let (s1, first) = api.send(req(&body)).await;
    let (s2, second) = api.send(req(&body)).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["id"], second["id"]);
    let (s3, err) = api
        .send(req(
            &json!({"kind": "archive", "payload": {"asset_id": "b", "source": "s3://b/k"}}),
        ))
        .await;
    assert_eq!(s3, StatusCode::CONFLICT, "{err}");
    let (_, stats) = api.call("GET", "/stats", None).await;
    assert_eq!(stats["total"], 1);
}

#[tokio::test]
async fn when_enqueueing_fails_the_client_gets_a_5xx_and_no_job_is_left() {
    let api = api_with_queues(
        Some("http://127.0.0.1:4566/000000000000/no-such-queue"),
        Some("http://127.0.0.1:4566/000000000000/no-such-queue"),
    )
    .await;
    let (status, body) = api
        .call(
            "POST",
            "/jobs",
            Some(json!({"kind": "archive", "payload": {"asset_id": "a", "source": "s3://b/k"}})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        !body["error"].as_str().unwrap().contains("no-such-queue"),
        "no internals leak: {body}"
    );
    let (_, page) = api.call("GET", "/jobs", None).await;
    assert_eq!(page["jobs"], json!([]));
    let (_, stats) = api.call("GET", "/stats", None).await;
    assert_eq!(stats["total"], 0);
}

#[tokio::test]
async fn bulk_retry_takes_the_failed_jobs_the_filter_names() {
    let api = api().await;
    let mut failed = Vec::new();
    for _ in 0..3 {
        let job = api.create(3).await;
        let url = format!("/jobs/{}/status", id(&job));
        api.call("PUT", &url, Some(json!({"status": "failed"}))).await;
        failed.push(id(&job));
    }
    api.create(3).await; // pending: not retried
    let (status, dry) = api
        .call("POST", "/jobs/retry", Some(json!({"kind": "archive", "dry_run": true})))
        .await;
    assert_eq!((status, dry["would_retry"].as_u64()), (StatusCode::OK, Some(3)));
    let (_, none) = api.call("POST", "/jobs/retry", Some(json!({"kind": "image"}))).await;
    assert_eq!(none["retried"], 0);
    let (_, done) = api.call("POST", "/jobs/retry", Some(json!({"all": true}))).await;
    assert_eq!(done["retried"], 3);
    let (_, page) = api.call("GET", "/jobs?status=failed", None).await;
    assert_eq!(page["jobs"], json!([]));
    let (_, page) = api.call("GET", "/jobs?status=queued&kind=archive", None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 3);
    let (_, page) = api.call("GET", "/jobs?status=pending&kind=archive", None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn listing_filters_by_repeated_status_and_kind_and_pages_with_next() {
    let api = api().await;
    let mut ids = Vec::new();
    for p in 1..=5 {
        ids.push(id(&api.create(p).await));
    }
    api.call("DELETE", &format!("/jobs/{}", ids[0]), None).await;
    let (_, page1) = api
        .call(
            "GET",
            "/jobs?status=pending&status=cancelled&kind=archive&limit=3",
            None,
        )
        .await;
    let got: Vec<String> = page1["jobs"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(got, [ids[4].clone(), ids[3].clone(), ids[2].clone()]);
    let next = page1["next"].as_str().unwrap();
    let (_, page2) = api
        .call(
            "GET",
            &format!("/jobs?status=pending&status=cancelled&limit=3&next={next}"),
            None,
        )
        .await;
    let got: Vec<String> = page2["jobs"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(got, [ids[1].clone(), ids[0].clone()]);
    assert!(page2["next"].is_null());
    let (_, only_cancelled) = api.call("GET", "/jobs?status=cancelled", None).await;
    assert_eq!(only_cancelled["jobs"].as_array().unwrap().len(), 1);
}

fn retail_submission() -> Value {
    json!({
        "count": 2,
        "visits": [
            {"store_id": "S00339218", "image_url": ["https://www.gstatic.com/webp/gallery/2.jpg", "https://www.gstatic.com/webp/gallery/3.jpg"], "visit_time": "time of store visit"},
            {"store_id": "S01408764", "image_url": ["https://www.gstatic.com/webp/gallery/3.jpg"], "visit_time": "time of store visit"}
        ]
    })
}

#[tokio::test]
async fn retail_pulse_submit_and_status_keep_the_seed_contract() {
    let api = api().await;
    // The seed's own example, with and without the trailing slash.
    for path in ["/api/submit/", "/api/submit"] {
        let (status, body) = api.call("POST", path, Some(retail_submission())).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
        assert_eq!(body.as_object().unwrap().len(), 1, "only job_id: {body}");
        let job_id = body["job_id"].as_str().unwrap().to_string();

        let (status, body) = api.call("GET", &format!("/api/status?jobid={job_id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ongoing", "job_id": job_id}));
        // The same job in the jobs API, as kind image.
        let (_, job) = api.call("GET", &format!("/jobs/{job_id}"), None).await;
        assert_eq!(
            (job["kind"].as_str(), job["status"].as_str()),
            (Some("image"), Some("pending"))
        );
        let (status, images) = api.call("GET", &format!("/jobs/{job_id}/images"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                images["images_total"].as_u64(),
                images["parts_total"].as_u64(),
                images["parts_done"].as_u64()
            ),
            (Some(3), Some(1), Some(0))
        );
    }

    let mut mismatch = retail_submission();
    mismatch["count"] = json!(3);
    let bad_requests = [
        (mismatch, "count: is 3 but visits has 2 entries"),
        (json!({"count": 1}), "missing field `visits`"),
        (
            json!({"count": 1, "visits": [{"image_url": ["https://x/a.jpg"]}]}),
            "visits[0]: missing field `store_id`",
        ),
        (
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["ftp://x/a.jpg"], "visit_time": "t"}]}),
            "visits[0].image_url[0]: must be an http(s) URL",
        ),
        (
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["https://x/a.jpg"]}]}),
            "visits[0]: missing field `visit_time`",
        ),
        (json!({"count": 0, "visits": []}), "visits: must not be empty"),
    ];
    for (body, expected) in bad_requests {
        let (status, answer) = api.call("POST", "/api/submit/", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{body}: {error:?} lacks {expected:?}");
    }

    for query in ["jobid=123", "jobid=0197a8a4-0000-7000-8000-000000000000"] {
        let (status, body) = api.call("GET", &format!("/api/status?{query}"), None).await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, json!({"error": "Job ID not found"}))
        );
    }
    let (status, body) = api.call("GET", "/api/status", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("jobid is required"));
    // An archive job is not a Retail Pulse job.
    let archive = api.create(3).await;
    let (status, body) = api
        .call("GET", &format!("/api/status?jobid={}", id(&archive)), None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "Job ID not found"}))
    );
    let (status, _) = api.call("GET", &format!("/jobs/{}/images", id(&archive)), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn queue_depths_count_waiting_messages_dead_letters_included() {
    let Api { _t: t, app } = api().await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    // GIVEN two messages waiting on the normal queue and one dead letter
    for (var, n) in [("NORMAL_QUEUE_URL", 2), ("HIGH_DLQ_URL", 1)] {
        for i in 0..n {
            clients
                .sqs
                .send_message()
                .queue_url(t.var(var))
                .message_body(format!("{{\"n\": {i}}}"))
                .send()
                .await
                .unwrap();
        }
    }
    let queues = api::dashboard::Queues::new(clients.clone(), |v| t.env.get(v).cloned());
    let api = Api {
        app: app.layer(axum::Extension(queues)),
        _t: t,
    };
    // WHEN the dashboard asks for the depths
    let (status, body) = api.call("GET", "/queues", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let depth = |name: &str| {
        body["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from {body}"))
    };
    // THEN every queue of the template is there, with what waits on it
    assert_eq!(
        body["queues"].as_array().unwrap().len(),
        api::dashboard::QUEUE_VARS.len(),
        "{body}"
    );
    assert_eq!(depth("normal")["visible"], 2, "{body}");
    assert_eq!(depth("high")["visible"], 0, "{body}");
    assert_eq!(depth("high_dead_letter")["visible"], 1, "{body}");
    assert_eq!(depth("high_dead_letter")["role"], "dead_letter");
}

/// The presigned path end to end on S3: `POST /jobs/uploads`, a PUT of 8 MB to the URL it
/// signed, `POST /jobs {"kind": "image", "upload_id"}`: the claim check is written under
/// `payloads/`, the submission is deleted, and the upload cannot be used twice.
#[tokio::test]
async fn an_image_submission_over_6_mb_goes_through_a_presigned_upload() {
    let t = TestStack::new(None).await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let bucket = t.var("UPLOADS_BUCKET").to_string();
    let store = Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(SqsJobQueue::new(
        clients.sqs.clone(),
        t.var("HIGH_QUEUE_URL"),
        t.var("NORMAL_QUEUE_URL"),
    ));
    let app = router(AppState {
        jobs: Jobs::new(store, queue, time::Duration::seconds(60))
            .with_payloads(Arc::new(shared::payloads::S3Payloads::new(clients.s3.clone(), &bucket))),
        files: api_files(&t, &clients),
        parts: Arc::new(shared::store::DynamoPartStore::new(
            clients.dynamodb.clone(),
            t.var("JOBS_TABLE"),
        )),
        auth: api::auth::AuthConfig::default(),
    });
    let api = Api { _t: t, app };

    // 1,000 visits of 10 URLs padded to about 8 MB: more than one request may carry.
    let visits: Vec<Value> = (0..1_000)
        .map(|v| {
            let urls: Vec<String> = (0..10)
                .map(|i| format!("https://img.example/{}{}.jpg", "p".repeat(750), v * 10 + i))
                .collect();
            json!({"store_id": "S00339218", "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"})
        })
        .collect();
    let payload = json!({"count": visits.len(), "visits": visits}).to_string();
    assert!(payload.len() > api::retail::MAX_SUBMISSION_BYTES, "{}", payload.len());

    let (status, grant) = api
        .call(
            "POST",
            "/jobs/uploads",
            Some(json!({"kind": "image", "size": payload.len()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let key = grant["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("submissions/ops/") && key.ends_with(".json"), "{key}");
    let mut put = reqwest::Client::new().put(grant["upload_url"].as_str().unwrap());
    for (name, value) in grant["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let resp = put.body(payload.clone()).send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "PUT: {} {}",
        resp.status(),
        resp.text().await.unwrap()
    );
    let head = clients.s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(head.content_length(), Some(payload.len() as i64));

    let body = json!({"kind": "image", "upload_id": grant["upload_id"]});
    let (status, job) = api.call("POST", "/jobs", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let stored = &job["payload"]["stored"];
    assert_eq!(
        (stored["visits"].as_u64(), stored["images"].as_u64()),
        (Some(1_000), Some(10_000)),
        "{job}"
    );
    let claim = format!("payloads/ops/{}.json", id(&job));
    assert_eq!(stored["key"], claim.as_str());
    let kept = clients
        .s3
        .head_object()
        .bucket(&bucket)
        .key(&claim)
        .send()
        .await
        .unwrap();
    assert!(kept.content_length().unwrap() > 6 * 1024 * 1024);
    let gone = clients.s3.head_object().bucket(&bucket).key(&key).send().await;
    assert!(gone.is_err(), "the submission is deleted after use");

    let (status, answer) = api.call("POST", "/jobs", Some(body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("upload_id: "), "{answer}");
}

/// Dead letters the AWS way: a peek lists them with their jobs and hides nothing; one is
/// redriven by receive, send, delete; the rest by SQS's `StartMessageMoveTask`.
#[tokio::test]
async fn dead_letters_are_peeked_with_their_jobs_and_redriven_one_or_all() {
    let Api { _t: t, app } = api().await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let queues = api::dashboard::Queues::new(clients.clone(), |v| t.env.get(v).cloned());
    let api = Api {
        app: app.layer(axum::Extension(queues)),
        _t: t,
    };
    let t = &api._t;
    // GIVEN three jobs whose messages are dead letters of the high queue
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = api.create(5).await;
        ids.push(id(&job));
    }
    // (their real messages wait on the high queue: drain them, so only the redriven ones count)
    loop {
        let out = clients
            .sqs
            .receive_message()
            .queue_url(t.var("HIGH_QUEUE_URL"))
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            clients
                .sqs
                .delete_message()
                .queue_url(t.var("HIGH_QUEUE_URL"))
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    for id in &ids {
        clients
            .sqs
            .send_message()
            .queue_url(t.var("HIGH_DLQ_URL"))
            .message_body(json!({ "job_id": id }).to_string())
            .send()
            .await
            .unwrap();
    }
    // WHEN the console peeks
    let (status, peek) = api.call("GET", "/queues/high_dead_letter/messages?max=10", None).await;
    assert_eq!(status, StatusCode::OK, "{peek}");
    // THEN it sees each with its job, and nothing was hidden
    let listed: Vec<String> = peek["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["job_id"].as_str().unwrap().to_string())
        .collect();
    let (mut a, mut b) = (listed.clone(), ids.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "{peek}");
    assert_eq!(peek["redrives_to"], "high");
    assert_eq!(peek["messages"][0]["job"]["kind"], "archive", "{peek}");
    assert_eq!(dlq_depths(&api).await, (0, 3));

    // WHEN one is redriven
    let one = peek["messages"][0]["message_id"].as_str().unwrap();
    let (status, moved) = api
        .call(
            "POST",
            "/queues/high_dead_letter/redrive",
            Some(json!({"message_id": one})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (moved["method"].as_str(), moved["moved"].as_i64()),
        (Some("receive-send-delete"), Some(1))
    );
    assert_eq!(dlq_depths(&api).await, (1, 2));
    let (status, gone) = api
        .call(
            "POST",
            "/queues/high_dead_letter/redrive",
            Some(json!({"message_id": one})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert!(gone["error"].as_str().unwrap().starts_with("message_id:"), "{gone}");

    // WHEN the rest are redriven at once
    let (status, all) = api
        .call("POST", "/queues/high_dead_letter/redrive", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["method"], "StartMessageMoveTask");
    assert!(all["task_handle"].is_string(), "{all}");
    let mut last = (0, 0);
    for _ in 0..50 {
        last = dlq_depths(&api).await;
        if last == (3, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(last, (3, 0), "every dead letter back on the high queue");
    // Unknown queues and bad input are refused, naming them.
    let (status, _) = api.call("GET", "/queues/high/messages", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err) = api.call("GET", "/queues/high_dead_letter/messages?max=99", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().starts_with("max:"), "{err}");
}

/// (visible on high, visible on high_dead_letter), as `GET /queues` says.
async fn dlq_depths(api: &Api) -> (i64, i64) {
    let (_, body) = api.call("GET", "/queues", None).await;
    let of = |n: &str| {
        body["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == n)
            .unwrap()["visible"]
            .as_i64()
            .unwrap()
    };
    (of("high"), of("high_dead_letter"))
}

#[tokio::test]
async fn uploads_lists_the_callers_own_files_newest_first_and_bounded() {
    let api = api().await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let bucket = api._t.var("UPLOADS_BUCKET").to_string();
    let put = |key: &'static str| {
        let (s3, bucket) = (clients.s3.clone(), bucket.clone());
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(b"x".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    };
    // S3 keeps last-modified to the second: the newest is put a second after the others.
    put("uploads/ops/media/a.bin").await;
    put("uploads/ops/media/b.bin").await;
    put("uploads/other/theirs.bin").await;
    put("archive/ops/not-an-upload.bin").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    put("uploads/ops/logs/newest.jsonl").await;

    let (status, answer) = api.call("GET", "/uploads", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["prefix"], "uploads/ops/");
    let keys: Vec<&str> = answer["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], "uploads/ops/logs/newest.jsonl", "{answer}");
    let mut rest = keys[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        ["uploads/ops/media/a.bin", "uploads/ops/media/b.bin"],
        "only the caller's own files"
    );
    assert_eq!(
        answer["objects"][0]["source"],
        format!("s3://{bucket}/uploads/ops/logs/newest.jsonl")
    );
    assert_eq!(answer["objects"][0]["size"], 1);
    assert_eq!(answer["truncated"], false);

    let (status, answer) = api.call("GET", "/uploads?limit=1", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["objects"].as_array().unwrap().len(), 1);
    for bad in ["0", "51", "x"] {
        let (status, answer) = api.call("GET", &format!("/uploads?limit={bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("limit"), "{answer}");
    }
}
