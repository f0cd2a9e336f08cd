//! Image submissions bigger than one request (API Gateway stops at 10 MB, a Lambda event at 6 MB):
//! `POST /jobs/uploads` answers a presigned PUT to `submissions/<owner>/<upload_id>.json`; the
//! client puts its payload there, then sends `POST /jobs {"kind": "image", "upload_id"}` (or
//! `POST /api/submit/ {"upload_id"}`). The api reads the object, validates it exactly as an inline
//! payload, stores it through the claim check (`payloads/`) and creates the job; the submission is
//! then deleted (best-effort; a lifecycle rule expires `submissions/` after a day on AWS).

use std::time::Duration as StdDuration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use shared::auth::{Caller, Owner};
use shared::job::JobId;

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::{ApiError, error_response};
use crate::files::{PresignedPut, presign_put};
use crate::jobs::parse_json;
use crate::openapi::ErrorBody;

/// The biggest submission a presigned PUT may carry: 25 MB of JSON.
pub const MAX_SUBMISSION_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;
/// How long the presigned PUT works.
pub const UPLOAD_EXPIRY: StdDuration = StdDuration::from_secs(900);

/// Where an upload of `owner` lives: `submissions/<owner>/<upload_id>.json`.
pub fn key(owner: &Owner, upload_id: JobId) -> String {
    format!("submissions/{}/{upload_id}.json", owner.as_str())
}

/// `POST /jobs/uploads`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// Only `image` submissions are uploaded.
    pub kind: String,
    /// The payload's size in bytes (the URL is signed for exactly this many), at most 25 MB.
    pub size: u64,
}

/// `POST /jobs/uploads` `{"kind": "image", "size"}`: a presigned S3 PUT for an image payload too
/// big for one request; `POST /jobs {"kind": "image", "upload_id"}` then creates its job.
#[utoipa::path(post, path = "/jobs/uploads", summary = "A presigned S3 PUT for an image payload over 6 MB", tag = "retail", request_body = UploadRequest,
    responses(
        (status = 201, description = "A presigned PUT (15 min) for the submission, and its upload_id", body = SubmissionUpload),
        (status = 400, description = "A bad kind or size", body = ErrorBody),
        (status = 413, description = "size over 25 MB", body = ErrorBody)))]
pub async fn create(State(app): State<AppState>, Signed(caller): Signed, body: Bytes) -> Result<Response, ApiError> {
    let req: UploadRequest = parse_json(&body)?;
    if req.kind != "image" {
        return Err(ApiError::invalid(format!(
            "kind: {:?} is not uploaded; only image payloads take the presigned path",
            req.kind
        )));
    }
    if req.size == 0 {
        return Err(ApiError::invalid("size: must be at least 1 byte"));
    }
    if req.size > MAX_SUBMISSION_UPLOAD_BYTES {
        return Ok(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "size: {} bytes; a submission takes at most {MAX_SUBMISSION_UPLOAD_BYTES} (25 MB), split the visits into several jobs",
                req.size
            ),
        ));
    }
    let bucket = payload_store(&app)?.bucket().to_owned();
    let upload_id = JobId::new();
    let key = key(&caller.owner, upload_id);
    let put = presign_put(&app, &bucket, &key, req.size, UPLOAD_EXPIRY).await?;
    let body = SubmissionUpload { upload_id, key, put };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The answer of `POST /jobs/uploads`: where to PUT the submission, and its id for `POST /jobs`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SubmissionUpload {
    pub upload_id: JobId,
    /// `submissions/<owner>/<upload_id>.json`.
    pub key: String,
    #[serde(flatten)]
    pub put: PresignedPut,
}

fn payload_store(app: &AppState) -> Result<&std::sync::Arc<dyn shared::payloads::Payloads>, ApiError> {
    app.jobs
        .payloads
        .as_ref()
        .ok_or_else(|| ApiError(shared::Error::Internal("no payload store: uploads are off".into())))
}

/// A body's `upload_id`, if it has one (other fields are skipped, not kept).
pub fn upload_id_of(body: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Probe {
        upload_id: Option<Value>,
    }
    serde_json::from_slice::<Probe>(body).ok().and_then(|p| p.upload_id)
}

/// A caller's uploaded submission, read but not yet used.
pub struct Upload {
    pub key: String,
    pub bytes: Vec<u8>,
}

