//! The kinds of work, each with its typed payload and the validation of what a client sends.
//!
//! One file per kind holds its payload type and validation; this file holds [`JobKind`] and
//! [`JobSpec`], the two lists every kind joins.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, invalid};
use crate::limits;

mod archive;
mod email;
mod image;
mod log_ingest;
mod notification;
mod report;
mod results;

pub use archive::*;
pub use email::*;
pub use image::*;
pub use log_ingest::*;
pub use notification::*;
pub use report::*;
pub use results::*;

/// The kinds of work the system knows. Each has a typed payload in [`JobSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Image,
    LogIngest,
    Archive,
    Email,
    Notification,
    Report,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Image,
        JobKind::LogIngest,
        JobKind::Archive,
        JobKind::Email,
        JobKind::Notification,
        JobKind::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Image => "image",
            JobKind::LogIngest => "log_ingest",
            JobKind::Archive => "archive",
            JobKind::Email => "email",
            JobKind::Notification => "notification",
            JobKind::Report => "report",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::Invalid(format!(
                "unknown kind {}; expected one of {}",
                limits::quote(s),
                known.join(", ")
            ))
        })
    }
}

/// A kind together with its typed payload; serialized as `{"kind": ..., "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobSpec {
    /// A Retail Pulse store-visit job: every image is fetched and measured by the worker.
    Image(ImagePayload),
    /// A JSONL log file in S3, ingested line by line by the ingest function.
    LogIngest(LogIngestPayload),
    /// Seed 000's media-asset archive: copy an S3 object to the archive prefix.
    Archive(ArchivePayload),
    /// Seed 001's mail: one plain-text message sent through SES.
    Email(EmailPayload),
    /// Seed 001's notification: published to the stack's SNS topic for one user and channel.
    Notification(NotificationPayload),
    /// Seed 001's report: counts and durations by status and kind over a period, CSV and JSON in S3.
    Report(ReportPayload),
}

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Image(_) => JobKind::Image,
            JobSpec::LogIngest(_) => JobKind::LogIngest,
            JobSpec::Archive(_) => JobKind::Archive,
            JobSpec::Email(_) => JobKind::Email,
            JobSpec::Notification(_) => JobKind::Notification,
            JobSpec::Report(_) => JobKind::Report,
        }
    }

    /// Parses `{"kind", "payload"}` from JSON, naming the offending field on error
    /// (`payload.visits[0].store_id: missing field`), then checks what types cannot express.
    pub fn from_json(kind: &str, payload: Value) -> Result<Self> {
        let kind: JobKind = kind.parse()?;
        let spec = match kind {
            JobKind::Image => JobSpec::Image(parse_payload(payload)?),
            JobKind::LogIngest => JobSpec::LogIngest(parse_payload(payload)?),
            JobKind::Archive => JobSpec::Archive(parse_payload(payload)?),
            JobKind::Email => JobSpec::Email(parse_payload(payload)?),
            JobKind::Notification => JobSpec::Notification(parse_payload(payload)?),
            JobKind::Report => JobSpec::Report(parse_payload(payload)?),
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            JobSpec::Image(p) => p.validate(),
            JobSpec::LogIngest(p) => p.validate(),
            JobSpec::Archive(p) => p.validate(),
            JobSpec::Email(p) => p.validate(),
            JobSpec::Notification(p) => p.validate(),
            JobSpec::Report(p) => p.validate(),
        }
    }
}

fn parse_payload<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "payload".to_string()
        } else {
            format!("payload.{path}")
        };
        invalid(&field, e.into_inner())
    })
}
