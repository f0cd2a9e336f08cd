//! Pausing and resuming a queue the AWS way (admins): the queue's event source mapping, found
//! with Lambda's `ListEventSourceMappings` by the queue's ARN and the function that consumes it
//! (template.yaml names it: `WORKER_FUNCTION_NAME`, `INGEST_FUNCTION_NAME`,
//! `SWEEPER_FUNCTION_NAME`), is disabled or enabled with `UpdateEventSourceMapping`. A paused
//! queue keeps its messages (and takes new ones); its function receives nothing until resumed.
//! Lambda is reached at `AWS_ENDPOINT_URL_LAMBDA` (or the generic endpoint) when one is set:
//! locally, the bridge.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::Json;
use axum::extract::{Extension, Path};
use serde::Serialize;

use crate::auth::Signed;
use crate::dashboard::Queues;
use crate::error::ApiError;
use crate::openapi::ErrorBody;

/// A mapping's `State` that means its function receives nothing (or will not, shortly).
pub fn is_paused(state: &str) -> bool {
    matches!(state, "Disabled" | "Disabling")
}

fn lambda_error<E>(op: &'static str, e: E) -> ApiError
where
    E: std::error::Error + aws_sdk_lambda::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    ApiError(shared::Error::aws(op, e))
}

/// `(function, queue ARN) -> State` of every mapping of the queues' consumer functions (one
/// `ListEventSourceMappings` per function); what Lambda does not answer is left out (logged).
pub async fn mapping_states(queues: &Queues) -> HashMap<(String, String), String> {
    let mut functions: Vec<(&aws_sdk_lambda::Client, &str)> = Vec::new();
    for name in queues.names() {
        if let Some(c) = queues.consumer(name)
            && !functions.iter().any(|(_, f)| *f == c.1)
        {
            functions.push(c);
        }
    }
    let lists = functions.into_iter().map(|(lambda, function)| async move {
        let mut out = Vec::new();
        let mut pages = lambda
            .list_event_source_mappings()
            .function_name(function)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            match item {
                Ok(m) => out.push((
                    (function.to_string(), m.event_source_arn.unwrap_or_default()),
                    m.state.unwrap_or_default(),
                )),
                Err(e) => {
                    let e = shared::Error::aws("ListEventSourceMappings", e);
                    tracing::warn!(function, error = %e, "event source mappings unavailable");
                    break;
                }
            }
        }
        out
    });
    futures::future::join_all(lists).await.into_iter().flatten().collect()
}

/// The answer of `POST /queues/{name}/pause` and `/resume`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuePaused {
    pub queue: String,
    /// The queue is paused now (its event source mapping disabled).
    pub paused: bool,
    /// The function whose mapping was changed.
    pub consumer: String,
    /// The mappings changed (normally one), as `UpdateEventSourceMapping` answered.
    pub mappings: Vec<MappingState>,
}

/// One event source mapping, as Lambda reports it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MappingState {
    /// Its `UUID`.
    pub uuid: String,
    /// `Enabling`, `Enabled`, `Disabling`, `Disabled`, ...
    pub state: String,
}

async fn set_paused(
    caller: &shared::auth::Caller,
    queues: Option<Extension<Queues>>,
    name: &str,
    paused: bool,
) -> Result<Json<QueuePaused>, ApiError> {
    caller.require_admin(if paused { "pausing a queue" } else { "resuming a queue" })?;
    let Some(Extension(queues)) = queues else {
        return Err(ApiError(shared::Error::NotFound(
            "name: no queues are configured here".into(),
        )));
    };
    let Some(url) = queues.url(name) else {
        return Err(ApiError(shared::Error::NotFound(format!(
            "name: {} is not a queue of this stack ({})",
            shared::limits::quote(name),
            queues.names().join(", ")
        ))));
    };
    let Some((lambda, function)) = queues.consumer(name) else {
        return Err(ApiError(shared::Error::Internal(format!(
            "queue {name}: its consumer function or Lambda is not configured here"
        ))));
    };
    let attrs = queues
        .clients()
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| ApiError(shared::Error::aws("GetQueueAttributes", e)))?;
    let arn = attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| ApiError(shared::Error::Internal(format!("queue {name} has no QueueArn"))))?;
    let listed = lambda
        .list_event_source_mappings()
        .event_source_arn(&arn)
        .function_name(function)
        .send()
        .await
        .map_err(|e| lambda_error("ListEventSourceMappings", e))?;
    let found = listed.event_source_mappings.unwrap_or_default();
    if found.is_empty() {
        return Err(ApiError(shared::Error::Internal(format!(
            "queue {name}: no event source mapping of {function} reads it"
        ))));
    }
    let mut mappings = Vec::new();
    for m in found {
        let uuid = m.uuid.unwrap_or_default();
        let out = lambda
            .update_event_source_mapping()
            .uuid(&uuid)
            .enabled(!paused)
            .send()
            .await
            .map_err(|e| lambda_error("UpdateEventSourceMapping", e))?;
        tracing::info!(queue = name, %uuid, paused, state = ?out.state, "event source mapping updated");
        mappings.push(MappingState {
            uuid,
            state: out.state.unwrap_or_default(),
        });
    }
    Ok(Json(QueuePaused {
        queue: name.to_string(),
        paused,
        consumer: function.to_string(),
        mappings,
    }))
}

/// `POST /queues/{name}/pause`: its function stops receiving from it (the event source mapping disabled).
#[utoipa::path(post, path = "/queues/{name}/pause", summary = "Pause a queue: disable its event source mapping; messages wait in it (admins)", tag = "jobs",
    params(("name" = String, Path, description = "high, normal, ingest_continue, high_dead_letter, normal_dead_letter or ingest_dead_letter")),
    responses(
        (status = 200, description = "Paused (the mapping disabled)", body = QueuePaused),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Not a queue of this stack (names `name`)", body = ErrorBody),
        (status = 503, description = "Lambda or SQS refused or is unavailable", body = ErrorBody)))]
pub async fn pause(
    Signed(caller): Signed,
    queues: Option<Extension<Queues>>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    set_paused(&caller, queues, &name, true).await
}

/// `POST /queues/{name}/resume`: its function receives from it again.
#[utoipa::path(post, path = "/queues/{name}/resume", summary = "Resume a paused queue: enable its event source mapping again (admins)", tag = "jobs",
    params(("name" = String, Path, description = "high, normal, ingest_continue, high_dead_letter, normal_dead_letter or ingest_dead_letter")),
    responses(
        (status = 200, description = "Running again (the mapping enabled)", body = QueuePaused),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Not a queue of this stack (names `name`)", body = ErrorBody),
        (status = 503, description = "Lambda or SQS refused or is unavailable", body = ErrorBody)))]
pub async fn resume(
    Signed(caller): Signed,
    queues: Option<Extension<Queues>>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    set_paused(&caller, queues, &name, false).await
}
