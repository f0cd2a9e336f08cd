//! GraphQL in-process over the in-memory stores (fast tier): the same answers, pages, errors and
//! rules as the REST routes, the limits, and the committed SDL.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::images::{ImageResult, PartResult, StoreError};
use shared::job::{Job, JobId, JobSpec, LogIngestPayload};
use shared::logs::{Level, LogEntry};
use shared::quota::Quotas;
use shared::service::Jobs;
use shared::store::PartStore;
use shared::store::entries::EntryStore;
use shared::store::memory::{MemoryEntryStore, MemoryJobStore, MemoryPartStore, MemoryQueue};
use tower::ServiceExt;

use crate::app::{AppState, router};
use crate::auth::{AuthConfig, authorizer_context};

struct Api {
    app: axum::Router,
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
    parts: Arc<MemoryPartStore>,
    entries: Arc<MemoryEntryStore>,
}

/// Who calls: an owner, an admin, a read-only machine token, or nobody.
#[derive(Clone, Copy)]
enum As {
    User(&'static str),
    Admin,
    ReadOnly(&'static str),
    Nobody,
}
const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");

fn api() -> Api {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let parts = Arc::new(MemoryPartStore::new());
    let entries = Arc::new(MemoryEntryStore::new());
    let (s3, _) = crate::fast_tests::idle_clients();
    let state = AppState {
        jobs: Jobs::new(store.clone(), queue.clone(), time::Duration::seconds(60))
            .with_quotas(Quotas::NONE)
            .with_uploads_bucket("uploads"),
        files: crate::files::Files {
            s3,
            bucket: "uploads".into(),
            entries: entries.clone(),
            max_upload_bytes: 64 * 1024,
            max_presigned_bytes: 1024 * 1024,
        },
        parts: parts.clone(),
        auth: AuthConfig::default(),
    };
    Api {
        app: router(state),
        store,
        queue,
        parts,
        entries,
    }
}

fn read_only_context(owner: &str) -> lambda_http::request::RequestContext {
    serde_json::from_value(json!({
        "accountId": "000000000000", "apiId": "local", "stage": "$default", "requestId": "test",
        "authorizer": {"jwt": {"claims": {"sub": owner, "client_id": owner}, "scopes": ["jobs/read"]}},
        "http": {"method": "POST", "path": "/graphql", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "time": "30/Nov/2026:00:00:00 +0000", "timeEpoch": 0
    }))
    .unwrap()
}

impl Api {
    async fn raw(&self, who: As, method: &str, uri: &str, body: Body) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        req = match who {
            As::User(owner) => req.extension(authorizer_context(owner, false)),
            As::Admin => req.extension(authorizer_context("ops", true)),
            As::ReadOnly(owner) => req.extension(read_only_context(owner)),
            As::Nobody => req,
        };
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (
            status,
            headers,
            resp.into_body().collect().await.unwrap().to_bytes().to_vec(),
        )
    }

    /// REST, parsed.
    async fn rest(&self, who: As, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let (status, _, bytes) = self.raw(who, method, uri, body).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// `POST /graphql {query, variables}`, parsed.
    async fn gql(&self, who: As, query: &str, variables: Value) -> (StatusCode, Value) {
        let body = json!({"query": query, "variables": variables});
        self.rest(who, "POST", "/graphql", Some(body)).await
    }

    /// A GraphQL answer that must have run without errors: its `data`.
    async fn data(&self, who: As, query: &str, variables: Value) -> Value {
        let (status, answer) = self.gql(who, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(answer.get("errors").is_none(), "{answer}");
        answer["data"].clone()
    }
}

/// The first error's code and the error.
fn first_error(answer: &Value) -> (String, Value) {
    let e = answer["errors"][0].clone();
    (e["extensions"]["code"].as_str().unwrap_or("<none>").to_string(), e)
}

fn archive(owner: &str, asset: &str) -> Value {
    json!({"kind": "archive", "payload": {"asset_id": asset, "source": format!("s3://uploads/uploads/{owner}/{asset}.mp4")}})
}

const CREATE: &str = "mutation($input: NewJobInput!, $key: String) { createJob(input: $input, idempotencyKey: $key) { created job { id status kind priority owner payload } } }";
const JOB: &str = "query($id: ID!) { job(id: $id) { id status kind priority owner payload error attempts maxAttempts progress { percent stage } createdAt updatedAt enqueuedAt timeline { status message } } }";

#[tokio::test]
async fn job_and_stats_answer_what_rest_answers() {
    let api = api();
    let data = api.data(ALICE, CREATE, json!({"input": archive("alice", "a1")})).await;
    let created = &data["createJob"];
    assert_eq!(created["created"], true);
    assert_eq!(created["job"]["status"], "PENDING");
    assert_eq!(created["job"]["kind"], "ARCHIVE");
    assert_eq!(created["job"]["owner"], "alice");
    let id = created["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.queue.sent.lock().unwrap().len(),
        1,
        "its message is sent, as POST /jobs does"
    );

    let (_, rest) = api.rest(ALICE, "GET", &format!("/jobs/{id}"), None).await;
    let job = &api.data(ALICE, JOB, json!({"id": id})).await["job"];
    assert_eq!(job["id"], rest["id"]);
    assert_eq!(job["status"].as_str().unwrap().to_lowercase(), rest["status"]);
    assert_eq!(job["payload"], rest["payload"]);
    assert_eq!(job["priority"], rest["priority"]);
    assert_eq!(job["createdAt"], rest["created_at"]);
    assert_eq!(job["enqueuedAt"], rest["enqueued_at"]);
    assert_eq!(job["maxAttempts"], rest["max_attempts"]);
    assert_eq!(
        job["timeline"].as_array().unwrap().len(),
        rest["timeline"].as_array().unwrap().len()
    );

    api.rest(BOB, "POST", "/jobs", Some(archive("bob", "b1"))).await;
    for who in [ALICE, BOB, As::Admin] {
        let (_, rest) = api.rest(who, "GET", "/stats", None).await;
        let stats = &api
            .data(
                who,
                "{ stats { total byStatus byKind scheduled completedPerMinute { minute completed failed } } }",
                json!({}),
            )
            .await["stats"];
        assert_eq!(stats["total"], rest["total"]);
        assert_eq!(stats["byStatus"], rest["by_status"]);
        assert_eq!(stats["byKind"], rest["by_kind"]);
        assert_eq!(stats["scheduled"], rest["scheduled"]);
        assert_eq!(stats["completedPerMinute"], rest["completed_per_minute"]);
    }
    let (_, admin) = api.rest(As::Admin, "GET", "/stats", None).await;
    assert_eq!(admin["total"], 2);
}

/// Walks GraphQL's `jobs` connection and REST's `GET /jobs` side by side: the same pages.
async fn same_pages(api: &Api, who: As, filter: Value, rest_query: &str, size: usize) -> usize {
    let query = "query($f: JobFilter, $first: Int, $after: String) { jobs(filter: $f, first: $first, after: $after) { edges { cursor node { id status kind } } pageInfo { hasNextPage endCursor } } }";
    let (mut after, mut next): (Option<String>, Option<String>) = (None, None);
    let mut seen = 0;
    loop {
        let data = api
            .data(who, query, json!({"f": filter, "first": size, "after": after}))
            .await;
        let uri = match &next {
            None => format!("/jobs?limit={size}{rest_query}"),
            Some(n) => format!("/jobs?limit={size}{rest_query}&next={n}"),
        };
        let (status, page) = api.rest(who, "GET", &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let conn = &data["jobs"];
        let ids: Vec<&Value> = conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"]["id"])
            .collect();
        let rest_ids: Vec<&Value> = page["jobs"].as_array().unwrap().iter().map(|j| &j["id"]).collect();
        assert_eq!(ids, rest_ids, "page {seen}");
        assert_eq!(conn["pageInfo"]["hasNextPage"], page["next"].is_string());
        if page["next"].is_string() {
            assert_eq!(conn["pageInfo"]["endCursor"], page["next"], "endCursor is REST's next");
        }
        seen += ids.len();
        match page["next"].as_str() {
            Some(n) => {
                next = Some(n.to_string());
                after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            }
            None => return seen,
        }
    }
}

#[tokio::test]
async fn the_jobs_connection_serves_the_same_cursor_pages_as_get_jobs() {
    let api = api();
    for i in 0..7 {
        let (status, job) = api
            .rest(ALICE, "POST", "/jobs", Some(archive("alice", &format!("a{i}"))))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        if i % 3 == 0 {
            api.rest(ALICE, "DELETE", &format!("/jobs/{}", job["id"].as_str().unwrap()), None)
                .await;
        }
    }
    api.rest(
        ALICE,
        "POST",
        "/jobs",
        Some(json!({"kind": "email", "payload": {"to": "a@example.com"}})),
    )
    .await;
    api.rest(BOB, "POST", "/jobs", Some(archive("bob", "b"))).await;

    assert_eq!(same_pages(&api, ALICE, json!(null), "", 3).await, 8, "alice's own only");
    assert_eq!(
        same_pages(&api, As::Admin, json!(null), "", 2).await,
        9,
        "an admin's: all"
    );
    assert_eq!(
        same_pages(&api, ALICE, json!({"status": ["CANCELLED"]}), "&status=cancelled", 2).await,
        3
    );
    assert_eq!(
        same_pages(
            &api,
            ALICE,
            json!({"status": ["PENDING", "CANCELLED"], "kind": "ARCHIVE"}),
            "&status=pending,cancelled&kind=archive",
            4
        )
        .await,
        7
    );
    assert_eq!(
        same_pages(&api, ALICE, json!({"kind": "EMAIL"}), "&kind=email", 50).await,
        1
    );

    // An edge's cursor continues after that edge; a bad cursor or size names the argument.
    let data = api
        .data(ALICE, "{ jobs(first: 8) { edges { cursor node { id } } } }", json!({}))
        .await;
    let edges = data["jobs"]["edges"].as_array().unwrap();
    let after_third = api
        .data(
            ALICE,
            "query($a: String) { jobs(first: 1, after: $a) { edges { node { id } } } }",
            json!({"a": edges[2]["cursor"]}),
        )
        .await;
    assert_eq!(after_third["jobs"]["edges"][0]["node"]["id"], edges[3]["node"]["id"]);
    for (args, field) in [
        ("first: 0", "first"),
        ("first: 201", "first"),
        ("after: \"zz\"", "after"),
    ] {
        let (status, answer) = api
            .gql(
                ALICE,
                &format!("{{ jobs({args}) {{ edges {{ cursor }} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (code, e) = first_error(&answer);
        assert_eq!(
            (code.as_str(), e["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some(field)),
            "{e}"
        );
        assert!(answer["data"]["jobs"].is_null());
    }
}

#[tokio::test]
async fn create_job_refuses_what_post_jobs_refuses_with_the_same_field_and_writes_nothing() {
    let api = api();
    let cases = [
        (json!({"kind": "archive", "payload": {"asset_id": "a"}}), "payload"),
        (
            json!({"kind": "archive", "priority": 9, "payload": {"asset_id": "a", "source": "s3://b/k"}}),
            "priority",
        ),
        (
            json!({"kind": "image", "payload": {"count": 1, "visits": [{"store_id": "S".repeat(65), "image_url": ["http://a/b.jpg"], "visit_time": "t"}]}}),
            "payload.visits[0].store_id",
        ),
        (json!({"kind": "email", "payload": {"to": "a@b@c"}}), "payload.to"),
        (
            json!({"kind": "archive", "payload": {"asset_id": "a", "source": "s3://uploads/uploads/bob/k.mp4"}}),
            "payload.source",
        ),
        (
            json!({"kind": "archive", "payload": {"asset_id": "a", "source": "s3://b/k"}, "scheduledFor": "soon"}),
            "scheduled_for",
        ),
        (json!({"kind": "fax", "payload": {}}), "unknown kind"),
    ];
    for (input, field) in cases {
        let mut rest_body = input.clone();
        if let Some(at) = rest_body.as_object_mut().unwrap().remove("scheduledFor") {
            rest_body["scheduled_for"] = at;
        }
        let (rest_status, rest) = api.rest(ALICE, "POST", "/jobs", Some(rest_body)).await;
        assert_eq!(rest_status, StatusCode::BAD_REQUEST, "{rest}");
        let (status, answer) = api.gql(ALICE, CREATE, json!({"input": input})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (code, e) = first_error(&answer);
        assert_eq!(code, "BAD_USER_INPUT", "{e}");
        assert_eq!(e["message"], rest["error"], "the same words as POST /jobs");
        assert!(e["message"].as_str().unwrap().contains(field), "{field}: {e}");
        if field != "unknown kind" {
            assert_eq!(e["extensions"]["field"], field, "{e}");
        }
        assert_eq!(e["path"], json!(["createJob"]));
        assert!(
            answer["data"].is_null() || answer["data"]["createJob"].is_null(),
            "{answer}"
        );
    }
    // A report over everyone's jobs is for admins: FORBIDDEN.
    let report = json!({"kind": "report", "payload": {"report_type": "w", "scope": "all", "date_range": {"start": "2026-11-01", "end": "2026-11-02"}}});
    let (_, answer) = api.gql(ALICE, CREATE, json!({"input": report})).await;
    assert_eq!(first_error(&answer).0, "FORBIDDEN", "{answer}");
    assert!(api.store.all().is_empty(), "nothing was written");
    assert!(api.queue.sent.lock().unwrap().is_empty());

    // The same idempotency key: the same job, not a second one.
    let input = json!({"input": archive("alice", "k"), "key": "once"});
    let first = api.data(ALICE, CREATE, input.clone()).await;
    let again = api.data(ALICE, CREATE, input).await;
    assert_eq!(again["createJob"]["created"], false);
    assert_eq!(first["createJob"]["job"]["id"], again["createJob"]["job"]["id"]);
    assert_eq!(api.store.all().len(), 1);
}

const CANCEL: &str = "mutation($id: ID!) { cancelJob(id: $id) { id status } }";
const RETRY: &str = "mutation($id: ID!) { retryJob(id: $id) { id status attempts } }";

#[tokio::test]
async fn cancel_and_retry_go_through_the_state_machine_and_an_illegal_move_is_a_conflict() {
    let api = api();
    let (_, job) = api.rest(ALICE, "POST", "/jobs", Some(archive("alice", "c"))).await;
    let id = job["id"].as_str().unwrap().to_string();
    let data = api.data(ALICE, CANCEL, json!({"id": id})).await;
    assert_eq!(data["cancelJob"]["status"], "CANCELLED");
    for mutation in [CANCEL, RETRY] {
        let (status, answer) = api.gql(ALICE, mutation, json!({"id": id})).await;
        assert_eq!(status, StatusCode::OK);
        let (code, e) = first_error(&answer);
        assert_eq!(code, "CONFLICT", "{e}");
        assert!(e["message"].as_str().unwrap().contains("cancelled"), "{e}");
    }
    // A failed job is retried: queued again, with a new message.
    let (_, job) = api.rest(ALICE, "POST", "/jobs", Some(archive("alice", "r"))).await;
    let id: JobId = job["id"].as_str().unwrap().parse().unwrap();
    let now = shared::clock::now();
    shared::store::JobStore::modify(&*api.store, id, &mut |j| {
        j.claim(now, time::Duration::seconds(60))
            .map_err(|e| shared::Error::Conflict(format!("{e:?}")))?;
        j.fail_permanently(1, "broken", now)
    })
    .await
    .unwrap();
    let sent = api.queue.sent.lock().unwrap().len();
    let data = api.data(ALICE, RETRY, json!({"id": id.to_string()})).await;
    assert_eq!(data["retryJob"]["status"], "QUEUED");
    assert_eq!(api.queue.sent.lock().unwrap().len(), sent + 1);
    // Not a job id: the argument is named.
    let (_, answer) = api.gql(ALICE, CANCEL, json!({"id": "nope"})).await;
    let (code, e) = first_error(&answer);
    assert_eq!(
        (code.as_str(), e["extensions"]["field"].as_str()),
        ("BAD_USER_INPUT", Some("id"))
    );
}

#[tokio::test]
async fn a_user_cannot_read_or_change_another_owners_job_through_graphql() {
    let api = api();
    let (_, bobs) = api.rest(BOB, "POST", "/jobs", Some(archive("bob", "b"))).await;
    let id = bobs["id"].as_str().unwrap().to_string();
    let ingest = ingest_job(&api, "bob").await;
    let image = image_job(&api, BOB).await;

    let (_, answer) = api.gql(ALICE, JOB, json!({"id": id})).await;
    assert_eq!(first_error(&answer).0, "NOT_FOUND", "{answer}");
    assert!(answer["data"]["job"].is_null());
    let (_, missing) = api.gql(ALICE, JOB, json!({"id": JobId::new().to_string()})).await;
    assert_eq!(
        answer["errors"][0]["message"].as_str().unwrap().replace(&id, "ID"),
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .split(' ')
            .enumerate()
            .map(|(i, w)| if i == 1 { "ID" } else { w })
            .collect::<Vec<_>>()
            .join(" "),
        "exactly like a job that does not exist"
    );
    for (query, vars) in [
        (CANCEL, json!({"id": id})),
        (RETRY, json!({"id": id})),
        (
            "query($j: ID!) { entries(jobId: $j) { entries { line } } }",
            json!({"j": ingest.to_string()}),
        ),
        (
            "query($j: ID!) { images(jobId: $j) { images { url } } }",
            json!({"j": image.to_string()}),
        ),
    ] {
        let (status, answer) = api.gql(ALICE, query, vars).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(first_error(&answer).0, "NOT_FOUND", "{query}: {answer}");
    }
    let listed = api
        .data(ALICE, "{ jobs { edges { node { id } } } stats { total } }", json!({}))
        .await;
    assert_eq!(listed["jobs"]["edges"], json!([]));
    assert_eq!(listed["stats"]["total"], 0);
    let stored = api.store.all().into_iter().find(|j| j.id.to_string() == id).unwrap();
    assert_eq!(stored.status, shared::job::JobStatus::Pending, "untouched");

    // The owner and an admin see it; an admin may cancel it.
    assert_eq!(api.data(BOB, JOB, json!({"id": id})).await["job"]["owner"], "bob");
    let admin = api
        .data(As::Admin, "{ jobs { edges { node { owner } } } }", json!({}))
        .await;
    assert_eq!(admin["jobs"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(
        api.data(As::Admin, CANCEL, json!({"id": id})).await["cancelJob"]["status"],
        "CANCELLED"
    );
}

#[tokio::test]
async fn without_a_token_graphql_does_not_run_and_a_read_only_token_cannot_mutate() {
    let api = api();
    for (method, uri, body) in [
        (
            "POST",
            "/graphql",
            Some(json!({"query": CREATE, "variables": {"input": archive("x", "x")}})),
        ),
        ("POST", "/graphql", Some(json!({"query": "{ __typename }"}))),
        ("GET", "/graphql?query=%7B__typename%7D", None),
        ("GET", "/graphql/schema", None),
    ] {
        let (status, err) = api.rest(As::Nobody, method, uri, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {err}");
        assert!(err["error"].as_str().unwrap().contains("sign in"), "{err}");
        assert!(err.get("data").is_none(), "GraphQL never ran: {err}");
    }
    let robot = As::ReadOnly("robot");
    assert_eq!(
        api.data(robot, "{ stats { total } }", json!({})).await["stats"]["total"],
        0
    );
    let (status, err) = api.gql(robot, CREATE, json!({"input": archive("robot", "r")})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert!(err["error"].as_str().unwrap().contains("jobs/write"), "{err}");
    assert!(api.store.all().is_empty());
}

/// A log_ingest job of `owner` with entries on lines 1..=9 (every third an error).
async fn ingest_job(api: &Api, owner: &str) -> JobId {
    let spec = JobSpec::LogIngest(LogIngestPayload {
        bucket: "uploads".into(),
        key: format!("uploads/{owner}/x.jsonl"),
        file_name: "x.jsonl".into(),
        size: 10,
    });
    let now = shared::clock::now();
    let mut job = Job::new(spec, 3, None, now)
        .unwrap()
        .owned_by(shared::auth::Owner::parse(owner).unwrap());
    let counts = shared::job::IngestResult {
        lines_read: 9,
        lines_stored: 9,
        levels: [("info".to_string(), 6), ("error".to_string(), 3)].into(),
        ..Default::default()
    };
    job.result = Some(shared::job::JobResult::from(counts).to_value());
    let id = job.id;
    api.store.put(job);
    let entries = (1..=9)
        .map(|line| LogEntry {
            line,
            timestamp: now,
            level: if line % 3 == 0 { Level::Error } else { Level::Info },
            message: format!("line {line}"),
            service: Some("api".into()),
            trace_id: None,
            attributes: Default::default(),
        })
        .collect();
    api.entries.write_batch(id, entries).await.unwrap();
    id
}

/// An image job of `who`'s with 60 images (3 parts), claimed, and parts 0 and 2 recorded.
async fn image_job(api: &Api, who: As) -> JobId {
    let urls: Vec<String> = (0..60).map(|i| format!("http://img.test/{i}.png")).collect();
    let body = json!({"kind": "image", "payload": {"count": 1, "visits": [{"store_id": "S00339218", "image_url": urls, "visit_time": "t"}]}});
    let (status, job) = api.rest(who, "POST", "/jobs", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id: JobId = job["id"].as_str().unwrap().parse().unwrap();
    let claimed = shared::store::JobStore::modify(&*api.store, id, &mut |j| {
        j.claim(shared::clock::now(), time::Duration::seconds(60))
            .map_err(|e| shared::Error::Conflict(format!("{e:?}")))
    })
    .await
    .unwrap();
    let run = claimed.last_run_key().unwrap();
    for part in [0u32, 2] {
        let first = part as usize * 25;
        let result = PartResult {
            part,
            images: (first..first + 24)
                .map(|i| ImageResult::new("S00339218", &format!("http://img.test/{i}.png"), 10, i as u32, 100))
                .collect(),
            errors: vec![StoreError {
                store_id: "S00339218".into(),
                url: Some(format!("http://img.test/{}.png", first + 24)),
                error: "timeout".into(),
            }],
        };
        api.parts.record(id, &run, &result).await.unwrap();
    }
    id
}

#[tokio::test]
async fn entries_and_images_answer_the_pages_rest_answers() {
    let api = api();
    let id = ingest_job(&api, "alice").await;
    let query = "query($j: ID!, $l: Level, $f: Int, $a: String) { entries(jobId: $j, level: $l, first: $f, after: $a) { jobId entries { line level message service } countsByLevel pageInfo { hasNextPage endCursor } } }";
    for (level, rest_level) in [
        (json!(null), ""),
        (json!("INFO"), "&level=info"),
        (json!("ERROR"), "&level=error"),
    ] {
        let (mut after, mut lines) = (Value::Null, Vec::new());
        loop {
            let data = api
                .data(
                    ALICE,
                    query,
                    json!({"j": id.to_string(), "l": level, "f": 2, "a": after}),
                )
                .await;
            let page = &data["entries"];
            let uri = match after.as_str() {
                None => format!("/api/v1/jobs/{id}/entries?limit=2{rest_level}"),
                Some(a) => format!("/api/v1/jobs/{id}/entries?limit=2{rest_level}&next={a}"),
            };
            let (_, rest) = api.rest(ALICE, "GET", &uri, None).await;
            let rest_lines: Vec<&Value> = rest["entries"].as_array().unwrap().iter().map(|e| &e["line"]).collect();
            let got: Vec<&Value> = page["entries"].as_array().unwrap().iter().map(|e| &e["line"]).collect();
            assert_eq!(got, rest_lines);
            assert_eq!(page["countsByLevel"], rest["counts_by_level"]);
            assert_eq!(page["pageInfo"]["endCursor"], rest["next"]);
            lines.extend(got.iter().map(|v| v.as_u64().unwrap()));
            if page["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
        let expected: Vec<u64> = match rest_level {
            "" => (1..=9).collect(),
            "&level=info" => vec![1, 2, 4, 5, 7, 8],
            _ => vec![3, 6, 9],
        };
        assert_eq!(lines, expected, "{rest_level}");
    }
    let (_, answer) = api.gql(ALICE, query, json!({"j": id.to_string(), "f": 1001})).await;
    assert_eq!(first_error(&answer).1["extensions"]["field"], "first");
    // An image job is not an ingest: NOT_FOUND, as REST.
    let image = image_job(&api, ALICE).await;
    let (_, answer) = api.gql(ALICE, query, json!({"j": image.to_string()})).await;
    assert_eq!(first_error(&answer).0, "NOT_FOUND", "{answer}");

    let images = "query($j: ID!, $f: Int, $a: String) { images(jobId: $j, first: $f, after: $a) { status imagesTotal partsTotal partsDone images { url width height perimeter } errors { url error } pageInfo { hasNextPage endCursor } } }";
    let first = api.data(ALICE, images, json!({"j": image.to_string(), "f": 25})).await;
    let (_, rest) = api
        .rest(ALICE, "GET", &format!("/jobs/{image}/images?limit=25"), None)
        .await;
    let page = &first["images"];
    assert_eq!(
        (
            page["imagesTotal"].clone(),
            page["partsTotal"].clone(),
            page["partsDone"].clone()
        ),
        (json!(60), json!(3), json!(2))
    );
    assert_eq!(page["status"], "PROCESSING");
    let urls = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["url"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(urls(&page["images"]), urls(&rest["images"]));
    assert_eq!(page["images"].as_array().unwrap().len(), 24);
    assert_eq!(page["errors"][0]["error"], "timeout");
    assert_eq!(page["images"][3]["perimeter"], rest["images"][3]["perimeter"]);
    assert_eq!(page["pageInfo"]["endCursor"], rest["next"]);
    let second = api
        .data(
            ALICE,
            images,
            json!({"j": image.to_string(), "f": 25, "a": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let (_, rest2) = api
        .rest(
            ALICE,
            "GET",
            &format!("/jobs/{image}/images?limit=25&next={}", rest["next"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(urls(&second["images"]["images"]), urls(&rest2["images"]));
    assert_eq!(second["images"]["images"][0]["url"], "http://img.test/50.png");
    assert_eq!(second["images"]["pageInfo"]["hasNextPage"], false);
    // Not an image job: the same 400 words, as BAD_USER_INPUT.
    let (_, archive_job) = api.rest(ALICE, "POST", "/jobs", Some(archive("alice", "i"))).await;
    let (_, answer) = api.gql(ALICE, images, json!({"j": archive_job["id"]})).await;
    let (code, e) = first_error(&answer);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(e["message"].as_str().unwrap().contains("not an image job"), "{e}");
}

#[tokio::test]
async fn our_own_faults_are_internal_and_a_5xx_never_the_clients_fault() {
    let api = api();
    *api.queue.fail_with.lock().unwrap() = Some("SQS is down at 10.0.0.1".into());
    let (status, answer) = api.gql(ALICE, CREATE, json!({"input": archive("alice", "q")})).await;
    assert!(status.is_server_error(), "{status}: {answer}");
    let (code, e) = first_error(&answer);
    assert_eq!(code, "INTERNAL", "{e}");
    assert!(!answer.to_string().contains("SQS is down"), "no internals: {answer}");
    assert!(e["extensions"].get("field").is_none());
    assert!(api.store.all().is_empty(), "the unsent job was removed");

    *api.queue.fail_with.lock().unwrap() = None;
    let (_, job) = api.rest(ALICE, "POST", "/jobs", Some(archive("alice", "q"))).await;
    let image = image_job(&api, ALICE).await;
    *api.parts.fail_with.lock().unwrap() = Some("DynamoDB is down".into());
    let query = "query($j: ID!, $i: ID!) { job(id: $i) { id } images(jobId: $j) { partsDone } }";
    let (status, answer) = api
        .gql(ALICE, query, json!({"j": image.to_string(), "i": job["id"]}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(answer["data"]["job"]["id"], job["id"], "what could be read is answered");
    assert_eq!(first_error(&answer).0, "INTERNAL");
}

/// graphql-js's introspection query (GraphiQL's, and most clients'), 13 levels deep.
const INTROSPECTION: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}"#;

#[tokio::test]
async fn limits_refuse_deep_complex_big_and_batched_requests_with_clear_errors() {
    let api = api();
    // Introspection is allowed, the full query of the usual clients included.
    let data = api.data(ALICE, INTROSPECTION, json!({})).await;
    assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");
    assert!(data["__schema"]["subscriptionType"].is_null(), "no subscriptions here");

    let mut deep = String::from("__typename");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    let (status, answer) = api
        .gql(ALICE, &format!("{{ __type(name: \"Job\") {{ {deep} }} }}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(first_error(&answer).0, "QUERY_TOO_DEEP");
    assert!(answer["error"].as_str().unwrap().contains("deeper than 15"), "{answer}");

    let fields = "id status kind priority owner payload result error attempts maxAttempts createdAt updatedAt";
    let wide: String = (0..5)
        .map(|i| format!("a{i}: jobs(first: 200) {{ edges {{ cursor node {{ {fields} }} }} }} "))
        .collect();
    let (status, answer) = api.gql(ALICE, &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(first_error(&answer).0, "QUERY_TOO_COMPLEX");
    // One such page is fine.
    api.data(
        ALICE,
        &format!("{{ jobs(first: 200) {{ edges {{ cursor node {{ {fields} }} }} }} }}"),
        json!({}),
    )
    .await;

    let (status, answer) = api.gql(ALICE, "{ jobs { edges { nope } } }", json!({})).await;
    assert_eq!(
        (status, first_error(&answer).0.as_str()),
        (StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED"),
        "{answer}"
    );
    assert!(answer["error"].as_str().unwrap().contains("nope"), "{answer}");
    let (status, answer) = api.gql(ALICE, "{ jobs { ", json!({})).await;
    assert_eq!(
        (status, first_error(&answer).0.as_str()),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED"),
        "{answer}"
    );

    let long = format!("{{ __typename }} # {}", "x".repeat(super::MAX_QUERY_BYTES));
    let (status, err) = api.gql(ALICE, &long, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("query: longer than 16384 bytes"),
        "{err}"
    );

    let huge = Body::from(format!(
        r#"{{"query": "{{ __typename }}", "variables": {{"x": "{}"}}}}"#,
        "x".repeat(super::MAX_BODY_BYTES)
    ));
    let (status, _, bytes) = api.raw(ALICE, "POST", "/graphql", huge).await;
    let err: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert!(err["error"].as_str().unwrap().starts_with("body: larger than"));

    let batch = Body::from(r#"[{"query": "{ __typename }"}, {"query": "{ __typename }"}]"#);
    let (status, _, bytes) = api.raw(ALICE, "POST", "/graphql", batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&bytes));
    for (body, field) in [
        (json!({"variables": {}}), "query"),
        (json!({"query": 5}), "query"),
        (json!({"query": "{ __typename }", "variables": [1]}), "variables"),
    ] {
        let (status, err) = api.rest(ALICE, "POST", "/graphql", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["error"].as_str().unwrap().contains(field), "{err}");
    }
}

#[tokio::test]
async fn a_variable_of_the_wrong_type_is_the_clients_error_never_ours() {
    let api = api();
    let cases = [
        (
            "query($f: Int) { jobs(first: $f) { edges { cursor } } }",
            json!({"f": "x"}),
        ),
        (
            "query($f: JobFilter) { jobs(filter: $f) { edges { cursor } } }",
            json!({"f": {"status": ["DONE"]}}),
        ),
        (
            "query($f: JobFilter) { jobs(filter: $f) { edges { cursor } } }",
            json!({"f": {"colour": "red"}}),
        ),
        ("query($i: ID!) { job(id: $i) { id } }", json!({})),
        (
            "query($j: ID!, $l: Level) { entries(jobId: $j, level: $l) { jobId } }",
            json!({"j": "x", "l": "LOUD"}),
        ),
        (CREATE, json!({"input": {"payload": {}}})),
        (CREATE, json!({"input": {"kind": "archive", "priority": "high"}})),
        (
            CREATE,
            json!({"input": {"kind": "archive", "priority": 3_000_000_000u64}}),
        ),
    ];
    for (query, variables) in cases {
        let (status, answer) = api.gql(ALICE, query, variables.clone()).await;
        assert!(
            status.is_client_error() || status == StatusCode::OK,
            "{variables}: {status} {answer}"
        );
        let (code, e) = first_error(&answer);
        assert!(
            ["GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"].contains(&code.as_str()),
            "{variables}: {e}"
        );
    }
    assert!(api.store.all().is_empty());
}

#[tokio::test]
async fn a_page_stops_where_rest_stops_before_5_mb_and_an_answer_over_it_is_refused() {
    let api = api();
    // 24 image jobs of about 240 KB each: REST's page stops early, before 5 MB.
    for i in 0..24 {
        let urls: Vec<String> = (0..120)
            .map(|u| format!("http://img.test/{i}/{u}/{}", "p".repeat(1_950)))
            .collect();
        let body = json!({"kind": "image", "payload": {"count": 1, "visits": [{"store_id": "S00339218", "image_url": urls, "visit_time": "t"}]}});
        let (status, job) = api.rest(ALICE, "POST", "/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
    }
    let (_, page) = api.rest(ALICE, "GET", "/jobs?limit=50", None).await;
    let served = page["jobs"].as_array().unwrap().len();
    assert!(served < 24 && page["next"].is_string(), "REST stopped early: {served}");
    let one = "{ jobs(first: 50) { edges { node { id payload } } pageInfo { hasNextPage endCursor } } }";
    let data = api.data(ALICE, one, json!({})).await;
    assert_eq!(data["jobs"]["edges"].as_array().unwrap().len(), served);
    assert_eq!(data["jobs"]["pageInfo"]["endCursor"], page["next"]);
    assert_eq!(data["jobs"]["pageInfo"]["hasNextPage"], true);
    // Two such pages in one answer would be over what Lambda can answer.
    let two = "{ a: jobs(first: 50) { edges { node { payload } } } b: jobs(first: 50) { edges { node { payload } } } }";
    let (status, answer) = api.gql(ALICE, two, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        first_error(&answer).0,
        "RESPONSE_TOO_LARGE",
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    assert!(
        answer["error"].as_str().unwrap().contains("ask for fewer"),
        "{}",
        answer["error"]
    );
}

#[tokio::test]
async fn get_graphql_runs_queries_and_refuses_mutations() {
    let api = api();
    api.rest(ALICE, "POST", "/jobs", Some(archive("alice", "g"))).await;
    let (status, answer) = api
        .rest(
            ALICE,
            "GET",
            "/graphql?query=%7B%20stats%20%7B%20total%20%7D%20%7D",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["stats"]["total"], 1);
    let (status, _, bytes) = api
        .raw(
            ALICE,
            "GET",
            "/graphql?query=mutation%20%7B%20cancelJob(id%3A%20%221%22)%20%7B%20id%20%7D%20%7D",
            Body::empty(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(api.store.all()[0].status, shared::job::JobStatus::Pending);
}

#[tokio::test]
async fn the_committed_sdl_is_the_generated_schema() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.graphql"))
        .expect("docs/schema.graphql");
    let generated = super::sdl();
    if committed != generated && std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.graphql"),
            &generated,
        )
        .unwrap();
        return;
    }
    assert!(
        committed == generated,
        "docs/schema.graphql is not the schema the code serves: UPDATE_SCHEMA=1 cargo test -p api --lib graphql"
    );
    let api = api();
    let (status, headers, bytes) = api.raw(ALICE, "GET", "/graphql/schema", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(String::from_utf8(bytes).unwrap(), committed);
    for name in [
        "type Query",
        "type Mutation",
        "createJob(",
        "cancelJob(",
        "retryJob(",
        "type JobConnection",
    ] {
        assert!(committed.contains(name), "{name}");
    }
}

#[test]
fn the_template_guards_graphql_with_the_jwt_authorizer_like_every_data_route() {
    use local_bridge::http_api;
    use local_bridge::template::Template;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let template = Template::load(std::path::Path::new(path)).unwrap();
    let mut params = local_bridge::testing::local_parameters("https://issuer.test");
    let api = http_api::offline(&template, &params).unwrap();
    for method in ["POST", "GET"] {
        let route = api
            .routes
            .iter()
            .find(|r| r.path == "/graphql" && r.method == method)
            .unwrap_or_else(|| panic!("{method} /graphql is an HttpApi event of the api function"));
        assert_eq!(route.authorizer.as_deref(), Some("Jwt"), "{method} /graphql");
        assert_eq!(route.function, "api");
    }
    params.insert("AuthMode".to_string(), "off".to_string());
    let off = http_api::offline(&template, &params).unwrap();
    assert!(
        off.routes
            .iter()
            .filter(|r| r.path == "/graphql")
            .all(|r| r.authorizer.is_none())
    );
}
