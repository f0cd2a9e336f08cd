//! Retail Pulse's public contract, kept exactly: `POST /api/submit/` and `GET /api/status?jobid=`;
//! and `GET /jobs/{id}/images`, the per-image results of any image job.
//!
//! Submissions become ordinary `image` jobs (they show in `/jobs` too); the worker measures them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use shared::Error;
use shared::images::{ImageResult, StoreError, store_errors};
use shared::job::{ImagePayload, JobId, JobResult, JobSpec, JobStatus};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::{ApiError, error_response};
use crate::jobs::{parse_json, query_pairs};
use crate::openapi::ErrorBody;

/// The biggest body the routes that create image jobs take: what one Lambda request carries
/// (6 MB; the gateway's own limit is 10 MB). axum's default would be 2 MB.
pub const MAX_SUBMISSION_BYTES: usize = 6 * 1024 * 1024;

/// `route` (a route that creates jobs) taking bodies up to [`MAX_SUBMISSION_BYTES`], and
/// answering a bigger one with a JSON 413 (axum's own is plain text).
pub fn submission_limit(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route
        .layer(DefaultBodyLimit::max(MAX_SUBMISSION_BYTES))
        .layer(axum::middleware::map_response(json_413))
}

async fn json_413(response: Response) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body: larger than {MAX_SUBMISSION_BYTES} bytes (6 MB, what one Lambda request carries); \
                 split the visits into several jobs"
            ),
        )
    } else {
        response
    }
}

/// `POST /api/submit/` `{"count", "visits": [{"store_id", "image_url": [...], "visit_time"}]}` ->
/// 201 `{"job_id"}`; 400 `{"error"}` for missing fields or `count != visits.length`.
#[utoipa::path(post, path = "/api/submit", summary = "Submit a Retail Pulse image job (the seed's contract); it also shows in /jobs as kind image", tag = "retail", request_body = ImagePayload,
    responses(
        (status = 201, description = "Accepted; the job also shows in /jobs as kind image", body = Submitted),
        (status = 400, description = "Missing fields or count != visits.length", body = ErrorBody)))]
pub async fn submit(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> Result<Response, ApiError> {
    // `{"upload_id"}`: the payload is the caller's presigned upload (`POST /jobs/uploads`).
    let upload = match crate::submissions::upload_id_of(&body) {
        Some(id) => {
            let fields: serde_json::Map<String, serde_json::Value> = parse_json(&body)?;
            if fields.len() > 1 {
                return Err(ApiError::invalid(
                    "upload_id: send upload_id alone; the payload is the upload",
                ));
            }
            Some(crate::submissions::take(&app, &caller, &id).await?)
        }
        None => None,
    };
    let payload: ImagePayload = match &upload {
        Some(upload) => {
            crate::submissions::uploaded_json(&upload.bytes)?;
            parse_json(&upload.bytes)?
        }
        None => parse_json(&body)?,
    };
    let spec = JobSpec::Image(payload);
    // Errors name fields as the client sent them (`count`, not `payload.count`).
    spec.validate()
        .map_err(|e| ApiError::invalid(e.to_string().trim_start_matches("payload.").to_string()))?;
    let priority = shared::service::DEFAULT_PRIORITY;
    let (job, _) = app
        .jobs
        .submit_spec(Some(caller.owner), spec, priority, None, None)
        .await?;
    if let Some(upload) = upload {
        crate::submissions::discard(&app, upload).await;
    }
    Ok((StatusCode::CREATED, Json(Submitted { job_id: job.id })).into_response())
}

/// The answer of `POST /api/submit/`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub job_id: JobId,
}

/// `POST /api/submit/`: the seed's own spelling of [`submit`] (its clients post with the slash).
#[utoipa::path(post, path = "/api/submit/", summary = "Submit a Retail Pulse image job (the seed's spelling, with the slash)", tag = "retail", request_body = ImagePayload,
    responses(
        (status = 201, description = "Accepted; the job also shows in /jobs as kind image", body = Submitted),
        (status = 400, description = "Missing fields or count != visits.length", body = ErrorBody)))]
