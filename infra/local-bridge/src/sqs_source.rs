//! An SQS event source mapping, as Lambda runs one: long-poll the queue, hand the batch to the
//! function, then delete what succeeded.
//!
//! - With `ReportBatchItemFailures`, only the records named in `batchItemFailures` stay on the
//!   queue; a response naming an unknown or empty id fails the whole batch, as on AWS.
//! - A function error, a timeout or a dead function process leaves the whole batch; it reappears
//!   after the visibility timeout.
//! - Redrive: a message received more than `maxReceiveCount` times is moved to the dead-letter
//!   queue instead of being delivered (done here so it does not depend on the emulator doing it).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, MessageSystemAttributeNameForSends,
    MessageSystemAttributeValue,
};
use serde_json::Value;

use crate::invoke::{InvokeError, Invoker};

/// When the function could not be reached at all, its batch is visible again after this long.
const RELEASE_AFTER_SECS: i32 = 5;
use crate::provision::{REGION, SqsSource};

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub delivered: usize,
    pub deleted: usize,
    pub left_for_retry: usize,
    pub moved_to_dead_letter_queue: usize,
}

/// One event source mapping.
#[derive(Clone)]
pub struct SqsPoller {
    pub sqs: Client,
    pub source: SqsSource,
    pub invoker: Arc<dyn Invoker>,
    /// Long-poll wait (20 s like Lambda; tests use 1 s).
    pub wait_secs: i32,
}

