//! The router: every route of the API, and JSON 404/405s. CORS is the gateway's (the template's
//! `CorsConfiguration`, enforced locally by the bridge), so the function adds no CORS headers.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use shared::service::Jobs;

use crate::auth::{AuthConfig, Signed};
use crate::error::error_response;
use crate::{dashboard, docs, files, jobs, retail, seeds};

/// What handlers share; built once per cold start.
#[derive(Clone)]
pub struct AppState {
    pub jobs: Jobs,
    pub files: crate::files::Files,
    /// Per-part results of image jobs.
    pub parts: std::sync::Arc<dyn shared::store::PartStore>,
    /// Sign-in: on or off, and where the dashboard signs in.
    pub auth: AuthConfig,
}

/// Routes that need no token (with the dashboard's and `/docs`' `PAGES`); the template lists the
/// same ones with `Authorizer: NONE`.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/auth/config")];

/// Every route the router serves (method, path). `openapi.json` must describe exactly these.
/// The dashboard's page and assets (`crate::dashboard::PAGES`) are not part of the API.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/auth/config"),
    ("GET", "/me"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("POST", "/jobs/retry"),
    ("GET", "/jobs/{id}"),
    ("DELETE", "/jobs/{id}"),
    ("PUT", "/jobs/{id}/status"),
    ("POST", "/jobs/{id}/retry"),
    ("GET", "/jobs/{id}/images"),
    ("GET", "/stats"),
    ("GET", "/queues"),
    ("POST", "/api/v1/files/upload"),
    ("POST", "/api/v1/files"),
    ("GET", "/api/v1/jobs/{job_id}"),
    ("GET", "/api/v1/jobs/{job_id}/entries"),
    ("POST", "/api/submit/"),
    ("POST", "/api/submit"),
    ("GET", "/api/status"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
];

pub fn router(state: AppState) -> Router {
    let openapi = std::sync::Arc::new(crate::openapi::document().to_string());
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/auth/config",
            get(|axum::extract::State(app): axum::extract::State<AppState>| async move {
                axum::Json(app.auth.public())
            }),
        )
        .route(
            "/me",
            get(|Signed(caller): Signed| async move {
                axum::Json(serde_json::json!({
                    "owner": caller.owner,
                    "name": caller.name,
                    "admin": caller.admin,
                    "scopes": caller.scopes,
                }))
            }),
        )
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    (*openapi).clone(),
                )
            }),
        )
        .route("/jobs", retail::submission_limit(post(jobs::create)).get(jobs::list))
        .route("/jobs/retry", post(jobs::bulk_retry))
        .route("/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/jobs/{id}/status", put(jobs::set_status))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/images", get(retail::images))
        .route("/stats", get(jobs::stats))
        .route("/queues", get(dashboard::queues))
        .merge(dashboard::routes())
        .merge(docs::routes())
        .route(
            "/api/v1/files/upload",
            post(files::upload).layer(DefaultBodyLimit::max(state.files.max_upload_bytes + 64 * 1024)),
        )
        .route("/api/v1/files", post(files::presign))
        .route("/api/v1/jobs/{job_id}", get(files::status))
        .route("/api/v1/jobs/{job_id}/entries", get(files::entries))
        .route("/api/submit/", retail::submission_limit(post(retail::submit)))
        .route("/api/submit", retail::submission_limit(post(retail::submit)))
        .route("/api/status", get(retail::status))
        .route("/api/jobs", post(seeds::create))
        .route("/api/jobs/{id}", get(seeds::get))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
        })
        .with_state(state)
}
