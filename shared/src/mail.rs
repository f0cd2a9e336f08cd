//! Mail behind a small trait: the worker's `email` jobs send one plain-text message each.
//!
//! [`SesMailer`] is the real one (SES v1 `SendEmail`, from the stack's verified sender
//! `EMAIL_FROM`); `store::memory::MemoryMailer` (feature `testing`) records what was sent.
//! SES does not deduplicate: a crash between SES's answer and the job's end sends the mail again
//! (email jobs are at-least-once). The job id rides along as the message tag `job_id`.

use async_trait::async_trait;
use aws_sdk_ses::types::{Body, Content, Destination, Message, MessageTag};

use crate::error::{Error, Result};
use crate::job::JobId;

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail<'a> {
    pub job_id: JobId,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// The sender every mail goes out from.
    fn from(&self) -> &str;
    /// Sends `mail`; returns the provider's message id. Errors keep their AWS code
    /// ([`Error::is_transient`] tells a throttled send from a rejected one).
    async fn send(&self, mail: &Mail<'_>) -> Result<String>;
}

/// SES v1 `SendEmail` from `from`, a UTF-8 text body.
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_ses::Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_ses::Client, from: impl Into<String>) -> Self {
        SesMailer {
            client,
            from: from.into(),
        }
    }
}

fn utf8(text: &str) -> Result<Content> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::Internal(format!("building a mail: {e}")))
}

#[async_trait]
impl Mailer for SesMailer {
    fn from(&self) -> &str {
        &self.from
    }

    async fn send(&self, mail: &Mail<'_>) -> Result<String> {
        // SES refuses an empty text part; a job may well send an empty body (seed 002).
        let body = if mail.body.is_empty() { " " } else { mail.body };
        let message = Message::builder()
            .subject(utf8(mail.subject)?)
            .body(Body::builder().text(utf8(body)?).build())
            .build();
        let tag = MessageTag::builder()
            .name("job_id")
            .value(mail.job_id.to_string())
            .build()
            .map_err(|e| Error::Internal(format!("building a mail tag: {e}")))?;
        let out = self
            .client
            .send_email()
            .source(&self.from)
            .destination(Destination::builder().to_addresses(mail.to).build())
            .message(message)
            .tags(tag)
            .send()
            .await
            .map_err(|e| Error::aws("SendEmail", e))?;
        Ok(out.message_id)
    }
}
