//! Dead-letter queues run the AWS way (admins): a DLQ's messages listed with their job (a peek:
//! `ReceiveMessage` with a visibility timeout of 0, at most 50 distinct messages, so nothing is
//! hidden from anyone), redriven one by one (received, sent to the queue it came from, deleted)
//! or all at once with SQS's own `StartMessageMoveTask` (no destination: each message goes back
//! to the queue it came from; LocalStack 4.13.1 serves it too, checked by the browser test).

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::job::JobId;
use shared::queue::JobMessage;

use crate::app::AppState;
use crate::auth::Signed;
use crate::dashboard::Queues;
use crate::error::ApiError;
use crate::jobs::{number_param, parse_json};
use crate::openapi::ErrorBody;
use crate::view::JobSummary;

/// Messages one peek lists at most.
pub const PEEK_MAX: usize = 50;
/// Receive rounds one redrive of a single message makes at most looking for it (10 each).
const FIND_ROUNDS: usize = 10;

/// One dead letter, with its job when the body names one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub message_id: String,
    /// The job the message is about (`null`: a body that is not a job message, e.g. an ingest
    /// continuation).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub job_id: Option<JobId>,
    /// An image job's part, when the message is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// Times SQS delivered it (peeks count too).
    pub receives: u32,
    /// When it was first sent (ms since the epoch).
    pub sent_at_ms: Option<i64>,
    /// The queue it came from, when SQS says (`DeadLetterQueueSourceArn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The job's summary, if the caller may see it and it still exists.
    pub job: Option<JobSummary>,
}

/// The answer of `GET /queues/{name}/messages`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    pub queue: String,
    /// The queue its messages are redriven to (by a single redrive).
    pub redrives_to: String,
    pub messages: Vec<DeadLetter>,
}

/// The body of `POST /queues/{name}/redrive`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// One message to send back; without it, every message (`StartMessageMoveTask`).
    #[serde(default)]
    pub message_id: Option<String>,
}

/// The answer of `POST /queues/{name}/redrive`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    /// `receive-send-delete` (one message) or `StartMessageMoveTask` (all).
    pub method: &'static str,
    /// One message: 1. All: the messages SQS counted to move when the task started (approximate).
    pub moved: Option<i64>,
    /// All: the move task's handle (SQS's `TaskHandle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_handle: Option<String>,
}

fn dead_letter_queue<'a>(queues: &'a Queues, name: &str) -> Result<(&'a str, &'a str, &'a str), ApiError> {
    let source = match name {
        "high_dead_letter" => "high",
        "normal_dead_letter" => "normal",
        "ingest_dead_letter" => "ingest_continue",
        _ => {
            return Err(ApiError(shared::Error::NotFound(format!(
                "queue {} is not a dead-letter queue of this stack (high_dead_letter, normal_dead_letter, ingest_dead_letter)",
                shared::limits::quote(name)
            ))));
        }
    };
    let dlq = queues
        .url(name)
        .ok_or_else(|| ApiError(shared::Error::NotFound(format!("queue {name} is not configured here"))))?;
    let src = queues.url(source).ok_or_else(|| {
        ApiError(shared::Error::NotFound(format!(
            "queue {source} is not configured here"
        )))
    })?;
    Ok((dlq, source, src))
}

fn sqs_error<E>(op: &'static str, e: E) -> ApiError
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    ApiError(shared::Error::aws(op, e))
}

