//! S3 notifications to functions. Buckets notify an internal queue (the emulator's own, AWS-shaped
//! S3 events); this relays each record to the function its configuration id names, as an
//! asynchronous Lambda invocation would: one record per event, up to 3 attempts, then dropped.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};

use crate::invoke::Invoker;
use crate::provision::S3Route;

/// Attempts of an asynchronous invocation (1 + Lambda's 2 retries).
pub const ASYNC_ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct S3Relay {
    pub sqs: Client,
    pub queue_url: String,
    pub routes: Vec<S3Route>,
    pub invoker: Arc<dyn Invoker>,
    pub wait_secs: i32,
    /// Delay before a failed event is retried (AWS waits 1 then 2 minutes; locally shorter).
    pub retry_delay: Duration,
}

impl S3Relay {
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(routes = self.routes.len(), "S3 notification relay started");
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                r = self.poll_once() => if let Err(e) = r {
                    tracing::warn!(error = %e, "S3 relay poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                },
            }
        }
    }

    /// Relays one batch of notifications; returns how many records reached a function.
    pub async fn poll_once(&self) -> anyhow::Result<usize> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?;
        let mut delivered = 0;
        for m in out.messages.unwrap_or_default() {
            let attempt: u32 = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or(Value::Null);
            let mut ok = true;
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
                match self.invoker.invoke(&route.function, &event).await {
                    Ok(_) => delivered += 1,
                    Err(e) => {
                        ok = false;
                        tracing::warn!(function = %route.function, attempt, error = %e, "S3 event delivery failed");
                    }
                }
            }
            // `s3:TestEvent` messages have no Records and are simply consumed.
            let handle = m.receipt_handle().unwrap_or_default();
            if ok || attempt >= ASYNC_ATTEMPTS {
                if !ok {
                    tracing::error!(
                        attempt,
                        "S3 event dropped after {ASYNC_ATTEMPTS} attempts, as Lambda does without an on-failure destination"
                    );
                }
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            } else {
                self.sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout((self.retry_delay.as_secs() as i32).max(0) * attempt as i32)
                    .send()
                    .await?;
            }
        }
        Ok(delivered)
    }
}
