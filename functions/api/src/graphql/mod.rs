//! GraphQL at `POST /graphql` (and `GET /graphql` for queries), with the schema's SDL at
//! `GET /graphql/schema` (committed as `docs/schema.graphql`; a test keeps them equal).
//!
//! It is another door to the same service calls as the REST routes (`schema.rs`): the caller is
//! the gateway's verified identity, taken before GraphQL runs (no token: the same 401 as every
//! route), so an owner sees only their own jobs and another owner's job is NOT_FOUND.
//!
//! - **Limits**: the body as `POST /jobs` (6 MB, so `createJob` takes what REST takes), the
//!   query text [`MAX_QUERY_BYTES`] (big values go in `variables`), depth [`MAX_DEPTH`] and
//!   complexity [`MAX_COMPLEXITY`] (a list field counts its page size times its fields), at most
//!   [`MAX_DIRECTIVES`] directives on a field; an answer over 5 MB is refused (Lambda's 6 MB).
//!   Introspection is on. One operation per request (no batches).
//! - **Errors** carry `extensions.code`: `BAD_USER_INPUT` (with `field`), `NOT_FOUND`,
//!   `FORBIDDEN`, `CONFLICT` (an illegal transition), `LIMITED` (with `limit`, `retryAfter`),
//!   `INTERNAL` (ours; `retryable` when trying again may work), and for a request that is not run
//!   `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`, `QUERY_TOO_DEEP`, `QUERY_TOO_COMPLEX`,
//!   `RESPONSE_TOO_LARGE`. Root fields are nullable: one that fails is `null` with its error,
//!   the others are still answered.
//! - **HTTP status**: 200 when the operation ran (its errors, if any, in `errors`), 400 when it
//!   was refused before running (with `error` as every 4xx of the API has), 401/403/405/413 before
//!   GraphQL as the other routes, and 500/503 when any error is ours (`INTERNAL`).
//!
//! The axum glue is ours rather than `async-graphql-axum` (7.2.1 supports axum 0.8): that crate
//! turns on axum's `ws` feature for subscriptions, which are not served here (they belong on the
//! WebSocket API), and its extractor answers bad requests in plain text, not the API's JSON.

mod schema;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{EmptySubscription, Schema, Variables};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::Caller;

use crate::app::AppState;
use crate::auth::{Identified, WRITE_SCOPE, reads_only};
use crate::error::{ApiError, error_response};
use crate::jobs::query_pairs;
use crate::openapi::ErrorBody;
use crate::view::LIST_MAX_BYTES;

pub use schema::{Mutation, Query};

pub type JobsSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deepest selection (the standard introspection query is 13 levels deep).
pub const MAX_DEPTH: usize = 15;
/// Most complexity: every field 1, a page's fields times its size (`jobs(first: 200)` of 30
/// fields is 6,000).
pub const MAX_COMPLEXITY: usize = 10_000;
/// Most directives on one field.
pub const MAX_DIRECTIVES: usize = 8;
/// Longest query text; values of any size go in `variables`.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Largest body: what `POST /jobs` takes (an inline image payload in `variables`).
pub const MAX_BODY_BYTES: usize = crate::retail::MAX_SUBMISSION_BYTES;

/// The schema, built once per cold start.
pub fn schema() -> &'static JobsSchema {
    static SCHEMA: OnceLock<JobsSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::build(Query, Mutation, EmptySubscription)
            .limit_depth(MAX_DEPTH)
            .limit_complexity(MAX_COMPLEXITY)
            .limit_directives(MAX_DIRECTIVES)
            .finish()
    })
}

/// The schema in SDL, as `GET /graphql/schema` serves it.
pub fn sdl() -> String {
    schema().sdl()
}

/// A GraphQL request: `{query, operationName?, variables?, extensions?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphQlRequest {
    /// The operation(s), at most 16 KiB.
    pub query: String,
    /// Which operation of `query` to run, when it has several.
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    /// Accepted and ignored (no persisted queries).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Value>,
}