/// Reads the caller's upload `upload_id`: a 400 naming `upload_id` for a malformed id or an object
/// over 25 MB, a 404 naming it when the caller has no such upload (never put, expired, used, or
/// someone else's).
pub async fn take(app: &AppState, caller: &Caller, upload_id: &Value) -> Result<Upload, ApiError> {
    let id: JobId = upload_id.as_str().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
        ApiError::invalid("upload_id: not an upload id (send the upload_id POST /jobs/uploads answered)")
    })?;
    let key = key(&caller.owner, id);
    match payload_store(app)?
        .read_object(&key, MAX_SUBMISSION_UPLOAD_BYTES)
        .await?
    {
        Some(bytes) => Ok(Upload { key, bytes }),
        None => Err(ApiError(shared::Error::NotFound(format!(
            "upload_id: no upload {id} of yours (not put yet, expired or already used)"
        )))),
    }
}

/// Deletes a used upload, best-effort (the lifecycle rule removes what is left).
pub async fn discard(app: &AppState, upload: Upload) {
    if let Ok(payloads) = payload_store(app)
        && let Err(e) = payloads.delete_object(&upload.key).await
    {
        tracing::warn!(key = %upload.key, error = %e, "could not delete a used submission");
    }
}

/// `POST /jobs`'s body with `upload_id` in place of `payload`: the same body with the uploaded
/// object as its `payload`, to parse and validate exactly as an inline one.
pub fn job_body(body: &[u8], upload: &Upload) -> Result<Vec<u8>, ApiError> {
    let mut fields: Map<String, Value> = parse_json(body)?;
    if fields.contains_key("payload") {
        return Err(ApiError::invalid(
            "upload_id: send either payload or upload_id, not both",
        ));
    }
    let kind = fields.get("kind").or_else(|| fields.get("type"));
    if kind.and_then(Value::as_str) != Some("image") {
        return Err(ApiError::invalid(
            "upload_id: only image jobs take an upload (kind must be image)",
        ));
    }
    fields.remove("upload_id");
    fields.insert("payload".into(), uploaded_json(&upload.bytes)?);
    serde_json::to_vec(&fields).map_err(|e| ApiError(shared::Error::Internal(e.to_string())))
}

