//! Email jobs against LocalStack's SES (v1 SendEmail): the template's sender is verified when the
//! stack is provisioned, the mail shows in LocalStack's `GET /_aws/ses`, and a sender SES does
//! not know fails the job for good.

use std::sync::Arc;

use local_bridge::testing::sent_emails;
use serde_json::json;
use shared::job::JobStatus;
use shared::mail::SesMailer;
use shared::notify::SnsPublisher;
use shared::service::NewJob;
use time::Duration;
use worker::archive::Archiver;
use worker::email::Emailer;
use worker::handler::Processors;
use worker::notification::Notifier;
use worker::report::Reporter;

use super::{Harness, OPS, harness};

impl Harness {
    /// The worker's real processors over the emulators, sending mail from `from`.
    pub(crate) async fn processors(&self, from: &str) -> Arc<Processors> {
        let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
        Arc::new(Processors {
            archive: Archiver::new(Arc::new(shared::objects::S3Objects::new(clients.s3.clone()))),
            email: Emailer::new(Arc::new(SesMailer::new(clients.ses.clone(), from))),
            notify: Notifier::new(Arc::new(SnsPublisher::new(
                clients.sns.clone(),
                self.t.var("NOTIFICATIONS_TOPIC_ARN"),
            ))),
            report: Reporter {
                store: self.store.clone(),
                objects: Arc::new(shared::objects::S3Objects::new(clients.s3.clone())),
                bucket: self.t.var("UPLOADS_BUCKET").into(),
                link_ttl: std::time::Duration::from_secs(600),
                max_jobs: worker::report::REPORT_MAX_JOBS,
            },
        })
    }

    pub(crate) async fn submit_kind(&self, kind: &str, payload: serde_json::Value, priority: u8) -> shared::job::Job {
        let new = NewJob {
            kind: kind.into(),
            payload,
            priority: Some(priority),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }
}

fn recipient() -> String {
    format!(
        "u{}@example.com",
        shared::job::JobId::new().to_string().replace('-', "")
    )
}

#[tokio::test]
async fn seed_001s_email_job_is_sent_from_the_stacks_sender_and_shows_in_ses() {
    let h = harness(30).await;
    let from = h.t.var("EMAIL_FROM").to_string();
    assert_eq!(from, "jobs@example.com", "the template's EmailFrom default");
    let to = recipient();
    let job = h
        .submit_kind(
            "email",
            json!({"to": to, "subject": "Welcome!", "body": "Thanks for signing up."}),
            5,
        )
        .await;
    let worker = h.worker(h.processors(&from).await, Duration::seconds(60));
    let o = h.poller("HighQueue", worker).poll_once().await.unwrap();
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let result = done.result.unwrap();
    assert_eq!(
        (result["status"].as_str(), result["to"].as_str()),
        (Some("sent"), Some(to.as_str()))
    );
    let message_id = result["message_id"].as_str().unwrap();

    let mails: Vec<_> = sent_emails(&from)
        .await
        .into_iter()
        .filter(|m| m.destination["ToAddresses"] == json!([to]))
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].id, message_id);
    assert_eq!(mails[0].source, from);
    assert_eq!(mails[0].subject.as_deref(), Some("Welcome!"));
    assert_eq!(mails[0].body["text_part"], "Thanks for signing up.");
}

#[tokio::test]
async fn a_job_with_an_empty_body_is_sent_with_a_blank_one() {
    let h = harness(30).await;
    let from = h.t.var("EMAIL_FROM").to_string();
    let to = recipient();
    let job = h.submit_kind("email", json!({"to": to}), 3).await;
    let worker = h.worker(h.processors(&from).await, Duration::seconds(60));
    h.poller("NormalQueue", worker).poll_once().await.unwrap();
    assert_eq!(h.job(job.id).await.status, JobStatus::Completed);
    let mails: Vec<_> = sent_emails(&from)
        .await
        .into_iter()
        .filter(|m| m.destination["ToAddresses"] == json!([to]))
        .collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject.as_deref(), Some("(no subject)"));
}

#[tokio::test]
async fn an_unverified_sender_fails_the_job_for_good_on_its_first_attempt() {
    let h = harness(1).await;
    let stranger = recipient(); // an address SES was never asked to verify
    let to = recipient();
    let job = h.submit_kind("email", json!({"to": to}), 3).await;
    let worker = h.worker(h.processors(&stranger).await, Duration::seconds(60));
    let o = h.poller("NormalQueue", worker).poll_once().await.unwrap();
    assert_eq!((o.delivered, o.deleted), (1, 1), "acknowledged: no retry");
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(
        failed.error.as_deref(),
        Some(format!("sending to {to}: SendEmail failed (MessageRejected)").as_str())
    );
    assert!(sent_emails(&stranger).await.is_empty());
    assert_eq!(h.depth("NormalQueue").await, 0);
}
