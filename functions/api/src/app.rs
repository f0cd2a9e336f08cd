//! The router: every route of the API, and JSON 404/405s. CORS is the gateway's (the template's
//! `CorsConfiguration`, enforced locally by the bridge), so the function adds no CORS headers.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::{Extension, Router};
use shared::service::Jobs;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::{AuthConfig, Signed};
use crate::error::error_response;
use crate::openapi::{ApiDoc, Document, ErrorBody};
use crate::{dashboard, docs, files, graphql, jobs, retail, seeds};

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

/// Every route the router serves (method, path); `openapi.json`, generated from the router, names
/// exactly these (tested).
/// The dashboard's page and assets (`crate::dashboard::PAGES`) are not part of the API.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/auth/config"),
    ("GET", "/me"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("POST", "/jobs/retry"),
    ("POST", "/jobs/cancel"),
    ("GET", "/jobs/failures"),
    ("GET", "/jobs/stuck"),
    ("POST", "/jobs/uploads"),
    ("GET", "/jobs/{id}"),
    ("DELETE", "/jobs/{id}"),
    ("PUT", "/jobs/{id}/status"),
    ("POST", "/jobs/{id}/retry"),
    ("POST", "/jobs/{id}/run"),
    ("POST", "/jobs/{id}/stop"),
    ("GET", "/queues/{name}/messages"),
    ("POST", "/queues/{name}/redrive"),
    ("POST", "/queues/{name}/pause"),
    ("POST", "/queues/{name}/resume"),
    ("GET", "/jobs/{id}/images"),
    ("GET", "/stats"),
    ("GET", "/queues"),
    ("GET", "/metrics"),
    ("GET", "/alarms"),
    ("POST", "/api/v1/files/upload"),
    ("POST", "/api/v1/files"),
    ("GET", "/uploads"),
    ("GET", "/api/v1/jobs/{job_id}"),
    ("GET", "/api/v1/jobs/{job_id}/entries"),
    ("POST", "/api/submit/"),
    ("POST", "/api/submit"),
    ("GET", "/api/status"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("POST", "/graphql"),
    ("GET", "/graphql"),
    ("GET", "/graphql/schema"),
];

/// `GET /health`
#[utoipa::path(get, path = "/health", summary = "Liveness", tag = "service", security(()),
    responses((status = 200, description = "The function answers", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The answer of `GET /health`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
}

/// `GET /auth/config`
#[utoipa::path(get, path = "/auth/config", summary = "How to sign in: the issuer, the dashboard's client id and the OAuth2 endpoints", tag = "service", security(()),
    responses((status = 200, description = "How to sign in", body = crate::auth::SignIn)))]
pub async fn auth_config(State(app): State<AppState>) -> axum::Json<crate::auth::SignIn> {
    axum::Json(app.auth.public())
}

/// `GET /me`
#[utoipa::path(get, path = "/me", summary = "Who the token names", tag = "service",
    responses(
        (status = 200, description = "Who the token names", body = Me),
        (status = 401, description = "No valid token", body = ErrorBody)))]
pub async fn me(Signed(caller): Signed) -> axum::Json<Me> {
    axum::Json(Me {
        owner: caller.owner,
        name: caller.name,
        admin: caller.admin,
        scopes: caller.scopes,
    })
}

/// The answer of `GET /me`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The token's owner id (its `sub`): whose jobs these are.
    pub owner: shared::auth::Owner,
    /// What to show as "signed in as".
    pub name: String,
    /// In the admin group: sees and steers everyone's jobs.
    pub admin: bool,
    /// OAuth scopes of a machine client's token; empty for none.
    pub scopes: Vec<String>,
}

/// `route` (one that creates jobs) with [`retail::submission_limit`]'s body limit and JSON 413.
fn submission_limit(route: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method) = route;
    (schemas, paths, retail::submission_limit(method))
}

/// The router and the document describing it: every API route is registered through
/// `routes!`, so the document's paths are the router's own.
pub fn router_and_document(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let upload_limit = DefaultBodyLimit::max(state.files.max_upload_bytes + 64 * 1024);
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(crate::openapi::document))
        .routes(routes!(auth_config))
        .routes(routes!(me))
        .routes(submission_limit(routes!(jobs::create, jobs::list)))
        .routes(routes!(jobs::bulk_retry))
        .routes(routes!(jobs::bulk_cancel))
        .routes(routes!(jobs::failures))
        .routes(routes!(jobs::stuck))
        .routes(routes!(crate::submissions::create))
        .routes(routes!(jobs::get, jobs::cancel))
        .routes(routes!(jobs::set_status))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::run_now))
        .routes(routes!(jobs::stop))
        .routes(routes!(retail::images))
        .routes(routes!(jobs::stats))
        .routes(routes!(dashboard::queues))
        .routes(routes!(crate::dead_letters::messages))
        .routes(routes!(crate::dead_letters::redrive))
        .routes(routes!(crate::queue_control::pause))
        .routes(routes!(crate::queue_control::resume))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(crate::metrics::alarms))
        .routes(routes!(files::upload).layer(upload_limit))
        .routes(routes!(files::presign))
        .routes(routes!(files::uploads))
        .routes(routes!(files::status))
        .routes(routes!(files::entries))
        .routes(submission_limit(routes!(retail::submit_slash)))
        .routes(submission_limit(routes!(retail::submit)))
        .routes(routes!(retail::status))
        .routes(routes!(seeds::create))
        .routes(routes!(seeds::get))
        .routes(routes!(graphql::post, graphql::get))
        .routes(routes!(graphql::schema_sdl))
        .split_for_parts();
    let rendered = Document(Arc::new(doc.to_json().expect("the OpenAPI document serializes")));
    let router = api
        .merge(dashboard::routes())
        .merge(docs::routes())
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
        })
        .layer(Extension(rendered))
        .layer(axum::middleware::from_fn(crate::request_trace::in_trace))
        .with_state(state);
    (router, doc)
}

pub fn router(state: AppState) -> Router {
    router_and_document(state).0
}
