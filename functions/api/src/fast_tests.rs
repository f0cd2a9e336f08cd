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

use shared::quota::Quotas;

use crate::app::{AppState, PUBLIC_ROUTES, ROUTES, router};
use crate::auth::{AuthConfig, authorizer_context};

struct Api {
    app: axum::Router,
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
}

/// AWS clients that the in-process tests never call (S3 presigns locally; parts and uploads not
/// exercised use in-memory stores or are not reached). Shared by the api's fast-tier test modules.
pub(crate) fn idle_clients() -> (aws_sdk_s3::Client, aws_sdk_dynamodb::Client) {
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
    api_with(Quotas::NONE)
}

fn api_with(quotas: Quotas) -> Api {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let app = router(state_with(quotas, store.clone(), queue.clone()));
    Api { app, store, queue }
}

/// A state over fresh in-memory stores.
fn api_state() -> AppState {
    state_with(
        Quotas::NONE,
        Arc::new(MemoryJobStore::new()),
        Arc::new(MemoryQueue::new()),
    )
}

fn state_with(quotas: Quotas, store: Arc<MemoryJobStore>, queue: Arc<MemoryQueue>) -> AppState {
    let (s3, dynamodb) = idle_clients();
    AppState {
        jobs: Jobs::new(store, queue, time::Duration::seconds(60))
            .with_quotas(quotas)
            .with_uploads_bucket("uploads"),
        files: crate::files::Files {
            s3,
            bucket: "uploads".into(),
            entries: Arc::new(shared::store::memory::MemoryEntryStore::new()),
            max_upload_bytes: 64 * 1024,
            max_presigned_bytes: 1024 * 1024,
        },
        parts: Arc::new(shared::store::DynamoPartStore::new(dynamodb, "jobs")),
        auth: AuthConfig::default(),
    }
}

/// Who calls: `None` for a request without verified identity.
type As<'a> = Option<(&'a str, bool)>;
const ALICE: As = Some(("alice", false));
const BOB: As = Some(("bob", false));
const ADMIN: As = Some(("ops", true));