impl SqsPoller {
    /// Polls until `shutdown` flips to true. A receive in flight is never abandoned: a long poll
    /// cut off on our side stays open at the queue, which may still hand it messages that nobody
    /// will see until their visibility timeout (minutes). So shutdown waits for the receive (at
    /// most `wait_secs`) and makes what it got visible again at once.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.run_while_enabled(shutdown, None).await
    }

    /// [`Self::run`], following the mapping's `Enabled` flag ([`crate::event_source_mappings`];
    /// `None`: always enabled): while it is off nothing is received, and what a long poll in
    /// flight got when it turned off is made visible again at once.
    pub async fn run_while_enabled(
        self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        mut enabled: Option<tokio::sync::watch::Receiver<bool>>,
    ) {
        tracing::info!(queue = %self.source.queue_url, function = %self.source.function, "SQS event source started");
        while !*shutdown.borrow() {
            // A disabled mapping receives nothing: its messages wait in the queue.
            if let Some(flag) = enabled.as_mut()
                && !*flag.borrow()
            {
                tracing::info!(queue = %self.source.queue_url, function = %self.source.function, "event source mapping disabled: not polling");
                tokio::select! {
                    _ = shutdown.changed() => break,
                    r = flag.wait_for(|on| *on) => if r.is_err() { break },
                }
                tracing::info!(queue = %self.source.queue_url, function = %self.source.function, "event source mapping enabled: polling again");
                continue;
            }
            let received = self.receive().await;
            let disabled_since = enabled.as_ref().is_some_and(|f| !*f.borrow());
            if *shutdown.borrow() || disabled_since {
                // Disabled (or stopping) during the long poll: what it got goes back at once.
                if let Ok(messages) = &received {
                    self.release(messages, 0).await;
                }
                if disabled_since {
                    continue;
                }
                break;
            }
            let outcome = match received {
                Ok(messages) => tokio::select! {
                    _ = shutdown.changed() => break,
                    outcome = self.deliver(messages) => outcome,
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(o) if o.received > 0 => tracing::info!(function = %self.source.function, ?o, "batch done"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(queue = %self.source.queue_url, error = %e, "poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Receives one batch and delivers it.
    pub async fn poll_once(&self) -> anyhow::Result<PollOutcome> {
        let messages = self.receive().await?;
        self.deliver(messages).await
    }

    /// One long poll of the queue.
    async fn receive(&self) -> anyhow::Result<Vec<Message>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.source.queue_url)
            .max_number_of_messages(self.source.batch_size.clamp(1, 10) as i32)
            .wait_time_seconds(self.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Delivers received messages to the function (those past `maxReceiveCount` to the
    /// dead-letter queue), deleting what it reports done.
    async fn deliver(&self, messages: Vec<Message>) -> anyhow::Result<PollOutcome> {
        let mut outcome = PollOutcome {
            received: messages.len(),
            ..Default::default()
        };
        let mut batch = Vec::new();
        for m in messages {
            if self.exhausted(&m) {
                self.redrive(&m).await?;
                outcome.moved_to_dead_letter_queue += 1;
            } else {
                batch.push(m);
            }
        }
        if batch.is_empty() {
            return Ok(outcome);
        }
        outcome.delivered = batch.len();
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|m| record(m, &self.source.queue_arn)).collect();
        let event = serde_json::to_value(&event).expect("an SQS event serializes");
        let succeeded: Vec<&Message> = match self.invoker.invoke(&self.source.function, &event).await {
            Ok(response) => match self.failed_ids(&response, &batch) {
                Some(failed) => batch
                    .iter()
                    .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
                    .collect(),
                None => Vec::new(),
            },
            Err(e @ (InvokeError::Function { .. } | InvokeError::Timeout { .. })) => {
                tracing::warn!(function = %self.source.function, error = %e, "function failed; the batch stays on the queue");
                Vec::new()
            }
            Err(e @ InvokeError::Transport(_)) => {
                // The function was never reached (its runtime restarting): the batch comes back
                // in a few seconds, not after the whole visibility timeout.
                self.release(&batch, RELEASE_AFTER_SECS).await;
                return Err(e.into());
            }
        };
        outcome.deleted = succeeded.len();
        outcome.left_for_retry = batch.len() - succeeded.len();
        self.delete(&succeeded).await?;
        Ok(outcome)
    }

    /// Makes `batch` visible again after `secs` (best effort: if this fails, the visibility
    /// timeout brings it back).
    async fn release(&self, batch: &[Message], secs: i32) {
        for m in batch {
            let released = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.source.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(secs)
                .send()
                .await;
            if let Err(e) = released {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not release a message; it returns after the visibility timeout");
            }
        }
    }

    /// The ids the function reported as failed; `None` if the whole batch counts as failed.
    fn failed_ids(&self, response: &Value, batch: &[Message]) -> Option<HashSet<String>> {
        if !self.source.report_batch_item_failures {
            return Some(HashSet::new());
        }
        let failures = match response.get("batchItemFailures") {
            None | Some(Value::Null) => return Some(HashSet::new()),
            Some(Value::Array(f)) => f,
            Some(_) => return None,
        };
        let known: HashSet<&str> = batch.iter().filter_map(|m| m.message_id()).collect();
        let mut failed = HashSet::new();
        for f in failures {
            match f.get("itemIdentifier").and_then(Value::as_str) {
                Some(id) if known.contains(id) => {
                    failed.insert(id.to_string());
                }
                other => {
                    tracing::warn!(function = %self.source.function, item = ?other, "invalid batchItemFailures entry; the whole batch fails");
                    return None;
                }
            }
        }
        Some(failed)
    }

    fn exhausted(&self, m: &Message) -> bool {
        let count: u32 = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        matches!((self.source.max_receive_count, &self.source.dead_letter_queue_url), (Some(max), Some(_)) if count > max)
    }

    async fn redrive(&self, m: &Message) -> anyhow::Result<()> {
        let dlq = self
            .source
            .dead_letter_queue_url
            .as_deref()
            .expect("checked by exhausted()");
        self.sqs
            .send_message()
            .queue_url(dlq)
            .message_body(m.body().unwrap_or_default())
            .set_message_attributes(m.message_attributes().cloned())
            // SQS's redrive moves the message whole: its trace goes with it.
            .set_message_system_attributes(trace_attribute(m))
            .send()
            .await?;
        self.sqs
            .delete_message()
            .queue_url(&self.source.queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await?;
        tracing::warn!(message_id = ?m.message_id(), dlq, "maxReceiveCount exceeded; moved to the dead-letter queue");
        Ok(())
    }

    async fn delete(&self, messages: &[&Message]) -> anyhow::Result<()> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
            if !out.failed.is_empty() {
                anyhow::bail!("DeleteMessageBatch failed for {} messages", out.failed.len());
            }
        }
        Ok(())
    }
}

/// An SQS record exactly as Lambda delivers it.
/// The Lambda record of a received message, as the SQS event source builds it (typed by
/// `aws_lambda_events`, the crate the functions parse it with).
fn record(m: &Message, queue_arn: &str) -> SqsMessage {
    let attributes = m
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
        .unwrap_or_default();
    let message_attributes = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let mut attribute = SqsMessageAttribute::default();
                    attribute.string_value = v.string_value().map(str::to_string);
                    attribute.binary_value = v.binary_value().map(|b| {
                        let mut data = Base64Data::default();
                        data.0 = b.as_ref().to_vec();
                        data
                    });
                    attribute.data_type = Some(v.data_type().to_string());
                    (k.clone(), attribute)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut r = SqsMessage::default();
    r.message_id = m.message_id().map(str::to_string);
    r.receipt_handle = m.receipt_handle().map(str::to_string);
    r.body = m.body().map(str::to_string);
    r.md5_of_body = m.md5_of_body().map(str::to_string);
    r.md5_of_message_attributes = m.md5_of_message_attributes().map(str::to_string);
    r.attributes = attributes;
    r.message_attributes = message_attributes;
    r.event_source = Some("aws:sqs".into());
    r.event_source_arn = Some(queue_arn.to_string());
    r.aws_region = Some(REGION.into());
    r
}

/// A received message's `AWSTraceHeader`, as the system attribute to send it on with.
fn trace_attribute(
    m: &Message,
) -> Option<std::collections::HashMap<MessageSystemAttributeNameForSends, MessageSystemAttributeValue>> {
    let header = m.attributes()?.get(&MessageSystemAttributeName::AwsTraceHeader)?;
    let value = MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(header)
        .build()
        .ok()?;
    Some(std::collections::HashMap::from([(
        MessageSystemAttributeNameForSends::AwsTraceHeader,
        value,
    )]))
}
