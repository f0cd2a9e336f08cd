//! Two kinds of events, one purpose (every accepted job ends):
//! - the EventBridge schedule (`rate(1 minute)` in template.yaml): one sweep of the jobs that stand
//!   still (`shared::sweep`);
//! - messages on the dead-letter queues: the job whose message it was fails, with the reason
//!   ("part 3 was dead-lettered after 3 deliveries; last error: ..."). Its retry (the dashboard's
//!   Retry, `POST /jobs/{id}/retry`) is the redrive: a fresh message, a fresh set of attempts.
//!
//! A dead-letter record is acknowledged once its job's end is durably written (or there is
//! nothing to end); a failed write leaves it on the queue for the next delivery.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::clock;
use shared::job::{JobId, LogIngestPayload};
use shared::sweep::Sweeper;

pub struct Handler {
    pub sweeper: Sweeper,
    /// The source queues' `maxReceiveCount`: how often a dead-lettered message was delivered.
    pub max_receives: u32,
}

/// The parts of a dead-lettered body that name its job: a worker message (`job_id`, `part`,
/// `run`), an ingest checkpoint or start (`job_id`), or Lambda's on-failure record around an S3
/// event (`requestPayload`).
#[derive(Debug, Default, Deserialize)]
struct DeadLetter {
    job_id: Option<JobId>,
    part: Option<u32>,
    run: Option<String>,
    #[serde(rename = "requestPayload")]
    request_payload: Option<Value>,
}

impl Handler {
    pub async fn handle(&self, event: Value) -> Result<Value, lambda_runtime::Error> {
        if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:sqs") {
            let event: SqsEvent = serde_json::from_value(event)?;
            let response = shared::sqs_batch::process(event, 4, |record| self.dead_letter(record)).await?;
            return Ok(serde_json::to_value(response)?);
        }
        // The schedule (an EventBridge "Scheduled Event"), or a hand-made invocation.
        let report = self.sweeper.sweep(clock::now()).await?;
        tracing::info!(?report, "sweep done");
        Ok(json!({ "sweep": report }))
    }

    async fn dead_letter(&self, record: SqsMessage) -> shared::Result<()> {
        let body = record.body.as_deref().unwrap_or_default();
        // A body that is not one of ours names no job: it is logged (with why) and acknowledged below.
        let (letter, unreadable) = match serde_json::from_str::<DeadLetter>(body) {
            Ok(letter) => (letter, None),
            Err(e) => (DeadLetter::default(), Some(e)),
        };
        let (id, what) = match (&letter.job_id, &letter.request_payload) {
            (Some(id), _) => (
                *id,
                letter
                    .part
                    .map_or("its message".to_string(), |p| format!("part {}", p + 1)),
            ),
            (None, Some(payload)) => match uploaded_job(payload) {
                Some(id) => (id, "its S3 event".to_string()),
                None => {
                    tracing::error!(body = %shared::limits::clip(body, 500), "an S3 event for a dropped file was dead-lettered: the file was not ingested; drop it again");
                    return Ok(());
                }
            },
            (None, None) => {
                tracing::error!(message_id = ?record.message_id, error = ?unreadable, body = %shared::limits::clip(body, 500), "unreadable dead-lettered message; dropped");
                return Ok(());
            }
        };
        self.sweeper
            .dead_letter(id, &what, letter.run.as_deref(), self.max_receives)
            .await
            .map(|_| ())
    }
}

/// The job of an S3 event for an upload made through the API (`uploads/<job_id>/<file>`).
fn uploaded_job(payload: &Value) -> Option<JobId> {
    LogIngestPayload::uploaded_job(payload.pointer("/Records/0/s3/object/key")?.as_str()?)
}

#[cfg(test)]
mod tests;