pub async fn submit_slash(state: State<AppState>, signed: Signed, body: Bytes) -> Result<Response, ApiError> {
    submit(state, signed, body).await
}

/// `GET /api/status?jobid=ID` -> `{"status": "completed" | "ongoing" | "failed", "job_id"}`, with
/// `"error": [{"store_id", "error"}]` for a failed job. An unknown id is a 400, as in the seed.
#[utoipa::path(get, path = "/api/status", summary = "Retail Pulse job status (an unknown id is a 400, as in the seed)", tag = "retail",
    params(("jobid" = Uuid, Query, description = "The job_id /api/submit answered")),
    responses(
        (status = 200, description = "The job's status; a failed job's stores with their errors", body = RetailStatus),
        (status = 400, description = "No jobid, or Job ID not found", body = ErrorBody)))]
pub async fn status(
    State(app): State<AppState>,
    Signed(caller): Signed,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some((_, raw)) = query_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "jobid")
    else {
        return Err(ApiError::invalid("jobid is required: /api/status?jobid=ID"));
    };
    let not_found = || error_response(StatusCode::BAD_REQUEST, "Job ID not found");
    let Ok(id) = raw.trim().parse() else {
        return Ok(not_found());
    };
    let job = match app.jobs.get(&caller, id).await {
        Ok(job) if matches!(job.spec, JobSpec::Image(_)) => job,
        Ok(_) | Err(Error::NotFound(_)) => return Ok(not_found()),
        Err(e) => return Err(e.into()),
    };
    let (status, error) = match job.status {
        JobStatus::Completed => ("completed", None),
        JobStatus::Failed | JobStatus::Cancelled => {
            let result = match job.typed_result()? {
                Some(JobResult::Image(r)) => Some(r),
                _ => None,
            };
            let stores = match result {
                // The job item lists the first stores only; every store's error is in the parts.
                Some(r) if r.errors_truncated => match job.last_run_key() {
                    Some(run) => Some(store_errors(&app.parts.list(job.id, &run).await?)),
                    None => Some(r.errors),
                },
                Some(r) if !r.errors.is_empty() => Some(r.errors),
                _ => None,
            };
            let errors = match stores {
                Some(errors) => errors
                    .into_iter()
                    .map(|e| StatusError {
                        store_id: Some(e.store_id),
                        error: e.error,
                    })
                    .collect(),
                None => vec![StatusError {
                    store_id: None,
                    error: job.error.clone().unwrap_or_else(|| "cancelled".into()),
                }],
            };
            ("failed", Some(errors))
        }
        JobStatus::Pending | JobStatus::Queued | JobStatus::Processing => ("ongoing", None),
    };
    let body = RetailStatus {
        job_id: job.id,
        status,
        error,
    };
    Ok(Json(body).into_response())
}

/// The answer of `GET /api/status` (the seed's shape).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RetailStatus {
    pub job_id: JobId,
    #[schema(value_type = String, pattern = "^(completed|ongoing|failed)$")]
    pub status: &'static str,
    /// A failed job's stores, each with its first error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Vec<StatusError>>,
}

/// One store's error in [`RetailStatus`]; `store_id` is null for a job that failed as a whole
/// (cancelled, or its payload unusable).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusError {
    pub store_id: Option<String>,
    pub error: String,
}

/// Images per page of `GET /jobs/{id}/images` unless `limit` says otherwise, and the most.
pub const IMAGES_PAGE: usize = 1_000;
pub const MAX_IMAGES_PAGE: usize = 5_000;

