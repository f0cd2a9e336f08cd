//! Notifications behind a small trait: the worker's `notification` jobs publish one message each
//! to the stack's SNS topic, where delivery services subscribe (filter policies on `channel`).
//!
//! [`SnsPublisher`] is the real one; `store::memory::MemoryPublisher` (feature `testing`) records
//! what was published. A standard topic does not deduplicate: a crash between SNS's answer and
//! the job's end publishes again (notification jobs are at-least-once), so subscribers dedupe on
//! the `job_id` attribute.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{Channel, JobId};

/// One notification: the message body published, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub job_id: JobId,
    pub user_id: String,
    pub channel: Channel,
    pub message: String,
}

impl Notification {
    /// The message attributes subscribers filter and dedupe on: `channel`, `user_id`, `job_id`.
    pub fn attributes(&self) -> [(&'static str, String); 3] {
        [
            ("channel", self.channel.as_str().to_string()),
            ("user_id", self.user_id.clone()),
            ("job_id", self.job_id.to_string()),
        ]
    }
}

#[async_trait]
pub trait Publisher: Send + Sync {
    /// Where notifications go (the topic's ARN).
    fn topic(&self) -> &str;
    /// Publishes `n`; returns the provider's message id.
    async fn publish(&self, n: &Notification) -> Result<String>;
}

/// SNS `Publish` to one topic.
#[derive(Clone, Debug)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Publisher for SnsPublisher {
    fn topic(&self) -> &str {
        &self.topic_arn
    }

    async fn publish(&self, n: &Notification) -> Result<String> {
        let body = serde_json::to_string(n).map_err(|e| Error::Internal(format!("encoding a notification: {e}")))?;
        let mut request = self.client.publish().topic_arn(&self.topic_arn).message(body);
        for (name, value) in n.attributes() {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Internal(format!("building attribute {name}: {e}")))?;
            request = request.message_attributes(name, value);
        }
        let out = request.send().await.map_err(|e| Error::aws("Publish", e))?;
        out.message_id
            .ok_or_else(|| Error::Internal("SNS answered Publish without a message id".into()))
    }
}
