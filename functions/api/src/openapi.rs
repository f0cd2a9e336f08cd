//! `GET /openapi.json`: the OpenAPI document, generated. Its paths come from the handlers'
//! `#[utoipa::path]` annotations as `app::router` registers them (`OpenApiRouter` + `routes!`),
//! its schemas from the types' `ToSchema` derives (`shared`'s `openapi` feature). This file only
//! holds what belongs to no handler: the info, the bearer scheme, the tags and the error body.
//! A test checks the paths against [`crate::app::ROUTES`] and the router.

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every 4xx and 5xx answer: `{"error": "..."}`, naming the field a client got wrong. (A 429
/// adds `limit` and `retry_after`.)
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "serverless-jobs",
        description = "Jobs API: submit, list, inspect and steer jobs processed by the worker and ingest functions."
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    // JobUpdate: the message of the WebSocket API (README "Live updates"), served by no HTTP route.
    components(schemas(ErrorBody, shared::live::JobUpdate, shared::live::Counts)),
    tags(
        (name = "jobs", description = "Submit, list, inspect and steer jobs"),
        (name = "files", description = "Event Horizon's log files: upload, ingest status, stored entries"),
        (name = "retail", description = "Retail Pulse's image jobs (the seed's contract) and per-image results"),
        (name = "seeds", description = "Seed 002's camelCase job routes"),
        (name = "graphql", description = "GraphQL over the same jobs, with the same rules (POST /graphql; the SDL at /graphql/schema)"),
        (name = "service", description = "Health, sign-in, this document")
    )
)]
pub struct ApiDoc;

/// The `bearer` scheme every operation needs unless it says `security(())`.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token of the stack's issuer (Cognito; locally infra/token). Without one: 401. \
                         Another owner's job: 404. Admins (group admin) see all. Over a per-owner limit: 429 with \
                         Retry-After.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served, rendered once when the router is built.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

/// `GET /openapi.json`
#[utoipa::path(get, path = "/openapi.json", summary = "This document", tag = "service", security(()),
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], (*doc.0).clone())
}
