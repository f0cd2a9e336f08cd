//! The `notification` job (seed 001): one message published to the stack's SNS topic for a user
//! and a channel; the delivery services subscribe (filtering on the `channel` attribute).
//!
//! At-least-once: a standard topic does not deduplicate, so a crash after SNS accepted the
//! message and before the job ended publishes it again; subscribers dedupe on `job_id`.

use std::sync::Arc;

use shared::job::{JobId, JobResult, NotificationPayload, NotificationResult};
use shared::notify::{Notification, Publisher};

use crate::handler::ProcessError;

#[derive(Clone)]
pub struct Notifier {
    publisher: Arc<dyn Publisher>,
}

impl Notifier {
    pub fn new(publisher: Arc<dyn Publisher>) -> Self {
        Notifier { publisher }
    }

    pub async fn run(&self, p: &NotificationPayload, job_id: JobId) -> Result<JobResult, ProcessError> {
        let n = Notification {
            job_id,
            user_id: p.user_id.clone(),
            channel: p.channel,
            message: p.message.clone(),
        };
        let message_id = self.publisher.publish(&n).await.map_err(|error| {
            tracing::warn!(%job_id, %error, "publishing the notification failed");
            ProcessError::of("publishing the notification", &error)
        })?;
        tracing::info!(%job_id, %message_id, "notification published");
        Ok(NotificationResult {
            message_id,
            topic: self.publisher.topic().to_string(),
            channel: p.channel,
            user_id: p.user_id.clone(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::job::{Channel, JobSpec};
    use shared::store::memory::{Fault, MemoryPublisher};

    use super::*;

    fn payload() -> NotificationPayload {
        let v = json!({"user_id": "u-7", "channel": "push", "message": "Your report is ready"});
        match JobSpec::from_json("notification", v).unwrap() {
            JobSpec::Notification(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_notification_is_published_with_its_job_and_the_result_names_the_topic() {
        let publisher = Arc::new(MemoryPublisher::new("arn:aws:sns:us-east-1:000000000000:t"));
        let id = JobId::new();
        let result = Notifier::new(publisher.clone())
            .run(&payload(), id)
            .await
            .unwrap()
            .to_value();
        let published = publisher.published();
        assert_eq!(published.len(), 1);
        let (message_id, n) = &published[0];
        assert_eq!(
            n,
            &Notification {
                job_id: id,
                user_id: "u-7".into(),
                channel: Channel::Push,
                message: "Your report is ready".into(),
            }
        );
        assert_eq!(
            n.attributes(),
            [
                ("channel", "push".to_string()),
                ("user_id", "u-7".to_string()),
                ("job_id", id.to_string())
            ]
        );
        assert_eq!(
            result,
            json!({"message_id": message_id, "topic": "arn:aws:sns:us-east-1:000000000000:t",
                   "channel": "push", "user_id": "u-7"})
        );
    }

    #[tokio::test]
    async fn a_throttled_publish_is_retried_and_a_denied_one_is_not() {
        let publisher = Arc::new(MemoryPublisher::new("t"));
        let notifier = Notifier::new(publisher.clone());
        publisher.fail(Some(Fault::Throttled));
        let err = notifier.run(&payload(), JobId::new()).await.unwrap_err();
        assert!(matches!(err, ProcessError::Transient(_)), "{err:?}");
        publisher.fail(Some(Fault::Denied));
        let err = notifier.run(&payload(), JobId::new()).await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::Permanent(m) if m == "publishing the notification: Publish failed (AccessDenied)"),
            "{err:?}"
        );
        assert!(publisher.published().is_empty());
    }
}