/// The uploaded object as JSON: a 400 naming `upload_id` when it is not.
pub fn uploaded_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(format!("upload_id: the uploaded object is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    //! The presigned path in-process: the upload is put straight into the in-memory payloads (the
    //! presigned URL itself is exercised against S3 in `tests/emulators.rs`).

    use axum::http::StatusCode;
    use serde_json::{Value, json};
    use shared::job::JobSpec;
    use shared::store::JobStore;

    use crate::retail::tests::{Api, api, submission};

    async fn upload(api: &Api, size: usize) -> (String, String) {
        let (status, _, answer) = api
            .post("/jobs/uploads", json!({"kind": "image", "size": size}).to_string())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let id = answer["upload_id"].as_str().unwrap().to_string();
        let key = answer["key"].as_str().unwrap().to_string();
        assert_eq!(key, format!("submissions/alice/{id}.json"));
        let url = answer["upload_url"].as_str().unwrap();
        // (Signed only with credentials, which these in-process tests have none of.)
        assert!(url.contains(&key), "{url}");
        assert_eq!(answer["method"], "PUT");
        // The signature covers Content-Length: exactly `size` bytes.
        assert_eq!(answer["max_bytes"], size);
        assert!(answer["expires_at"].is_string(), "{answer}");
        (id, key)
    }

    fn error(answer: &Value) -> &str {
        answer["error"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_submission_over_6_mb_goes_through_an_upload_and_is_deleted_after_use() {
        let api = api();
        let payload = submission(1_000, 10, 600).to_string();
        assert!(payload.len() > crate::retail::MAX_SUBMISSION_BYTES, "{}", payload.len());
        for route in ["/jobs", "/api/submit/"] {
            let (id, key) = upload(&api, payload.len()).await;
            let writes = api.payloads.len();
            shared::payloads::Payloads::put_object(&*api.payloads, &key, payload.clone().into_bytes())
                .await
                .unwrap();
            let body = match route {
                "/jobs" => json!({"kind": "image", "upload_id": id, "priority": 4}),
                _ => json!({"upload_id": id}),
            };
            let (status, _, answer) = api.post(route, body.to_string()).await;
            assert_eq!(status, StatusCode::CREATED, "{route}: {answer}");
            let job_id = answer
                .get("job_id")
                .or(answer.get("id"))
                .unwrap()
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let job = api.store.get(job_id).await.unwrap().unwrap();
            let JobSpec::Image(p) = &job.spec else {
                panic!("{route}: not an image job")
            };
            let stored = p.stored.as_ref().expect("claim check");
            assert_eq!((p.image_count(), stored.visits), (10_000, 1_000), "{route}");
            assert_eq!(stored.key, format!("payloads/alice/{job_id}.json"));
            assert!(api.payloads.object(&stored.key).is_some());
            assert!(
                api.payloads.object(&key).is_none(),
                "{route}: the submission is deleted"
            );
            assert_eq!(
                api.payloads.len(),
                writes + 1,
                "{route}: one payload kept, the upload gone"
            );
            // Used once: the same upload_id again is a 404 naming it.
            let (status, _, answer) = api.post(route, body.to_string()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{route}: {answer}");
            assert!(error(&answer).starts_with("upload_id: no upload"), "{answer}");
        }
    }

    #[tokio::test]
    async fn bad_uploads_are_400s_or_404s_naming_the_field_and_create_nothing() {
        let api = api();
        for (body, field) in [
            (json!({"kind": "email", "size": 10}), "kind: "),
            (json!({"kind": "image", "size": 0}), "size: "),
            (json!({"kind": "image"}), "invalid JSON body"),
        ] {
            let (status, _, answer) = api.post("/jobs/uploads", body.to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert!(error(&answer).contains(field), "{body}: {answer}");
        }
        let (status, kind, answer) = api
            .post(
                "/jobs/uploads",
                json!({"kind": "image", "size": 25 * 1024 * 1024 + 1}).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        assert!(
            kind.starts_with("application/json") && error(&answer).starts_with("size: "),
            "{answer}"
        );

        // An id never put, a malformed one, and bob's upload used by alice.
        let bobs = shared::job::JobId::new();
        shared::payloads::Payloads::put_object(
            &*api.payloads,
            &format!("submissions/bob/{bobs}.json"),
            submission(1, 1, 0).to_string().into_bytes(),
        )
        .await
        .unwrap();
        for (id, status) in [
            (json!(shared::job::JobId::new().to_string()), StatusCode::NOT_FOUND),
            (json!(bobs.to_string()), StatusCode::NOT_FOUND),
            (json!("abc"), StatusCode::BAD_REQUEST),
            (json!(7), StatusCode::BAD_REQUEST),
        ] {
            for (route, body) in [
                ("/jobs", json!({"kind": "image", "upload_id": id})),
                ("/api/submit/", json!({"upload_id": id})),
            ] {
                let (got, _, answer) = api.post(route, body.to_string()).await;
                assert_eq!(got, status, "{route} {body}: {answer}");
                assert!(error(&answer).starts_with("upload_id: "), "{route} {body}: {answer}");
            }
        }

        // An upload whose content is wrong is refused exactly as the same payload inline.
        let (id, key) = upload(&api, 100).await;
        let mut wrong = submission(2, 1, 0);
        wrong["count"] = json!(3);
        shared::payloads::Payloads::put_object(&*api.payloads, &key, wrong.to_string().into_bytes())
            .await
            .unwrap();
        for (route, body, field) in [
            (
                "/jobs",
                json!({"kind": "image", "upload_id": id}),
                "payload.count: is 3 but visits has 2",
            ),
            ("/api/submit/", json!({"upload_id": id}), "count: is 3 but visits has 2"),
            (
                "/jobs",
                json!({"kind": "archive", "upload_id": id}),
                "upload_id: only image jobs",
            ),
            (
                "/jobs",
                json!({"kind": "image", "upload_id": id, "payload": {}}),
                "upload_id: send either",
            ),
            (
                "/api/submit/",
                json!({"upload_id": id, "count": 1}),
                "upload_id: send upload_id alone",
            ),
        ] {
            let (status, _, answer) = api.post(route, body.to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {body}: {answer}");
            assert!(error(&answer).starts_with(field), "{route} {body}: {answer}");
        }
        shared::payloads::Payloads::put_object(&*api.payloads, &key, b"{\"count\": ".to_vec())
            .await
            .unwrap();
        let (status, _, answer) = api
            .post("/jobs", json!({"kind": "image", "upload_id": id}).to_string())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            error(&answer).starts_with("upload_id: the uploaded object is not JSON"),
            "{answer}"
        );

        // Nothing was created; only the two uploads are there.
        assert!(api.store.all().is_empty());
        assert_eq!(api.payloads.len(), 2);
    }
}
