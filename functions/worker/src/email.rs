//! The `email` job (seed 001): one plain-text mail through the stack's [`Mailer`] (SES), from its
//! verified sender. The result is seed 001's own, `{status: "sent", timestamp}`, plus the
//! provider's message id, the recipient and the sender.
//!
//! At-least-once: SES does not deduplicate, so a crash after SES accepted the mail and before the
//! job ended sends it again on the next delivery.

use std::sync::Arc;

use shared::clock;
use shared::job::{EmailPayload, EmailResult, EmailStatus, JobId, JobResult};
use shared::mail::{Mail, Mailer};

use crate::handler::ProcessError;

#[derive(Clone)]
pub struct Emailer {
    mailer: Arc<dyn Mailer>,
}

impl Emailer {
    pub fn new(mailer: Arc<dyn Mailer>) -> Self {
        Emailer { mailer }
    }

    pub async fn run(&self, p: &EmailPayload, job_id: JobId) -> Result<JobResult, ProcessError> {
        let mail = Mail {
            job_id,
            to: &p.to,
            subject: &p.subject,
            body: &p.body,
        };
        let message_id = self.mailer.send(&mail).await.map_err(|error| {
            tracing::warn!(%job_id, %error, "sending the mail failed");
            ProcessError::of(&format!("sending to {}", p.to), &error)
        })?;
        tracing::info!(%job_id, %message_id, "mail sent");
        Ok(EmailResult {
            status: EmailStatus::Sent,
            timestamp: clock::now(),
            message_id,
            to: p.to.clone(),
            from: self.mailer.from().to_string(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::job::JobSpec;
    use shared::store::memory::{Fault, MemoryMailer};

    use super::*;

    fn payload(v: Value) -> EmailPayload {
        match JobSpec::from_json("email", v).unwrap() {
            JobSpec::Email(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_mail_goes_out_from_the_stacks_sender_and_the_result_names_it() {
        let mailer = Arc::new(MemoryMailer::new("jobs@example.com"));
        let id = JobId::new();
        let result = Emailer::new(mailer.clone())
            .run(
                &payload(json!({"to": "user@example.com", "subject": "Welcome!", "body": "Hi"})),
                id,
            )
            .await
            .unwrap()
            .to_value();
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (
                sent[0].to.as_str(),
                sent[0].from.as_str(),
                sent[0].subject.as_str(),
                sent[0].body.as_str()
            ),
            ("user@example.com", "jobs@example.com", "Welcome!", "Hi")
        );
        assert_eq!(sent[0].job_id, id);
        assert_eq!(result["status"], "sent");
        assert_eq!(result["message_id"], sent[0].message_id.as_str());
        assert_eq!(result["to"], "user@example.com");
        assert_eq!(result["from"], "jobs@example.com");
        assert!(
            time::OffsetDateTime::parse(
                result["timestamp"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{result}"
        );
    }

    #[tokio::test]
    async fn a_throttled_send_is_retried_and_a_refused_one_is_not() {
        let mailer = Arc::new(MemoryMailer::new("jobs@example.com"));
        let emailer = Emailer::new(mailer.clone());
        let p = payload(json!({"to": "user@example.com"}));
        mailer.fail(Some(Fault::Throttled));
        let err = emailer.run(&p, JobId::new()).await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::Transient(m) if m == "sending to user@example.com: SendEmail failed (ThrottlingException)"),
            "{err:?}"
        );
        mailer.fail(Some(Fault::Denied));
        let err = emailer.run(&p, JobId::new()).await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::Permanent(m) if m == "sending to user@example.com: SendEmail failed (AccessDenied)"),
            "{err:?}"
        );
        assert!(mailer.sent().is_empty());
    }
}
