//! Seed 001's kinds (email, notification) through `Worker` with the real `Processors` over the
//! in-memory mailer and publisher: the job completes with its result, a refused call fails it at
//! once, a throttled one is retried and fails after the last delivery.

use shared::job::JobStatus;
use shared::store::memory::{Fault, MemoryMailer, MemoryObjects, MemoryPublisher};

use super::*;
use crate::archive::Archiver;
use crate::email::Emailer;
use crate::handler::Processors;
use crate::notification::Notifier;

struct Fakes {
    mailer: Arc<MemoryMailer>,
    publisher: Arc<MemoryPublisher>,
}

fn processors() -> (Arc<Processors>, Fakes) {
    let mailer = Arc::new(MemoryMailer::new("jobs@example.com"));
    let publisher = Arc::new(MemoryPublisher::new("arn:aws:sns:us-east-1:000000000000:notifications"));
    let processors = Arc::new(Processors {
        archive: Archiver::new(Arc::new(MemoryObjects::new())),
        email: Emailer::new(mailer.clone()),
        notify: Notifier::new(publisher.clone()),
    });
    (processors, Fakes { mailer, publisher })
}

impl Harness {
    async fn submit_kind(&self, kind: &str, payload: Value, priority: u8) -> Job {
        let new = NewJob {
            kind: kind.into(),
            payload,
            priority: Some(priority),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }
}

#[tokio::test]
async fn seed_001s_email_example_is_sent_once_and_completes_with_seed_001s_result() {
    let h = harness();
    let (processors, fakes) = processors();
    let worker = h.worker(processors, Duration::seconds(60));
    let job = h
        .submit_kind(
            "email",
            json!({"to": "user@example.com", "subject": "Welcome!", "body": "Thanks for signing up."}),
            5,
        )
        .await;
    let o = h.sqs.poll(Band::High, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    let sent = fakes.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to.as_str(), sent[0].job_id), ("user@example.com", job.id));
    let result = done.result.unwrap();
    assert_eq!(result["status"], "sent");
    assert_eq!(result["message_id"], sent[0].message_id.as_str());
    assert!(result["timestamp"].is_string());
    // A duplicate delivery of the finished job sends nothing more.
    worker.handle_record(delivery(job.id, 2)).await.unwrap();
    assert_eq!(fakes.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_refused_mail_fails_the_job_at_once() {
    let h = harness();
    let (processors, fakes) = processors();
    fakes.mailer.fail(Some(Fault::Denied));
    let job = h.submit_kind("email", json!({"to": "user@example.com"}), 3).await;
    let o = h
        .sqs
        .poll(Band::Normal, &h.worker(processors, Duration::seconds(60)))
        .await;
    assert_eq!((o.delivered, o.deleted), (1, 1), "acknowledged: no retry");
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(
        failed.error.as_deref(),
        Some("sending to user@example.com: SendEmail failed (AccessDenied)")
    );
}

#[tokio::test]
async fn a_throttled_mail_is_retried_and_sent_on_a_later_delivery() {
    let h = harness();
    let (processors, fakes) = processors();
    let worker = h.worker(processors, Duration::seconds(60));
    fakes.mailer.fail(Some(Fault::Throttled));
    let job = h.submit_kind("email", json!({"to": "user@example.com"}), 3).await;
    let o = h.sqs.poll(Band::Normal, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 0), "kept for another delivery");
    assert_eq!(h.job(job.id).await.status, JobStatus::Queued);
    fakes.mailer.fail(None);
    let o = h.sqs.poll(Band::Normal, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 2));
    assert_eq!(fakes.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_notification_throttled_on_every_delivery_fails_after_the_last_and_is_dead_lettered() {
    let h = harness();
    let (processors, fakes) = processors();
    let worker = h.worker(processors, Duration::seconds(60));
    fakes.publisher.fail(Some(Fault::Throttled));
    let job = h
        .submit_kind(
            "notification",
            json!({"user_id": "u-1", "channel": "sms", "message": "hi"}),
            2,
        )
        .await;
    for _ in 0..MAX_RECEIVES {
        h.sqs.poll(Band::Normal, &worker).await;
    }
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 3));
    assert_eq!(
        failed.error.as_deref(),
        Some("publishing the notification: Publish failed (ThrottlingException)")
    );
    assert_eq!(h.sqs.dead_letters(Band::Normal).len(), 1);
    assert!(fakes.publisher.published().is_empty());
}

#[tokio::test]
async fn a_notification_is_published_once_with_its_attributes() {
    let h = harness();
    let (processors, fakes) = processors();
    let job = h
        .submit_kind(
            "notification",
            json!({"user_id": "u-1", "channel": "push", "message": "Your order shipped"}),
            4,
        )
        .await;
    h.sqs
        .poll(Band::High, &h.worker(processors, Duration::seconds(60)))
        .await;
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed);
    let published = fakes.publisher.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1.job_id, job.id);
    assert_eq!(
        done.result,
        Some(json!({
            "message_id": published[0].0,
            "topic": "arn:aws:sns:us-east-1:000000000000:notifications",
            "channel": "push",
            "user_id": "u-1",
        }))
    );
}