impl Api {
    /// As alice, a signed-in user.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(ALICE, method, path, body).await
    }

    async fn call_as(&self, who: As<'_>, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self.request(who, method, path, body).await;
        (status, body)
    }

    async fn request(
        &self,
        who: As<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some((owner, admin)) = who {
            req = req.extension(authorizer_context(owner, admin));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// An archive job of one of alice's files.
fn archive(priority: u8) -> Value {
    json!({"kind": "archive", "priority": priority, "payload": {"asset_id": "a1", "source": "s3://uploads/uploads/alice/k.mp4"}})
}

#[tokio::test]
async fn a_created_job_is_pending_until_a_worker_takes_it_and_sent_on_its_priority_band() {
    let api = api();
    let (status, job) = api.call("POST", "/jobs", Some(archive(5))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["status"], "pending");
    assert_eq!(
        (job["kind"].as_str(), job["type"].as_str()),
        (Some("archive"), Some("archive"))
    );
    assert!(job["enqueued_at"].is_string(), "its message is sent: {job}");
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
        (json!({"kind": "fax", "payload": {}}), "unknown kind"),
        (json!({"kind": "email", "payload": {"to": "a@b@c"}}), "payload.to"),
        (
            json!({"kind": "notification", "payload": {"user_id": "u", "channel": "fax", "message": "m"}}),
            "payload.channel",
        ),
        (
            json!({"kind": "report", "payload": {"report_type": "w", "format": "xls", "date_range": {"start": "2026-11-01", "end": "2026-11-02"}}}),
            "payload.format",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = api.call("POST", "/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let text = err["error"].as_str().unwrap();
        assert!(text.contains(field) && text.len() < 300, "{field}: {text}");
    }
    assert!(api.store.all().is_empty());
}

/// A job is written once when created: `pending` with its message already noted (`enqueued_at`),
/// then sent; no second write after the send (it cost a job write with every index).
#[tokio::test]
async fn a_created_job_is_written_once_with_its_message_noted_and_then_sent() {
    let api = api();
    let (status, job) = api.call("POST", "/jobs", Some(archive(3))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id: shared::job::JobId = job["id"].as_str().unwrap().parse().unwrap();
    let stored = api.store.get(id).await.unwrap().unwrap();
    assert_eq!(stored.version, 0, "one write: the creation");
    assert_eq!(stored.enqueued_at, Some(stored.created_at));
    assert_eq!(stored.status, JobStatus::Pending);
    let sent = api.queue.sent.lock().unwrap().clone();
    assert_eq!(sent.iter().filter(|(m, _, _)| m.job_id == id).count(), 1);
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
    let mut ingest = shared::job::Job::new(spec, 3, None, shared::clock::now())
        .unwrap()
        .owned_by(shared::auth::Owner::parse("alice").unwrap());
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
    let completed = Some(json!({"status": "completed"}));
    let path = format!("/jobs/{}/status", ingest.id);
    let (status, err) = api.call("PUT", &path, completed.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "status moves are for admins: {err}");
    let (status, err) = api.call_as(ADMIN, "PUT", &path, completed).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "never completed without a result: {err}"
    );
    assert!(err["error"].as_str().unwrap().starts_with("status:"), "{err}");
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
    let (status, page) = api.call("GET", "/jobs?status=pending&kind=archive&limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = api
        .call("GET", &format!("/jobs?status=pending&limit=10&next={next}"), None)
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
async fn without_a_verified_identity_every_route_but_the_public_ones_is_a_401() {
    let api = api();
    let id = shared::job::JobId::new();
    for (method, route) in ROUTES {
        let path = route
            .replace("{id}", &id.to_string())
            .replace("{job_id}", &id.to_string());
        let body = (*method != "GET").then(|| json!({}));
        let (status, err) = api.call_as(None, method, &path, body).await;
        if PUBLIC_ROUTES.contains(&(*method, *route)) {
            assert_eq!(status, StatusCode::OK, "{method} {route} is public");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {route}: {err}");
            assert!(err["error"].as_str().unwrap().contains("sign in"), "{err}");
        }
    }
    assert!(api.store.all().is_empty());
}

#[tokio::test]
async fn another_owners_job_is_a_404_everywhere_and_admins_see_everything() {
    let api = api();
    let (status, job) = api
        .call_as(
            BOB,
            "POST",
            "/jobs",
            Some(json!({"kind": "archive", "payload": {"asset_id": "b", "source": "s3://uploads/uploads/bob/k.mp4"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["owner"], "bob");
    let id = job["id"].as_str().unwrap();
    let (status, _) = api.call("POST", "/jobs", Some(archive(3))).await;
    assert_eq!(status, StatusCode::CREATED);

    for (method, path, body) in [
        ("GET", format!("/jobs/{id}"), None),
        ("DELETE", format!("/jobs/{id}"), None),
        ("POST", format!("/jobs/{id}/retry"), None),
        ("GET", format!("/jobs/{id}/images"), None),
        ("GET", format!("/api/v1/jobs/{id}"), None),
        ("GET", format!("/api/v1/jobs/{id}/entries"), None),
    ] {
        let (status, err) = api.call(method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "alice: {method} {path}: {err}");
        assert_eq!(err["error"], format!("job {id} not found"), "as if it did not exist");
    }
    let (status, err) = api.call("GET", &format!("/api/status?jobid={id}"), None).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Job ID not found"))
    );
    let (_, retried) = api.call("POST", "/jobs/retry", Some(json!({"ids": [id]}))).await;
    assert_eq!(retried["retried"], 0);

    let (_, mine) = api.call("GET", "/jobs", None).await;
    let owners: Vec<&str> = mine["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["alice"]);
    let (_, stats) = api.call("GET", "/stats", None).await;
    assert_eq!(stats["total"], 1);
    let (_, queues) = api.call("GET", "/queues", None).await;
    assert_eq!(queues["queues"][0]["role"], "own");
    assert_eq!(queues["queues"][0]["visible"], 1);

    let (_, all) = api.call_as(ADMIN, "GET", "/jobs", None).await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    let (_, stats) = api.call_as(ADMIN, "GET", "/stats", None).await;
    assert_eq!(stats["total"], 2);
    let (status, job) = api.call_as(ADMIN, "DELETE", &format!("/jobs/{id}"), None).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    let (status, me) = api.call_as(ADMIN, "GET", "/me", None).await;
    assert_eq!((status, me["admin"].as_bool()), (StatusCode::OK, Some(true)));
}

#[tokio::test]
async fn archive_sources_must_be_the_callers_own_files() {
    let api = api();
    for source in [
        "s3://uploads/uploads/bob/k.mp4",
        "s3://other-bucket/uploads/alice/k.mp4",
        "s3://uploads/archive/alice/k.mp4",
        "s3://uploads/uploads/alice/../bob/k.mp4",
    ] {
        let body = json!({"kind": "archive", "payload": {"asset_id": "a", "source": source}});
        let (status, err) = api.call("POST", "/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{source}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with("payload.source:"), "{err}");
    }
    let body = json!({"kind": "archive", "payload": {"asset_id": "a", "source": "s3://uploads/uploads/bob/k.mp4"}});
    let (status, err) = api.call_as(ADMIN, "POST", "/jobs", Some(body)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an admin may archive anyone's upload: {err}"
    );
}

#[tokio::test]
async fn over_a_limit_is_a_429_naming_it_with_retry_after() {
    let api = api_with(Quotas {
        jobs_in_flight: 1,
        image_urls_per_hour: 2,
        upload_bytes_per_day: 0,
    });
    let (status, _) = api.call("POST", "/jobs", Some(archive(3))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, err) = api.request(ALICE, "POST", "/jobs", Some(archive(3))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert_eq!(err["limit"], "jobs_in_flight");
    assert!(err["error"].as_str().unwrap().contains("jobs_in_flight"), "{err}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
    // bob has his own limit
    let bobs = json!({"kind": "archive", "payload": {"asset_id": "b", "source": "s3://uploads/uploads/bob/k.mp4"}});
    assert_eq!(
        api.call_as(BOB, "POST", "/jobs", Some(bobs)).await.0,
        StatusCode::CREATED
    );
    // three image URLs never fit in two per hour
    let visits = json!({"count": 1, "visits": [{"store_id": "S00339218", "image_url": ["https://x/1.jpg", "https://x/2.jpg", "https://x/3.jpg"], "visit_time": "t"}]});
    let (status, err) = api.call_as(BOB, "POST", "/api/submit/", Some(visits)).await;
    assert_eq!(
        (status, err["limit"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("image_urls_per_hour")),
        "{err}"
    );
    assert_eq!(api.store.all().len(), 2, "refusals write nothing");
}

#[tokio::test]
async fn a_read_only_machine_token_reads_but_changes_nothing() {
    let api = api();
    let mut ctx = authorizer_context("svc-reporting", false);
    if let lambda_http::request::RequestContext::ApiGatewayV2(c) = &mut ctx {
        c.authorizer.as_mut().unwrap().jwt.as_mut().unwrap().scopes = Some(vec!["jobs/read".into()]);
    }
    let send = |method: &str, body: Option<Value>| {
        let mut req = Request::builder().method(method).uri("/jobs").extension(ctx.clone());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
            .unwrap()
    };
    let resp = api.app.clone().oneshot(send("GET", None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api.app.clone().oneshot(send("POST", Some(archive(3)))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(api.store.all().is_empty());
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

#[tokio::test]
async fn openapi_describes_exactly_the_routes_the_router_serves() {
    let api = api();
    let (status, doc) = api.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0", "utoipa 6 writes OpenAPI 3.1");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut routes: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);
    // What is served is the document the router was built with.
    let (_, generated) = crate::app::router_and_document(api_state());
    assert_eq!(doc, serde_json::to_value(&generated).unwrap());
    // Public operations say so; the rest need the bearer token.
    for (method, path) in ROUTES {
        let op = &doc["paths"][*path][method.to_lowercase()];
        let public = crate::app::PUBLIC_ROUTES.contains(&(*method, *path));
        assert_eq!(op["security"] == json!([{}]), public, "{method} {path}");
    }
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Every $ref names a schema the document has.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{name} is referenced but missing"
        );
    }
    // Every listed route is really served (not the 404/405 fallbacks).
    let sample_id = "01a20000-0000-7000-8000-000000000000";
    for (method, path) in ROUTES {
        let uri = path.replace("{id}", sample_id);
        let body = (*method != "GET" && *method != "DELETE").then(|| json!({}));
        let (status, _, json) = api.request(ADMIN, method, &uri, body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(json["error"], "no such route", "{method} {uri}");
    }
}

#[tokio::test]
async fn cors_is_the_gateways_the_function_adds_no_cors_headers() {
    let api = api();
    let req = Request::builder()
        .method("GET")
        .uri("/health")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success());
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "the template's CorsConfiguration decides, at the gateway"
    );
}

#[tokio::test]
async fn docs_is_public_and_served_under_its_csp() {
    let api = api();
    let (status, headers, _) = api.request(None, "GET", "/docs", None).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "/docs/index.html");
    for file in [
        "index.html",
        "swagger-initializer.js",
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    ] {
        let (status, headers, _) = api.request(None, "GET", &format!("/docs/{file}"), None).await;
        assert_eq!(status, StatusCode::OK, "{file} needs no token");
        assert_eq!(headers["content-security-policy"], crate::docs::CSP, "{file}");
    }
    let (status, _, err) = api.request(None, "GET", "/docs/nope.js", None).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such file in /docs"))
    );
}

#[tokio::test]
async fn the_document_names_every_field_of_a_job_and_every_status_and_kind() {
    let api = api();
    let (_, doc) = api.call("GET", "/openapi.json", None).await;
    let schemas = &doc["components"]["schemas"];
    // A job with every optional field set.
    let spec = JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap();
    let now = shared::clock::now();
    let mut job = shared::job::Job::new(spec, 3, Some(now), now)
        .unwrap()
        .owned_by(shared::auth::Owner::parse("alice").unwrap());
    job.mark_enqueued(now);
    job.claim(now, time::Duration::seconds(60)).unwrap();
    job.lease_owner = Some("token".into());
    job.result = Some(shared::job::ArchiveResult::example().to_value());
    job.error = Some("e".into());
    job.completed_at = Some(now);
    job.sweeps = 1;
    job.timeline_dropped = 1;
    let view = serde_json::to_value(crate::view::JobView::full(&job)).unwrap();
    let documented = properties(schemas, &schemas["JobView"]);
    for key in view.as_object().unwrap().keys() {
        assert!(documented.contains_key(key), "JobView.{key} is not in the document");
    }
    let listed = properties(schemas, &schemas["JobPage"]["properties"]["jobs"]["items"]);
    assert_eq!(listed.keys().collect::<Vec<_>>(), documented.keys().collect::<Vec<_>>());
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let statuses: Vec<String> = JobStatus::ALL.iter().map(|s| s.as_str().to_string()).collect();
    let kinds: Vec<String> = shared::job::JobKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    let resolve = |v: &Value| -> Value { resolve(schemas, v) };
    assert_eq!(names(&resolve(&documented["status"])["enum"]), statuses);
    assert_eq!(
        names(&resolve(&schemas["TimelineEntry"]["properties"]["status"])["enum"]),
        statuses
    );
    assert_eq!(names(&resolve(&documented["type"]["allOf"][0])["enum"]), kinds);
    // Each kind is one shape of JobSpec, with its own payload; a job and a new job are one of them.
    let spec_kinds: Vec<String> = schemas["JobSpec"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| names(&v["properties"]["kind"]["enum"]))
        .collect();
    assert_eq!(spec_kinds, kinds);
    for variant in schemas["JobSpec"]["oneOf"].as_array().unwrap() {
        assert!(variant["properties"]["payload"]["$ref"].is_string(), "{variant}");
    }
    assert_eq!(schemas["Job"]["allOf"][0]["$ref"], "#/components/schemas/JobSpec");
    assert_eq!(schemas["NewJob"]["allOf"][0]["$ref"], "#/components/schemas/JobSpec");
    let new_job = properties(schemas, &schemas["NewJob"]);
    assert_eq!(
        new_job.keys().collect::<Vec<_>>(),
        ["kind", "payload", "priority", "scheduled_for"]
    );
    // A result is one typed shape per kind (in JobKind's order), not free JSON.
    // (optional: a oneOf of the shapes and null)
    let optional = &documented["result"]["oneOf"];
    assert_eq!(optional[0]["$ref"], "#/components/schemas/JobResult", "{optional}");
    assert_eq!(optional[1]["type"], "null", "{optional}");
    let result = resolve(&optional[0]);
    let shapes: Vec<&str> = result["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("result is not a oneOf: {result}"))
        .iter()
        .map(|v| {
            v["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{result}"))
                .trim_start_matches("#/components/schemas/")
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "ImageJobResult",
            "IngestResult",
            "ArchiveResult",
            "EmailResult",
            "NotificationResult",
            "ReportResult"
        ]
    );
    let archive = properties(schemas, &schemas["ArchiveResult"]);
    for key in view["result"].as_object().unwrap().keys() {
        assert!(archive.contains_key(key), "ArchiveResult.{key} is not in the document");
    }
}

/// Follows a `$ref` to its schema.
fn resolve(schemas: &Value, v: &Value) -> Value {
    match v["$ref"].as_str() {
        Some(r) => resolve(schemas, &schemas[r.trim_start_matches("#/components/schemas/")]),
        None => v.clone(),
    }
}

/// Every property a value of this schema may have: its own, those of `allOf` parts and of each
/// `oneOf` shape, references followed.
fn properties(schemas: &Value, schema: &Value) -> serde_json::Map<String, Value> {
    let schema = resolve(schemas, schema);
    let mut out = schema["properties"].as_object().cloned().unwrap_or_default();
    for part in ["allOf", "oneOf"] {
        for s in schema[part].as_array().into_iter().flatten() {
            out.extend(properties(schemas, s));
        }
    }
    out
}

#[tokio::test]
async fn a_list_of_large_jobs_stops_before_5_mb_and_next_goes_on_from_there() {
    let api = api();
    // 40 image jobs of ~230 KB each (~9 MB together): more than one Lambda response may carry.
    let url = format!("https://example.com/{}.jpg", "x".repeat(1_900));
    let visits: Vec<Value> = (0..110)
        .map(|n| json!({"store_id": format!("S{n}"), "image_url": [url], "visit_time": "t"}))
        .collect();
    let payload = json!({"count": visits.len(), "visits": visits});
    let mut ids = Vec::new();
    for n in 0..40 {
        let spec = JobSpec::from_json("image", payload.clone()).unwrap();
        let at = shared::clock::now() - time::Duration::seconds(n);
        let job = shared::job::Job::new(spec, 3, None, at)
            .unwrap()
            .owned_by(shared::auth::Owner::parse("alice").unwrap());
        ids.push(job.id.to_string());
        api.store.put(job);
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/jobs?limit=200".to_string();
    loop {
        let req = Request::builder()
            .uri(&path)
            .extension(authorizer_context("alice", false))
            .body(Body::empty())
            .unwrap();
        let resp = api.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.len() < 5 * 1024 * 1024 + 64 * 1024, "{} bytes", bytes.len());
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        pages += 1;
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/jobs?limit=200&next={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 2, "cut once, then the rest");
    assert_eq!(seen, ids, "every job once, newest first");
}

#[tokio::test]
async fn seed_001s_email_example_verbatim_is_accepted() {
    let api = api();
    let body = json!({"type": "email", "priority": 5, "payload": {"to": "user@example.com", "subject": "Welcome!", "body": "Thanks for signing up."}});
    let (status, job) = api.call("POST", "/jobs", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(
        (job["kind"].as_str(), job["priority"].as_u64()),
        (Some("email"), Some(5))
    );
    assert_eq!(job["payload"]["to"], "user@example.com");
    assert_eq!(api.store.all().len(), 1);
}

#[tokio::test]
async fn the_document_describes_the_live_update_message() {
    let api = api();
    let (_, doc) = api.call("GET", "/openapi.json", None).await;
    let schemas = &doc["components"]["schemas"];
    let spec = JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap();
    let mut job = shared::job::Job::new(spec, 3, None, shared::clock::now()).unwrap();
    job.error = Some("e".into());
    job.result = Some(json!({"lines_stored": 1, "lines_rejected": 0}));
    let message = serde_json::to_value(shared::live::JobUpdate::of(&job)).unwrap();
    let documented = properties(schemas, &schemas["JobUpdate"]);
    for key in message.as_object().unwrap().keys() {
        assert!(documented.contains_key(key), "JobUpdate.{key} is not in the document");
    }
}

/// A job's message carries the trace of the request that created it (`AWSTraceHeader`): the
/// invocation's (Lambda's `Lambda-Runtime-Trace-Id`), else the request's `X-Amzn-Trace-Id`,
/// else a new one.
#[tokio::test]
async fn a_jobs_message_carries_the_trace_of_the_request_that_created_it() {
    const INVOCATION: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const HEADER: &str = "Root=1-6759e988-cd862e3fe1be46a994272794";
    let api = api();
    let create = |context: Option<&str>, header: Option<&str>| {
        let mut req = Request::builder()
            .method("POST")
            .uri("/jobs")
            .header("content-type", "application/json")
            .extension(authorizer_context(ALICE.unwrap().0, false));
        if let Some(trace) = context {
            let mut ctx = lambda_http::Context::default();
            ctx.xray_trace_id = Some(trace.to_string());
            req = req.extension(ctx);
        }
        if let Some(h) = header {
            req = req.header("x-amzn-trace-id", h);
        }
        let app = api.app.clone();
        async move {
            let resp = app
                .oneshot(req.body(Body::from(archive(3).to_string())).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
            body["id"].as_str().unwrap().parse::<shared::job::JobId>().unwrap()
        }
    };
    let both = create(Some(INVOCATION), Some(HEADER)).await;
    assert_eq!(
        api.queue.traces_of(both),
        vec![Some(INVOCATION.to_string())],
        "the invocation's first"
    );
    let header = create(None, Some(HEADER)).await;
    assert_eq!(api.queue.traces_of(header), vec![Some(HEADER.to_string())]);
    let bad = create(None, Some("Root=not-a-trace")).await;
    let none = create(None, None).await;
    for id in [bad, none] {
        let minted = api.queue.traces_of(id);
        let trace = shared::trace::TraceHeader::parse(minted[0].as_deref().unwrap()).unwrap();
        assert_ne!(trace.trace_id(), "1-6759e988-cd862e3fe1be46a994272794", "a new one");
    }
}
