//! The console's routes in-process over the in-memory store (fast tier): the summary view with
//! search, sort and totals, the selection's cancel and retry, failures grouped by reason.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::job::{Job, JobStatus};
use shared::quota::Quotas;
use shared::service::Jobs;
use shared::store::JobStore;
use shared::store::memory::{MemoryJobStore, MemoryQueue};
use tower::ServiceExt;

use crate::app::{AppState, router};
use crate::auth::{AuthConfig, authorizer_context};

struct Api {
    app: axum::Router,
    store: Arc<MemoryJobStore>,
    queue: Arc<MemoryQueue>,
}

fn api() -> Api {
    let store = Arc::new(MemoryJobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let (s3, dynamodb) = crate::fast_tests::idle_clients();
    let state = AppState {
        jobs: Jobs::new(store.clone(), queue.clone(), time::Duration::seconds(60))
            .with_quotas(Quotas::NONE)
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
    };
    Api {
        app: router(state),
        store,
        queue,
    }
}

const ALICE: (&str, bool) = ("alice", false);
const BOB: (&str, bool) = ("bob", false);
const ADMIN: (&str, bool) = ("ops", true);

impl Api {
    async fn call(
        &self,
        who: (&str, bool),
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, usize) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .extension(authorizer_context(who.0, who.1));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes.len(),
        )
    }

    async fn create(&self, who: (&str, bool), body: Value) -> Value {
        let (status, job, _) = self.call(who, "POST", "/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await; // distinct created_at
        job
    }

    /// Sets a job's status (and error) as a worker would have left it.
    fn force(&self, id: &str, status: JobStatus, error: Option<&str>) {
        let mut job: Job = self.store.all().into_iter().find(|j| j.id.to_string() == id).unwrap();
        job.status = status;
        job.error = error.map(str::to_string);
        job.updated_at = shared::clock::now();
        job.version += 1;
        self.store.put(job);
    }
}

fn archive(owner: &str, asset: &str, priority: u8) -> Value {
    json!({"kind": "archive", "priority": priority,
        "payload": {"asset_id": asset, "source": format!("s3://uploads/uploads/{owner}/{asset}.mp4")}})
}

fn image(stores: &[&str]) -> Value {
    let visits: Vec<Value> = stores
        .iter()
        .map(|s| json!({"store_id": s, "image_url": ["https://img.example/a.jpg"], "visit_time": "t"}))
        .collect();
    json!({"kind": "image", "payload": {"count": visits.len(), "visits": visits}})
}