/// `GET /queues/{name}/messages?max=`: a peek at a dead-letter queue's messages, with their jobs.
#[utoipa::path(get, path = "/queues/{name}/messages", summary = "Peek at a dead-letter queue's messages, with their jobs (admins)", tag = "jobs",
    params(("name" = String, Path, description = "high_dead_letter, normal_dead_letter or ingest_dead_letter"),
        ("max" = Option<usize>, Query, description = "Messages to list, 1-50 (default 20)")),
    responses(
        (status = 200, description = "Up to max messages (a peek: visibility 0, nothing hidden)", body = DeadLetters),
        (status = 400, description = "Bad max", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Not a dead-letter queue of this stack", body = ErrorBody)))]
pub async fn messages(
    State(app): State<AppState>,
    Signed(caller): Signed,
    queues: Option<Extension<Queues>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_admin("reading dead letters")?;
    let max = number_param(query.as_deref(), "max", 20, PEEK_MAX)?;
    let Some(Extension(queues)) = queues else {
        return Err(ApiError(shared::Error::NotFound(
            "no queues are configured here".into(),
        )));
    };
    let (dlq, source, _) = dead_letter_queue(&queues, &name)?;
    let sqs = &queues.clients().sqs;
    let mut seen: HashMap<String, DeadLetter> = HashMap::new();
    let mut order = Vec::new();
    // A few rounds: SQS answers a sample of the queue's messages each time.
    for _ in 0..3 {
        if seen.len() >= max {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let Some(id) = m.message_id.clone() else { continue };
            if seen.contains_key(&id) || seen.len() >= max {
                continue;
            }
            let attr = |n: MessageSystemAttributeName| m.attributes.as_ref().and_then(|a| a.get(&n)).cloned();
            let body: Option<JobMessage> = m.body.as_deref().and_then(|b| serde_json::from_str(b).ok());
            order.push(id.clone());
            seen.insert(
                id.clone(),
                DeadLetter {
                    message_id: id,
                    job_id: body.as_ref().map(|b| b.job_id),
                    part: body.as_ref().and_then(|b| b.part),
                    receives: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    sent_at_ms: attr(MessageSystemAttributeName::SentTimestamp).and_then(|v| v.parse().ok()),
                    source: attr(MessageSystemAttributeName::DeadLetterQueueSourceArn),
                    job: None,
                },
            );
        }
    }
    let mut messages: Vec<DeadLetter> = order.into_iter().filter_map(|id| seen.remove(&id)).collect();
    for m in &mut messages {
        if let Some(id) = m.job_id {
            m.job = app.jobs.get(&caller, id).await.ok().map(|j| JobSummary::of(&j));
        }
    }
    Ok(Json(DeadLetters {
        queue: name.clone(),
        redrives_to: source.to_string(),
        messages,
    })
    .into_response())
}

/// `POST /queues/{name}/redrive` `{"message_id"?}`: one dead letter back to its queue, or all.
#[utoipa::path(post, path = "/queues/{name}/redrive", summary = "Redrive one dead letter (receive, send, delete) or all (StartMessageMoveTask) (admins)", tag = "jobs",
    params(("name" = String, Path, description = "high_dead_letter, normal_dead_letter or ingest_dead_letter")),
    request_body = Redrive,
    responses(
        (status = 200, description = "Moved (one), or the move task started (all)", body = Redriven),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Not a dead-letter queue of this stack, or no such message in it now", body = ErrorBody),
        (status = 503, description = "SQS refused or is unavailable", body = ErrorBody)))]
pub async fn redrive(
    Signed(caller): Signed,
    queues: Option<Extension<Queues>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin("redriving dead letters")?;
    let ask: Redrive = if body.is_empty() {
        Redrive { message_id: None }
    } else {
        parse_json(&body)?
    };
    let Some(Extension(queues)) = queues else {
        return Err(ApiError(shared::Error::NotFound(
            "no queues are configured here".into(),
        )));
    };
    let (dlq, source, source_url) = dead_letter_queue(&queues, &name)?;
    let sqs = &queues.clients().sqs;
    let Some(wanted) = ask.message_id else {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", e))?;
        let get = |n: QueueAttributeName| attrs.attributes.as_ref().and_then(|a| a.get(&n)).cloned();
        let arn = get(QueueAttributeName::QueueArn)
            .ok_or_else(|| ApiError(shared::Error::Internal(format!("queue {name} has no QueueArn"))))?;
        // high and normal have one source each: named. The ingest's dead letters come from two
        // queues: none named, so SQS sends each back where it came from.
        let destination = if source == "ingest_continue" {
            None
        } else {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(source_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| sqs_error("GetQueueAttributes", e))?;
            attrs
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        };
        let out = sqs
            .start_message_move_task()
            .source_arn(arn)
            .set_destination_arn(destination)
            .send()
            .await
            .map_err(|e| sqs_error("StartMessageMoveTask", e))?;
        return Ok(Json(Redriven {
            method: "StartMessageMoveTask",
            moved: get(QueueAttributeName::ApproximateNumberOfMessages).and_then(|v| v.parse().ok()),
            task_handle: out.task_handle,
        })
        .into_response());
    };
    if wanted.is_empty() || wanted.len() > 128 {
        return Err(ApiError::invalid("message_id: must be 1-128 characters"));
    }
    // Look for it, a batch at a time; others seen on the way are made visible again at once.
    for _ in 0..FIND_ROUNDS {
        let out = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        let mut found = None;
        for m in batch {
            if m.message_id.as_deref() == Some(wanted.as_str()) {
                found = Some(m);
            } else if let Some(handle) = m.receipt_handle.as_deref() {
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(dlq)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
        if let Some(m) = found {
            sqs.send_message()
                .queue_url(source_url)
                .message_body(m.body.clone().unwrap_or_default())
                .set_message_attributes(m.message_attributes.clone())
                .send()
                .await
                .map_err(|e| sqs_error("SendMessage", e))?;
            sqs.delete_message()
                .queue_url(dlq)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .map_err(|e| sqs_error("DeleteMessage", e))?;
            return Ok(Json(Redriven {
                method: "receive-send-delete",
                moved: Some(1),
                task_handle: None,
            })
            .into_response());
        }
    }
    Err(ApiError(shared::Error::NotFound(format!(
        "message_id: {wanted} is not in {name} now (redriven or expired already)"
    ))))
}