/// `POST /graphql`
#[utoipa::path(post, path = "/graphql", summary = "GraphQL: job, jobs, stats, entries, images; createJob, cancelJob, retryJob (SDL at /graphql/schema)", tag = "graphql",
    request_body = GraphQlRequest,
    responses(
        (status = 200, description = "The operation ran: `{data, errors?}`; each error has `extensions.code` (BAD_USER_INPUT with `field`, NOT_FOUND, FORBIDDEN, CONFLICT, LIMITED)", body = Object),
        (status = 400, description = "Not run: not a GraphQL request, a parse or validation error, over the depth or complexity limit, or an answer over 5 MB: `{error, errors}`", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A mutation with a read-only token", body = ErrorBody),
        (status = 413, description = "Body over 6 MB", body = ErrorBody),
        (status = 503, description = "Ours: `errors` with code INTERNAL (the data that could be read is in `data`)", body = Object)))]
pub async fn post(State(app): State<AppState>, Identified(caller): Identified, body: Body) -> Response {
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body: larger than {MAX_BODY_BYTES} bytes (6 MB, what one Lambda request carries)"),
            );
        }
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return error_response(
            StatusCode::BAD_REQUEST,
            "body: batched requests (a JSON array) are not served; send one operation per request",
        );
    }
    let request: GraphQlRequest = match crate::jobs::parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    run(&app, caller, request, false).await
}

/// `GET /graphql?query=..&operationName=..&variables=..`
#[utoipa::path(get, path = "/graphql", summary = "GraphQL queries (no mutations) in the query string", tag = "graphql",
    params(
        ("query" = String, Query, description = "The operation, at most 16 KiB"),
        ("operationName" = Option<String>, Query),
        ("variables" = Option<String>, Query, description = "JSON object")),
    responses(
        (status = 200, description = "As POST /graphql", body = Object),
        (status = 400, description = "As POST /graphql; also a bad `variables`", body = ErrorBody),
        (status = 405, description = "A mutation: use POST", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, Identified(caller): Identified, RawQuery(raw): RawQuery) -> Response {
    let mut request = GraphQlRequest {
        query: String::new(),
        operation_name: None,
        variables: None,
        extensions: None,
    };
    let mut has_query = false;
    for (k, v) in query_pairs(raw.as_deref().unwrap_or_default()) {
        match k.as_str() {
            "query" => {
                request.query = v;
                has_query = true;
            }
            "operationName" if !v.is_empty() => request.operation_name = Some(v),
            "variables" if !v.is_empty() => match serde_json::from_str(&v) {
                Ok(vars) => request.variables = Some(vars),
                Err(e) => return ApiError::invalid(format!("variables: not JSON: {e}")).into_response(),
            },
            _ => {}
        }
    }
    if !has_query {
        return ApiError::invalid("query: missing (GET /graphql?query=...)").into_response();
    }
    run(&app, caller, request, true).await
}

/// `GET /graphql/schema`: the SDL.
#[utoipa::path(get, path = "/graphql/schema", summary = "The GraphQL schema (SDL)", tag = "graphql",
    responses((status = 200, description = "The schema in GraphQL SDL", content_type = "text/plain", body = String)))]
pub async fn schema_sdl(Identified(_caller): Identified) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], sdl()).into_response()
}

/// Runs one request for `caller`: refuses what must not run, executes, maps the answer.
async fn run(app: &AppState, caller: Caller, request: GraphQlRequest, over_get: bool) -> Response {
    if request.query.len() > MAX_QUERY_BYTES {
        return ApiError::invalid(format!(
            "query: longer than {MAX_QUERY_BYTES} bytes; put values in variables"
        ))
        .into_response();
    }
    let variables = match request.variables {
        None | Some(Value::Null) => Variables::default(),
        Some(v @ Value::Object(_)) => Variables::from_json(v),
        Some(_) => return ApiError::invalid("variables: must be a JSON object").into_response(),
    };
    let mut gql = async_graphql::Request::new(request.query).variables(variables);
    if let Some(name) = &request.operation_name {
        gql = gql.operation_name(name);
    }
    let kind = match gql.parsed_query() {
        Ok(doc) => operation_type(&doc.operations, request.operation_name.as_deref()),
        Err(e) => {
            let errors = json!([{"message": e.message, "locations": e.locations, "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]);
            return refused(format!("query: {}", e.message), errors);
        }
    };
    if kind == Some(OperationType::Mutation) {
        if over_get {
            let mut r = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "a mutation over GET: send it with POST /graphql",
            );
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        if reads_only(&caller) {
            return ApiError(shared::Error::Forbidden(format!(
                "the token's scopes allow reading only; mutations need {WRITE_SCOPE}"
            )))
            .into_response();
        }
    }
    let response = schema().execute(gql.data(app.clone()).data(caller)).await;
    let answer = match serde_json::to_value(&response) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "graphql answer does not serialize");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the service could not complete the request; try again later",
            );
        }
    };
    answer_of(answer)
}

