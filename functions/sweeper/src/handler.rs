//! Two kinds of events, one purpose (every accepted job ends):
//! - the EventBridge schedule (`rate(1 minute)` in template.yaml): one sweep of the jobs that stand
//!   still (`shared::sweep`), then, with what is left of 30 s, the jobs table's index keys kept those of the stack's shard
//!   counts (`DynamoJobStore::keep_keys_current`: one read when they are);
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
use shared::store::DynamoJobStore;
use shared::sweep::Sweeper;

/// How long a run may spend on the sweep and re-keying together before it stops re-keying (to go
/// on next minute): well inside the function's 60 s timeout.
const REKEY_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Handler {
    pub sweeper: Sweeper,
    /// The jobs table, kept keyed with the stack's shard counts after each sweep
    /// ([`DynamoJobStore::keep_keys_current`]); `None` with the in-memory store (no index keys).
    pub keys: Option<DynamoJobStore>,
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
        let started = std::time::Instant::now();
        let report = self.sweeper.sweep(clock::now()).await?;
        tracing::info!(?report, "sweep done");
        let Some(keys) = &self.keys else {
            return Ok(json!({ "sweep": report }));
        };
        // What is left of the minute (the schedule's period) re-keys job items, if any need it.
        // A failure here is logged and tried again next minute: the sweep's work is done.
        let budget = REKEY_BUDGET.saturating_sub(started.elapsed());
        if budget.is_zero() {
            return Ok(json!({ "sweep": report, "keys": { "skipped": "the sweep used the run's time" } }));
        }
        let keys = match keys.keep_keys_current(budget).await {
            Ok(rekeyed) => {
                if rekeyed.pass.scanned > 0 {
                    tracing::info!(?rekeyed, "re-keyed job items");
                }
                json!(rekeyed)
            }
            Err(e) => {
                tracing::error!(error = %e, "re-keying job items failed; next sweep tries again");
                json!({ "error": e.to_string() })
            }
        };
        Ok(json!({ "sweep": report, "keys": keys }))
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