/// `GET /jobs/{id}/images?limit=&next=`: the measured and the failed images of the job's latest
/// run, a page of whole parts at a time (`limit` images, 1,000 by default, at most 5,000, rounded
/// to parts of 25); `next` in the answer continues (absent on the last page).
#[utoipa::path(get, path = "/jobs/{id}/images", summary = "Per-image results of an image job's latest run, and each failed image's error, a page of whole parts at a time", tag = "retail",
    params(
        ("id" = Uuid, Path, description = "The job's id"),
        ("limit" = Option<usize>, Query, description = "Images per page: 1 to 5,000 (default 1,000), rounded up to whole parts of 25"),
        ("next" = Option<String>, Query, description = "The `next` of the previous page")),
    responses(
        (status = 200, description = "A page of per-image results of an image job's latest run", body = ImagesAnswer),
        (status = 400, description = "Not an image job, or a bad `limit` or `next`", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn images(
    State(app): State<AppState>,
    Signed(caller): Signed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = id.parse().map_err(ApiError)?;
    let (mut limit, mut after) = (IMAGES_PAGE, None);
    for (key, value) in query_pairs(query.as_deref().unwrap_or("")) {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_IMAGES_PAGE).contains(n))
                    .ok_or_else(|| ApiError::invalid(format!("limit: must be 1 to {MAX_IMAGES_PAGE} images")))?
            }
            "next" => {
                after = Some(value.parse::<u32>().map_err(|_| {
                    ApiError::invalid("next: not a cursor of this listing (send back the `next` of the last page)")
                })?)
            }
            _ => {}
        }
    }
    let ImagesPage { job, page, done } = images_page(&app, &caller, id, limit, after).await?;
    let JobSpec::Image(payload) = &job.spec else {
        unreachable!("images_page answers image jobs only")
    };
    let images = page.parts.iter().flat_map(|p| &p.images).collect();
    let errors = page.parts.iter().flat_map(|p| &p.errors).collect();
    Ok(Json(ImagesAnswer {
        job_id: id,
        status: job.status,
        images_total: payload.image_count(),
        parts_total: payload.part_count(),
        parts_done: done,
        images,
        errors,
        next: page.next.map(|n| n.to_string()),
    })
    .into_response())
}

/// One page of an image job's per-image results: the job (an image job the caller may see),
/// whole parts of its latest run after part `after` (about `limit` images), parts done.
pub struct ImagesPage {
    pub job: shared::job::Job,
    pub page: shared::store::parts::PartPage,
    pub done: u32,
}

/// The page `GET /jobs/{id}/images` (and GraphQL's `images`) answers.
pub async fn images_page(
    app: &AppState,
    caller: &shared::auth::Caller,
    id: JobId,
    limit: usize,
    after: Option<u32>,
) -> Result<ImagesPage, ApiError> {
    let job = app.jobs.get(caller, id).await?;
    if !matches!(job.spec, JobSpec::Image(_)) {
        return Err(ApiError::invalid(format!(
            "job {id} is a {} job, not an image job",
            job.kind()
        )));
    }
    let per_page = limit.div_ceil(shared::job::IMAGES_PER_PART);
    let (page, done) = match job.last_run_key() {
        Some(run) => (
            app.parts.page(id, &run, after, per_page).await?,
            app.parts.done(id, &run).await?,
        ),
        None => Default::default(),
    };
    Ok(ImagesPage { job, page, done })
}