/// The operation a request runs: the only one, or the one named.
fn operation_type(ops: &DocumentOperations, name: Option<&str>) -> Option<OperationType> {
    match (ops, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(map), Some(name)) => {
            map.iter().find(|(n, _)| n.as_str() == name).map(|(_, op)| op.node.ty)
        }
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next().map(|op| op.node.ty),
        _ => None,
    }
}

/// A request not run: 400, `error` as every 4xx of the API, `errors` as GraphQL clients read.
fn refused(error: String, errors: Value) -> Response {
    let body =
        json!({"error": shared::limits::clip(&error, shared::limits::RESPONSE_ERROR), "errors": errors, "data": null});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Gives every error a code, and the answer its HTTP status (see the module's doc).
fn answer_of(mut answer: Value) -> Response {
    // Errors of a run have a `path`; a request refused before running has none, and no data.
    let ran = answer.get("data").is_some_and(|d| !d.is_null())
        || answer["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e.get("path").is_some_and(|p| !p.is_null())));
    let mut status = StatusCode::OK;
    if let Some(errors) = answer.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors.iter_mut() {
            classify(error, ran);
            let ext = &error["extensions"];
            if ext["code"] == "INTERNAL" {
                let ours = if ext["retryable"] == true {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                // The worse of the faults.
                if status != StatusCode::INTERNAL_SERVER_ERROR {
                    status = ours;
                }
            }
        }
        if !ran && status == StatusCode::OK {
            let first = errors
                .first()
                .and_then(|e| e["message"].as_str())
                .unwrap_or("the request was not run")
                .to_string();
            let errors = Value::Array(std::mem::take(errors));
            return refused(first, errors);
        }
    }
    let bytes = match serde_json::to_vec(&answer) {
        Ok(b) => b,
        Err(_) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be encoded"),
    };
    if bytes.len() > LIST_MAX_BYTES {
        let message = format!(
            "the answer would be {} bytes, over the {LIST_MAX_BYTES} one answer may carry (Lambda answers at most 6 MB): ask for fewer items or fields",
            bytes.len()
        );
        let errors = json!([{"message": message, "extensions": {"code": "RESPONSE_TOO_LARGE"}}]);
        return refused(message, errors);
    }
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The starts of async-graphql's messages about a value that does not fit its argument's type.
const INPUT_ERRORS: &[&str] = &[
    "Failed to parse ",
    "Expected input type ",
    "Invalid value for argument",
    "Variable ",
];

/// Sets `extensions.code` on an error that has none: those come from async-graphql itself.
/// Before running: the limits, or a validation error. While running: a value that does not fit
/// its argument's type is the client's; anything else unexplained is ours (never the client's).
fn classify(error: &mut Value, ran: bool) {
    if error["extensions"]["code"].is_string() {
        return;
    }
    let message = error["message"].as_str().unwrap_or_default().to_string();
    let (code, text) = match message.as_str() {
        "Query is nested too deep." => (
            "QUERY_TOO_DEEP",
            format!("the query is nested deeper than {MAX_DEPTH} levels; ask for less at once"),
        ),
        "Query is too complex." => (
            "QUERY_TOO_COMPLEX",
            format!(
                "the query is too complex (over {MAX_COMPLEXITY}: each field counts 1, a page's fields count once per item of `first`); ask for fewer items or fields"
            ),
        ),
        _ if !ran => ("GRAPHQL_VALIDATION_FAILED", message),
        // How async-graphql words an argument or variable that does not fit its type.
        m if INPUT_ERRORS.iter().any(|p| m.starts_with(p)) => ("BAD_USER_INPUT", message),
        _ => {
            tracing::error!(error = %message, "graphql error without a code");
            (
                "INTERNAL",
                "the service could not complete the request; try again later".to_string(),
            )
        }
    };
    error["message"] = Value::String(text);
    if !error["extensions"].is_object() {
        error["extensions"] = json!({});
    }
    error["extensions"]["code"] = Value::String(code.into());
}
