//! S3 notifications to functions. Buckets notify an internal queue (the emulator's own, AWS-shaped
//! S3 events); this relays each record to the function its configuration id names, as an
//! asynchronous Lambda invocation would: one record per event, `1 + MaximumRetryAttempts`
//! attempts (3 by default) spaced by a growing delay, then the invocation record goes to the
//! function's `OnFailure` destination, or the event is dropped when it has none. A function error,
//! a timeout and a dead function process all count as a failed attempt.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::{Value, json};

use crate::destination::{self, Outcome};
use crate::invoke::{InvokeError, Invoker};
use crate::provision::S3Route;

/// Notifications relayed at once.
pub const CONCURRENT_EVENTS: usize = 8;

#[derive(Clone)]
pub struct S3Relay {
    pub sqs: Client,
    pub queue_url: String,
    pub routes: Vec<S3Route>,
    pub invoker: Arc<dyn Invoker>,
    pub wait_secs: i32,
    /// Delay before a failed event is retried, times the attempt (AWS waits 1 then 2 minutes;
    /// locally shorter).
    pub retry_delay: Duration,
}

/// One record's delivery.
struct Delivery<'a> {
    route: &'a S3Route,
    event: Value,
    result: Result<Value, InvokeError>,
}

impl S3Relay {
    /// Relays notifications until shutdown, up to [`CONCURRENT_EVENTS`] at once: as on AWS, an
    /// event whose function hangs (or died) does not hold up the others.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(routes = self.routes.len(), "S3 notification relay started");
        let relay = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_EVENTS));
        // As in `SqsPoller::run`: a receive in flight is waited for, never abandoned, and what
        // it got after the shutdown is made visible again at once.
        while !*shutdown.borrow() {
            let received = relay.receive().await;
            if *shutdown.borrow() {
                if let Ok(messages) = &received {
                    relay.release(messages).await;
                }
                break;
            }
            match received {
                Ok(messages) => {
                    for m in messages {
                        let Ok(slot) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let relay = relay.clone();
                        tokio::spawn(async move {
                            if let Err(e) = relay.relay(&m).await {
                                tracing::warn!(error = %e, "S3 relay of a notification failed; it comes back");
                            }
                            drop(slot);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "S3 relay poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Makes received notifications visible again at once (best effort).
    async fn release(&self, messages: &[Message]) {
        for m in messages {
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await;
        }
    }

    async fn receive(&self) -> anyhow::Result<Vec<Message>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Relays one batch of notifications, concurrently; returns how many records reached a
    /// function.
    pub async fn poll_once(&self) -> anyhow::Result<usize> {
        let messages = self.receive().await?;
        let relayed = futures::future::join_all(messages.iter().map(|m| self.relay(m))).await;
        let mut delivered = 0;
        for r in relayed {
            delivered += r?;
        }
        Ok(delivered)
    }

    /// Delivers the records of one notification, then deletes it, or leaves it for a retry.
    async fn relay(&self, m: &Message) -> anyhow::Result<usize> {
        let attempt: u32 = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let request_id = m.message_id().unwrap_or_default().to_string();
        let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or(Value::Null);
        let mut deliveries = Vec::new();
        // `s3:TestEvent` messages have no Records and are simply consumed.
        for record in body.get("Records").and_then(Value::as_array).into_iter().flatten() {
            let config_id = record
                .pointer("/s3/configurationId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(route) = self.routes.iter().find(|r| r.id == config_id) else {
                tracing::warn!(config_id, "S3 event for no known route; ignored");
                continue;
            };
            let event = json!({ "Records": [record] });
            let result = self.invoker.invoke(&route.function, &event).await;
            if let Err(e) = &result {
                tracing::warn!(function = %route.function, attempt, error = %e, "S3 event delivery failed");
            }
            deliveries.push(Delivery { route, event, result });
        }
        let failed: Vec<&Delivery> = deliveries.iter().filter(|d| d.result.is_err()).collect();
        let allowed = failed
            .iter()
            .map(|d| d.route.async_config.attempts())
            .max()
            .unwrap_or(1);
        let handle = m.receipt_handle().unwrap_or_default();
        if !failed.is_empty() && attempt < allowed {
            let delay = self.retry_delay.as_secs().saturating_mul(u64::from(attempt));
            self.sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .visibility_timeout(i32::try_from(delay).unwrap_or(i32::MAX))
                .send()
                .await?;
            return Ok(deliveries.len() - failed.len());
        }
        for d in &deliveries {
            self.record(d, &request_id, attempt).await?;
        }
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .send()
            .await?;
        Ok(deliveries.len() - failed.len())
    }

    /// Sends the invocation record to the route's destination for the outcome, if it has one.
    async fn record(&self, d: &Delivery<'_>, request_id: &str, attempts: u32) -> anyhow::Result<()> {
        let config = &d.route.async_config;
        let (destination, outcome) = match &d.result {
            Ok(response) => (config.on_success.as_ref(), Outcome::Success(response)),
            Err(e) => (config.on_failure.as_ref(), Outcome::RetriesExhausted(e)),
        };
        match (destination, &d.result) {
            (Some(destination), _) => {
                let record = destination::record(&d.route.function_arn, request_id, &d.event, attempts, outcome);
                destination::send(&self.sqs, destination, &record).await?;
                if d.result.is_err() {
                    tracing::error!(
                        function = %d.route.function,
                        attempts,
                        destination = %destination.queue_arn,
                        "S3 event failed every attempt; its invocation record went to the OnFailure destination"
                    );
                }
            }
            (None, Err(_)) => tracing::error!(
                function = %d.route.function,
                attempts,
                "S3 event dropped after every attempt failed, as Lambda does without an OnFailure destination"
            ),
            (None, Ok(_)) => {}
        }
        Ok(())
    }
}