fn ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_summary_view_is_small_and_has_a_total_and_the_full_view_is_unchanged() {
    let api = api();
    // A job with a sizeable payload and timeline, as the console's rows carry today.
    let stores: Vec<String> = (0..20).map(|i| format!("S{i:04}")).collect();
    let store_refs: Vec<&str> = stores.iter().map(String::as_str).collect();
    for n in 0..20 {
        if n % 2 == 0 {
            api.create(ALICE, image(&store_refs)).await;
        } else {
            api.create(ALICE, archive("alice", &format!("asset-{n}"), 3)).await;
        }
    }
    let (status, full, full_bytes) = api.call(ALICE, "GET", "/jobs?limit=20", None).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    let (status, summary, summary_bytes) = api.call(ALICE, "GET", "/jobs?limit=20&view=summary", None).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(ids(&full), ids(&summary), "the same jobs in the same order");
    assert!(
        full["jobs"][0].get("payload").is_some(),
        "the seeds' full view keeps the payload"
    );
    assert!(full.get("total").is_none(), "the full view's shape is unchanged");
    let row = &summary["jobs"][0];
    assert!(
        row.get("payload").is_none() && row.get("timeline").is_none() && row.get("result").is_none(),
        "{row}"
    );
    for field in [
        "id",
        "kind",
        "type",
        "status",
        "priority",
        "progress",
        "created_at",
        "updated_at",
        "owner",
        "version",
    ] {
        assert!(row.get(field).is_some(), "{field}: {row}");
    }
    assert_eq!(row["key"], "asset-19");
    assert_eq!(
        summary["jobs"][1]["key"], "S0000 +19",
        "an image job's first store and how many more"
    );
    assert_eq!(
        (summary["total"].as_i64(), summary["total_estimated"].as_bool()),
        (Some(20), Some(false))
    );
    let (per_full, per_summary) = (full_bytes / 20, summary_bytes / 20);
    println!("bytes per row: full view {per_full}, summary view {per_summary}");
    assert!(
        per_summary * 3 < per_full,
        "summary {per_summary} B/row vs full {per_full} B/row"
    );

    // Totals: exact for statuses alone or a kind alone; an estimate for both.
    let (_, page, _) = api
        .call(ALICE, "GET", "/jobs?view=summary&kind=archive&limit=3", None)
        .await;
    assert_eq!(
        (page["total"].as_i64(), page["total_estimated"].as_bool()),
        (Some(10), Some(false))
    );
    assert_eq!(page["jobs"].as_array().unwrap().len(), 3);
    let (_, page, _) = api.call(ALICE, "GET", "/jobs?view=summary&status=pending", None).await;
    assert_eq!(
        (page["total"].as_i64(), page["total_estimated"].as_bool()),
        (Some(20), Some(false))
    );
    let one = ids(&summary)[0].clone();
    api.force(&one, JobStatus::Failed, Some("boom"));
    let (_, page, _) = api
        .call(ALICE, "GET", "/jobs?view=summary&status=failed&kind=image", None)
        .await;
    assert_eq!(page["total_estimated"], true, "{page}");
    let (_, page, _) = api.call(ALICE, "GET", "/jobs?view=summary&status=failed", None).await;
    assert_eq!(
        (page["total"].as_i64(), page["total_estimated"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(page["jobs"][0]["error"], "boom", "the error column's text");

    // Bad parameters of the summary view are 400s naming them; the full view ignores them.
    for (query, field) in [
        ("view=table", "view:"),
        ("view=summary&sort=name", "sort:"),
        ("view=summary&order=up", "order:"),
        ("view=summary&offset=2", "offset:"),
        (&*format!("view=summary&q={}", "x".repeat(257)), "q:"),
    ] {
        let (status, err, _) = api.call(ALICE, "GET", &format!("/jobs?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with(field), "{query}: {err}");
    }
    let (status, _, _) = api.call(ALICE, "GET", "/jobs?sort=name&order=up&q=zzz", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn search_finds_a_job_by_full_id_short_id_or_main_key_and_only_the_callers() {
    let api = api();
    let a = api.create(ALICE, archive("alice", "clip-77", 3)).await;
    let b = api.create(ALICE, image(&["S042", "S7"])).await;
    let theirs = api.create(BOB, archive("bob", "clip-77", 3)).await;
    let _other = api.create(ALICE, archive("alice", "clip-78", 3)).await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let short = &a_id[a_id.len() - 8..];
    for (q, want) in [
        (a_id.to_string(), vec![a_id]),
        (short.to_string(), vec![a_id]),
        (format!("…{}", short.to_uppercase()), vec![a_id]),
        ("clip-77".to_string(), vec![a_id]),
        (" CLIP-77 ".to_string(), vec![a_id]),
        ("s7".to_string(), vec![b_id]),
        ("S042".to_string(), vec![b_id]),
        ("clip".to_string(), vec![]),
        (theirs["id"].as_str().unwrap().to_string(), vec![]),
    ] {
        let path = format!("/jobs?view=summary&q={}", urlencode(&q));
        let (status, page, _) = api.call(ALICE, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{q}: {page}");
        assert_eq!(ids(&page), want, "{q}");
        assert_eq!(page["total"].as_i64(), Some(want.len() as i64), "{q}");
        assert_eq!(page["next"], Value::Null);
    }
    // An admin finds both owners' jobs of one asset id, newest first; a status filter applies.
    let (_, page, _) = api.call(ADMIN, "GET", "/jobs?view=summary&q=clip-77", None).await;
    assert_eq!(ids(&page), vec![theirs["id"].as_str().unwrap(), a_id]);
    let (_, page, _) = api
        .call(ADMIN, "GET", "/jobs?view=summary&q=clip-77&status=failed", None)
        .await;
    assert_eq!(ids(&page), Vec::<String>::new());
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_summary_view_sorts_by_created_updated_or_priority_both_ways_across_pages() {
    let api = api();
    let mut made = Vec::new();
    for (n, priority) in [3u8, 5, 1, 4, 2, 5].iter().enumerate() {
        made.push(api.create(ALICE, archive("alice", &format!("s{n}"), *priority)).await);
    }
    // The oldest changes last: sorted by update it comes first.
    let oldest = made[0]["id"].as_str().unwrap().to_string();
    api.force(&oldest, JobStatus::Failed, Some("x"));
    let all = |v: &[Value]| {
        v.iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let newest_first: Vec<String> = all(&made).into_iter().rev().collect();
    let walk = |sort: &'static str, order: &'static str| {
        let api = &api;
        async move {
            let mut got = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let mut path = format!("/jobs?view=summary&limit=2&sort={sort}&order={order}");
                if let Some(n) = &next {
                    path.push_str(&format!("&next={n}"));
                }
                let (status, page, _) = api.call(ALICE, "GET", &path, None).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                got.extend(ids(&page));
                match page["next"].as_str() {
                    Some(n) => next = Some(n.to_string()),
                    None => return got,
                }
            }
        }
    };
    assert_eq!(walk("created", "desc").await, newest_first);
    let mut oldest_first = newest_first.clone();
    oldest_first.reverse();
    assert_eq!(walk("created", "asc").await, oldest_first);
    let updated = walk("updated", "desc").await;
    assert_eq!(updated[0], oldest);
    assert_eq!(updated[1..], newest_first[..5]);
    let by_priority = walk("priority", "desc").await;
    let priorities: Vec<u8> = by_priority
        .iter()
        .map(|id| {
            made.iter().find(|j| j["id"] == *id.as_str()).unwrap()["priority"]
                .as_u64()
                .unwrap() as u8
        })
        .collect();
    assert_eq!(priorities, [5, 5, 4, 3, 2, 1]);
    assert_eq!(
        by_priority[0],
        made[5]["id"].as_str().unwrap(),
        "the newer of two 5s first"
    );
    let asc = walk("priority", "asc").await;
    assert_eq!(asc.iter().rev().cloned().collect::<Vec<_>>(), by_priority);
}

#[tokio::test]
async fn a_selection_is_cancelled_or_retried_after_a_dry_run_count_and_failures_group_by_reason() {
    let api = api();
    let mut jobs = Vec::new();
    for n in 0..5 {
        jobs.push(
            api.create(ALICE, archive("alice", &format!("c{n}"), 3)).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let bobs = api.create(BOB, archive("bob", "b", 3)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.force(
        &jobs[0],
        JobStatus::Failed,
        Some("s3://uploads/uploads/alice/c0.mp4 not found (404)"),
    );
    api.force(
        &jobs[1],
        JobStatus::Failed,
        Some("s3://uploads/uploads/alice/c1.mp4 not found (404)"),
    );
    api.force(&jobs[2], JobStatus::Failed, Some("access denied"));

    let (status, groups, _) = api.call(ALICE, "GET", "/jobs/failures", None).await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    assert_eq!(groups["failed"], 3);
    assert_eq!(groups["groups"][0]["count"], 2);
    assert_eq!(
        groups["groups"][0]["reason"],
        "s#://uploads/uploads/alice/c#.mp# not found (#)"
    );
    assert_eq!(groups["groups"][0]["job_ids"], json!([jobs[1], jobs[0]]));
    assert_eq!(groups["groups"][1]["example"], "access denied");
    let (status, err, _) = api.call(ALICE, "GET", "/jobs/failures?kind=video", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    // "Retry these" is the bulk retry of the group's ids, after a dry run.
    let group_ids = groups["groups"][0]["job_ids"].clone();
    let (_, dry, _) = api
        .call(
            ALICE,
            "POST",
            "/jobs/retry",
            Some(json!({"ids": group_ids, "dry_run": true})),
        )
        .await;
    assert_eq!(dry["would_retry"], 2, "{dry}");
    let (_, done, _) = api
        .call(ALICE, "POST", "/jobs/retry", Some(json!({"ids": group_ids})))
        .await;
    assert_eq!(done["retried"], 2, "{done}");

    // Cancel a selection: only the cancellable ones of the caller's, counted first.
    let selection = json!({"ids": [jobs[2], jobs[3], jobs[4], bobs], "dry_run": true});
    let (status, dry, _) = api.call(ALICE, "POST", "/jobs/cancel", Some(selection)).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["would_cancel"].as_u64(), dry.get("cancelled")),
        (Some(2), None),
        "{dry}"
    );
    let (_, one, _) = api.call(ALICE, "GET", &format!("/jobs/{}", jobs[3]), None).await;
    assert_eq!(one["status"], "pending", "a dry run changes nothing");
    let (_, done, _) = api
        .call(
            ALICE,
            "POST",
            "/jobs/cancel",
            Some(json!({"ids": [jobs[2], jobs[3], jobs[4], bobs]})),
        )
        .await;
    assert_eq!(done["cancelled"], 2, "{done}");
    assert_eq!(done["job_ids"], json!([jobs[3], jobs[4]]));
    let (_, theirs, _) = api.call(BOB, "GET", &format!("/jobs/{bobs}"), None).await;
    assert_eq!(theirs["status"], "pending", "another owner's job is left alone");

    for (body, field) in [
        (json!({"ids": []}), "ids:"),
        (
            json!({"ids": (0..101).map(|_| shared::job::JobId::new()).collect::<Vec<_>>()}),
            "ids:",
        ),
        (json!({"ids": ["nope"]}), "ids"),
        (json!({"ids": [jobs[3]], "force": true}), "force:"),
    ] {
        let (status, err, _) = api.call(ALICE, "POST", "/jobs/cancel", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with(field), "{body}: {err}");
    }
    assert!(api.store.get(jobs[0].parse().unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_scheduled_job_runs_now_with_a_message_without_delay_and_only_once_scheduled() {
    let api = api();
    let later = shared::clock::format(shared::clock::now() + time::Duration::days(30));
    let mut body = archive("alice", "later", 3);
    body["scheduled_for"] = json!(later);
    let job = api.create(ALICE, body).await;
    let id = job["id"].as_str().unwrap();
    let (status, err, _) = api.call(BOB, "POST", &format!("/jobs/{id}/run"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another owner's: {err}");
    let (status, ran, _) = api.call(ALICE, "POST", &format!("/jobs/{id}/run"), None).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["status"], "pending", "still waiting for a worker");
    assert!(ran.get("scheduled_for").is_none(), "{ran}");
    assert!(
        ran["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["message"] == "run now (was scheduled), asked by alice")
    );
    let stored = api.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.scheduled_for, None);
    // Due in 30 days it was parked (no message); run now sends one without delay.
    let sent = api.queue.sent.lock().unwrap().clone();
    let delays = |id: &str| -> Vec<i64> {
        sent.iter()
            .filter(|(m, _, _)| m.job_id.to_string() == id)
            .map(|(_, _, d)| d.whole_seconds())
            .collect()
    };
    assert_eq!(delays(id), [0]);
    assert!(stored.enqueued_at.is_some() && !stored.is_parked());
    // Due within SQS's 15-minute delay: a delayed message at once, then none delayed on run now.
    let mut body = archive("alice", "soon", 3);
    body["scheduled_for"] = json!(shared::clock::format(
        shared::clock::now() + time::Duration::minutes(10)
    ));
    let soon = api.create(ALICE, body).await;
    let soon = soon["id"].as_str().unwrap();
    let (status, _, _) = api.call(ALICE, "POST", &format!("/jobs/{soon}/run"), None).await;
    assert_eq!(status, StatusCode::OK);
    let sent = api.queue.sent.lock().unwrap().clone();
    let delays: Vec<i64> = sent
        .iter()
        .filter(|(m, _, _)| m.job_id.to_string() == soon)
        .map(|(_, _, d)| d.whole_seconds())
        .collect();
    assert!(delays.len() == 2 && delays[0] > 500 && delays[1] == 0, "{delays:?}");
    // Not scheduled any more, or not waiting: 409.
    let (status, err, _) = api.call(ALICE, "POST", &format!("/jobs/{id}/run"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    api.force(id, JobStatus::Completed, None);
    let (status, _, _) = api.call(ALICE, "POST", &format!("/jobs/{id}/run"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn dead_letters_are_for_admins_and_name_what_is_missing() {
    let api = api();
    for (method, path) in [
        ("GET", "/queues/high_dead_letter/messages"),
        ("POST", "/queues/high_dead_letter/redrive"),
    ] {
        let (status, err, _) = api.call(ALICE, method, path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {err}");
        // No queues configured in this process: a 404 saying so, for an admin.
        let (status, err, _) = api.call(ADMIN, method, path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
    }
    let (status, err, _) = api
        .call(ADMIN, "GET", "/queues/high_dead_letter/messages?max=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"].as_str().unwrap().starts_with("max:"), "{err}");
    let (status, err, _) = api
        .call(
            ADMIN,
            "POST",
            "/queues/high_dead_letter/redrive",
            Some(json!({"id": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test]
async fn pausing_a_queue_is_for_admins_and_names_the_queue_it_cannot_find() {
    let api = api();
    for path in ["/queues/high/pause", "/queues/high/resume"] {
        let (status, err, _) = api.call(ALICE, "POST", path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {err}");
        assert!(err["error"].as_str().unwrap().contains("admin"), "{err}");
        // No queues configured in this process: a 404 naming the path's field.
        let (status, err, _) = api.call(ADMIN, "POST", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with("name:"), "{err}");
    }
    // GET only answers 405 (JSON).
    let (status, _, _) = api.call(ADMIN, "GET", "/queues/high/pause", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// `GET /stats` counts the scheduled jobs apart; `GET /jobs/stuck` lists the jobs past their
/// bound with why, the list and the job's page flag them, and `POST /jobs/{id}/stop` (admins)
/// fails a running one past its bound and refuses one within it.
#[tokio::test]
async fn scheduled_are_counted_apart_and_jobs_past_their_bound_are_flagged_and_stopped() {
    let api = api();
    let later = shared::clock::format(shared::clock::now() + time::Duration::days(30));
    let mut body = archive("alice", "later", 3);
    body["scheduled_for"] = json!(later);
    let scheduled = api.create(ALICE, body).await;
    api.create(ALICE, archive("alice", "now", 3)).await;
    let (_, stats, _) = api.call(ALICE, "GET", "/stats", None).await;
    assert_eq!(
        (stats["by_status"]["pending"].as_i64(), stats["scheduled"].as_i64()),
        (Some(2), Some(1)),
        "{stats}"
    );
    assert_eq!(stats["completed_per_minute"][59]["failed"], 0, "{stats}");

    // a run whose lease ended an hour ago: past its bound (attempts remain)
    let now = shared::clock::now();
    let mut stalled = Job::new(
        shared::job::JobSpec::from_json(
            "archive",
            json!({"asset_id": "stalled", "source": "s3://uploads/uploads/alice/a.mp4"}),
        )
        .unwrap(),
        3,
        None,
        now - time::Duration::hours(2),
    )
    .unwrap();
    stalled.owner = Some(shared::auth::Owner::parse("alice").unwrap());
    stalled
        .claim(now - time::Duration::hours(1), time::Duration::seconds(90))
        .unwrap();
    api.store.put(stalled.clone());
    let id = stalled.id.to_string();

    let (status, stuck, _) = api.call(ADMIN, "GET", "/jobs/stuck", None).await;
    assert_eq!(status, StatusCode::OK, "{stuck}");
    let flagged: Vec<&str> = stuck["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, vec![id.as_str()], "{stuck}");
    assert!(
        stuck["jobs"][0]["past_bound"]
            .as_str()
            .unwrap()
            .contains("stopped responding"),
        "{stuck}"
    );
    assert_eq!(
        (stuck["more"].as_bool(), stuck["bounds"]["queued_seconds"].as_i64()),
        (Some(false), Some(1200))
    );
    let (status, err, _) = api.call(ADMIN, "GET", "/jobs/stuck?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().starts_with("limit:"), "{err}");
    let (_, page, _) = api
        .call(ALICE, "GET", "/jobs?view=summary&status=processing", None)
        .await;
    assert!(page["jobs"][0]["past_bound"].is_string(), "{page}");
    let (_, job, _) = api.call(ALICE, "GET", &format!("/jobs/{id}"), None).await;
    assert!(job["past_bound"].is_string(), "{job}");
    let (_, job, _) = api
        .call(
            ALICE,
            "GET",
            &format!("/jobs/{}", scheduled["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(job.get("past_bound").is_none(), "scheduled is not stuck: {job}");

    let (status, _, _) = api.call(ALICE, "POST", &format!("/jobs/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, stopped, _) = api.call(ADMIN, "POST", &format!("/jobs/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "failed");
    assert!(
        stopped["error"]
            .as_str()
            .unwrap()
            .starts_with("stopped by ops: attempt 1 stopped responding"),
        "{stopped}"
    );
    let (status, _, _) = api.call(ADMIN, "POST", &format!("/jobs/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "it ends once");
    let (_, stats, _) = api.call(ALICE, "GET", "/stats", None).await;
    assert_eq!(stats["completed_per_minute"][59]["failed"], 1, "{stats}");

    // a run within its bound is refused
    let mut running = stalled.clone();
    running.id = shared::job::JobId::new();
    running.status = JobStatus::Pending;
    running
        .claim(shared::clock::now(), time::Duration::seconds(90))
        .unwrap();
    api.store.put(running.clone());
    let (status, err, _) = api
        .call(ADMIN, "POST", &format!("/jobs/{}/stop", running.id), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(err["error"].as_str().unwrap().contains("within its bound"), "{err}");
}

/// A chart bar's link: `sort=updated&updated_until=<minute>` starts at the end of that minute,
/// so the jobs changed in it come first, then earlier ones; later ones are not on the page.
#[tokio::test]
async fn a_listing_by_last_change_starts_at_the_end_of_a_given_minute() {
    let api = api();
    let base = shared::clock::now() - time::Duration::hours(1);
    let mut ids = Vec::new();
    for (n, mins) in [(0, 3), (1, 2), (2, 1)] {
        let job = api.create(ALICE, archive("alice", &format!("m{n}"), 3)).await;
        let mut stored: Job = api
            .store
            .get(job["id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        stored.status = JobStatus::Completed;
        stored.updated_at = base - time::Duration::minutes(mins) + time::Duration::seconds(30);
        api.store.put(stored.clone());
        ids.push(stored.id.to_string());
    }
    let minute = shared::clock::minute_key(base - time::Duration::minutes(2) + time::Duration::seconds(30));
    let (status, page, _) = api
        .call(
            ALICE,
            "GET",
            &format!("/jobs?view=summary&status=completed&sort=updated&updated_until={minute}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].as_str(), ids[0].as_str()], "{page}");
    for bad in [
        format!("sort=updated&updated_until={minute}:00"),
        format!("sort=created&updated_until={minute}"),
        format!("sort=updated&order=asc&updated_until={minute}"),
        format!("sort=updated&q=m1&updated_until={minute}"),
    ] {
        let (status, err, _) = api.call(ALICE, "GET", &format!("/jobs?view=summary&{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert!(
            err["error"].as_str().unwrap().starts_with("updated_until:"),
            "{bad}: {err}"
        );
    }
}