/// The answer of `GET /jobs/{id}/images`: one page.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImagesAnswer<'a> {
    pub job_id: JobId,
    pub status: JobStatus,
    pub images_total: usize,
    pub parts_total: u32,
    /// Parts of the latest run that have reported.
    pub parts_done: u32,
    /// The page's measured images: store, url, width, height, perimeter, bytes read.
    pub images: Vec<&'a ImageResult>,
    /// The page's failed images, with why.
    pub errors: Vec<&'a StoreError>,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    //! Submissions of real size, in-process over the in-memory store, queue and payloads.

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use shared::payloads::MemoryPayloads;
    use shared::quota::Quotas;
    use shared::service::Jobs;
    use shared::store::JobStore;
    use shared::store::memory::{MemoryJobStore, MemoryQueue};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{AuthConfig, authorizer_context};
    use serde_json::{Value, json};

    pub(crate) struct Api {
        pub app: axum::Router,
        pub store: Arc<MemoryJobStore>,
        pub payloads: Arc<MemoryPayloads>,
        pub parts: Arc<shared::store::memory::MemoryPartStore>,
    }

    pub(crate) fn api() -> Api {
        let store = Arc::new(MemoryJobStore::new());
        let payloads = Arc::new(MemoryPayloads::new());
        let parts = Arc::new(shared::store::memory::MemoryPartStore::new());
        let (s3, _) = crate::fast_tests::idle_clients();
        let app = crate::app::router(AppState {
            jobs: Jobs::new(store.clone(), Arc::new(MemoryQueue::new()), time::Duration::seconds(60))
                .with_quotas(Quotas::default())
                .with_payloads(payloads.clone()),
            files: crate::files::Files {
                s3,
                bucket: "uploads".into(),
                entries: Arc::new(shared::store::memory::MemoryEntryStore::new()),
                max_upload_bytes: 64 * 1024,
                max_presigned_bytes: 1024 * 1024,
            },
            parts: parts.clone(),
            auth: AuthConfig::default(),
        });
        Api {
            app,
            store,
            payloads,
            parts,
        }
    }

    impl Api {
        pub async fn get(&self, path: &str) -> (StatusCode, Value) {
            let req = Request::builder()
                .uri(path)
                .extension(authorizer_context("alice", false))
                .body(Body::empty())
                .unwrap();
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        }

        pub async fn post(&self, path: &str, body: String) -> (StatusCode, String, Value) {
            let req = Request::builder()
                .method("POST")
                .uri(path)
                .header("content-type", "application/json")
                .extension(authorizer_context("alice", false))
                .body(Body::from(body))
                .unwrap();
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let kind = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, kind, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        }
    }

    /// Retail Pulse's shape: `visits` visits of `per_visit` URLs (`/<n>.jpg`) padded to `pad` bytes.
    pub(crate) fn submission(visits: usize, per_visit: usize, pad: usize) -> Value {
        let visits: Vec<Value> = (0..visits)
            .map(|v| {
                let urls: Vec<String> = (0..per_visit)
                    .map(|i| format!("https://img.example/{}{}.jpg", "p".repeat(pad), v * per_visit + i))
                    .collect();
                json!({"store_id": "S00339218", "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"})
            })
            .collect();
        json!({"count": visits.len(), "visits": visits})
    }

    #[tokio::test]
    async fn a_100000_url_submission_is_accepted_and_its_visits_go_to_s3() {
        let api = api();
        let body = submission(10_000, 10, 0).to_string();
        assert!(
            body.len() > 2 * 1024 * 1024,
            "over axum's default limit: {}",
            body.len()
        );
        let (status, _, answer) = api.post("/api/submit/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let id = answer["job_id"].as_str().unwrap().parse().unwrap();
        let job = api.store.get(id).await.unwrap().unwrap();
        let JobSpec::Image(p) = &job.spec else { panic!() };
        let stored = p.stored.as_ref().expect("claim check");
        assert_eq!(
            (p.image_count(), p.part_count(), stored.visits),
            (100_000, 4_000, 10_000)
        );
        assert_eq!(stored.key, format!("payloads/alice/{id}.json"));
        assert_eq!(api.payloads.len(), 1);
        assert!(serde_json::to_vec(&job).unwrap().len() < 4 * 1024);

        // 100,001 images are one too many.
        let mut over = submission(10_000, 10, 0);
        over["visits"][0]["image_url"]
            .as_array_mut()
            .unwrap()
            .push(json!("https://img.example/x.jpg"));
        let (status, _, answer) = api.post("/api/submit/", over.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("visits: holds 100001 images"),
            "{answer}"
        );
        assert_eq!(api.payloads.len(), 1, "nothing written");
    }

    #[tokio::test]
    async fn a_body_over_6_mb_is_a_json_413_on_every_route_that_creates_jobs() {
        let api = api();
        let big = submission(1_000, 10, 600).to_string();
        assert!(big.len() > MAX_SUBMISSION_BYTES);
        for (path, body) in [
            ("/api/submit/", big.clone()),
            ("/api/submit", big.clone()),
            ("/jobs", json!({"kind": "image", "payload": big}).to_string()),
        ] {
            let (status, kind, answer) = api.post(path, body).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            assert!(kind.starts_with("application/json"), "{path}: {kind}");
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("body: larger than 6291456 bytes"),
                "{answer}"
            );
        }
        assert!(api.payloads.is_empty());
    }

    #[tokio::test]
    async fn a_client_sent_stored_reference_is_refused_naming_the_field() {
        let api = api();
        let mut payload = submission(1, 1, 0);
        payload["stored"] = json!({"bucket": "b", "key": "payloads/bob/x.json", "bytes": 1, "sha256": "00",
                                   "etag": "\"00\"", "visits": 1, "images": 1});
        let (status, _, answer) = api.post("/api/submit/", payload.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"].as_str().unwrap().starts_with("stored: "), "{answer}");
        let (status, _, answer) = api
            .post("/jobs", json!({"kind": "image", "payload": payload}).to_string())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"].as_str().unwrap().starts_with("payload.stored: "),
            "{answer}"
        );
        assert!(api.payloads.is_empty());
    }

    #[tokio::test]
    async fn per_image_results_come_in_pages_of_whole_parts() {
        use shared::images::{ImageResult, PartResult, StoreError};
        use shared::store::PartStore;
        let api = api();
        let (status, answer) = {
            let (status, _, answer) = api.post("/api/submit/", submission(10, 10, 0).to_string()).await;
            (status, answer)
        };
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let id = answer["job_id"].as_str().unwrap().parse().unwrap();
        let job = api
            .store
            .modify(id, &mut |j| {
                j.start_parts(4, shared::clock::now())
                    .map(|_| ())
                    .map_err(|_| shared::Error::Conflict("".into()))
            })
            .await
            .unwrap();
        let run = job.run_key().unwrap();
        for part in [3, 0, 2, 1] {
            let images = (0..25)
                .map(|i| ImageResult::new("S00339218", &format!("https://img.example/{part}/{i}.jpg"), 1, 1, 10))
                .collect();
            let errors = vec![StoreError {
                store_id: "S00339218".into(),
                url: None,
                error: format!("part {part}"),
            }];
            api.parts
                .record(id, &run, &PartResult { part, images, errors })
                .await
                .unwrap();
        }
        let mut urls = Vec::new();
        let mut errors = Vec::new();
        let mut path = format!("/jobs/{id}/images?limit=50");
        let mut pages = 0;
        loop {
            let (status, page) = api.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(
                (page["images_total"].as_u64(), page["parts_total"].as_u64()),
                (Some(100), Some(4))
            );
            assert_eq!(page["parts_done"], 4);
            assert!(page["images"].as_array().unwrap().len() <= 50);
            urls.extend(
                page["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["url"].as_str().unwrap().to_string()),
            );
            errors.extend(
                page["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["error"].as_str().unwrap().to_string()),
            );
            pages += 1;
            match page["next"].as_str() {
                Some(next) => path = format!("/jobs/{id}/images?limit=50&next={next}"),
                None => break,
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(urls.len(), 100);
        assert_eq!(urls.iter().collect::<std::collections::BTreeSet<_>>().len(), 100);
        assert_eq!(errors, ["part 0", "part 1", "part 2", "part 3"]);
        assert!(urls[0].contains("/0/") && urls[99].contains("/3/"));

        let (status, answer) = api.get(&format!("/jobs/{id}/images?limit=5001")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"].as_str().unwrap().starts_with("limit: "), "{answer}");
        let (status, answer) = api.get(&format!("/jobs/{id}/images?next=abc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"].as_str().unwrap().starts_with("next: "), "{answer}");
    }
}
