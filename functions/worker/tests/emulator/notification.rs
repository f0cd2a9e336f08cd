//! Notification jobs against LocalStack's SNS: a queue subscribed to the template's topic (as a
//! delivery service would be) receives the message with its `channel`, `user_id` and `job_id`
//! attributes.

use serde_json::{Value, json};
use shared::job::JobStatus;
use time::Duration;

use super::harness;

#[tokio::test]
async fn a_subscribed_queue_receives_the_notification_with_its_attributes() {
    let h = harness(30).await;
    let subscriber = h.t.subscribe_queue("NotificationsTopic").await;
    let job = h
        .submit_kind(
            "notification",
            json!({"user_id": "u-42", "channel": "sms", "message": "Your order shipped"}),
            5,
        )
        .await;
    let from = h.t.var("EMAIL_FROM").to_string();
    let worker = h.worker(h.processors(&from).await, Duration::seconds(60));
    let o = h.poller("HighQueue", worker).poll_once().await.unwrap();
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let result = done.result.unwrap();
    assert_eq!(result["topic"], h.t.var("NOTIFICATIONS_TOPIC_ARN"));
    assert_eq!(
        (result["channel"].as_str(), result["user_id"].as_str()),
        (Some("sms"), Some("u-42"))
    );

    let received =
        h.t.clients
            .sqs
            .receive_message()
            .queue_url(&subscriber)
            .message_attribute_names("All")
            .wait_time_seconds(5)
            .send()
            .await
            .unwrap();
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let body: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"job_id": job.id, "user_id": "u-42", "channel": "sms", "message": "Your order shipped"})
    );
    let attributes = messages[0].message_attributes().unwrap();
    let attr = |name: &str| attributes[name].string_value().unwrap().to_string();
    assert_eq!(
        (attr("channel"), attr("user_id"), attr("job_id")),
        ("sms".to_string(), "u-42".to_string(), job.id.to_string())
    );
}
