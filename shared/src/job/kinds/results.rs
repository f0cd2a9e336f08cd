//! What each kind of job produces: one typed result per kind, stored as the job's `result` and
//! described in the API document ([`JobResult`] is a `oneOf` of them).
//!
//! Producers build these types (never free JSON), so the stored shape and the documented one
//! cannot drift. A job's `result` stays JSON on the job (the api passes it through unchanged);
//! [`JobResult::parse`] reads it back as its kind's type, strictly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Channel, JobKind, ReportScope};
use crate::clock::serde_ts;
use crate::error::{Error, Result};
use crate::logs::Rejection;

/// An archive job's copy, read back after it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArchiveResult {
    pub archived_bucket: String,
    pub archived_key: String,
    /// Bytes of the copy.
    pub size: u64,
    /// The copy's storage class as S3 reports it (e.g. `GLACIER_IR`).
    pub storage_class: String,
    #[serde(default)]
    pub etag: Option<String>,
}

/// What an email job's send returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// SES accepted the message (seed 001's `{"status": "sent"}`).
    Sent,
}

/// An email job's send through SES.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmailResult {
    pub status: EmailStatus,
    /// When SES accepted it.
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: OffsetDateTime,
    /// SES's message id.
    pub message_id: String,
    pub to: String,
    /// The verified identity it was sent as (`EmailFrom`).
    pub from: String,
}

/// A notification job's publish to SNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationResult {
    /// SNS's message id.
    pub message_id: String,
    /// The topic's ARN.
    pub topic: String,
    pub channel: Channel,
    pub user_id: String,
}

/// The period a report covers, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportPeriod {
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: OffsetDateTime,
    /// Exclusive.
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub end: OffsetDateTime,
}

/// Where a report's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportFiles {
    pub bucket: String,
    /// Key of the CSV file.
    pub csv: String,
    /// Key of the JSON file.
    pub json: String,
    /// Key of the PDF (reports made before PDFs were written have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdf: Option<String>,
}

/// A report job's files and a link to the format asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportResult {
    pub report_type: String,
    pub period: ReportPeriod,
    pub scope: ReportScope,
    /// Jobs counted.
    pub jobs: u64,
    /// Rows (status x kind) in the files.
    pub rows: u64,
    pub files: ReportFiles,
    /// A presigned GET of the file in the format asked for.
    pub download_url: String,
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub download_expires_at: OffsetDateTime,
}

/// One store's failure as listed on an image job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListedStoreError {
    pub store_id: String,
    /// The first error of the store, cut to 200 characters.
    pub error: String,
}

/// An image job's totals over its parts (the per-image results are at `GET /jobs/{id}/images`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImageJobResult {
    pub images_ok: u64,
    pub images_failed: u64,
    /// Stores seen.
    pub stores: u64,
    /// Stores with at least one failed image (the job fails if any).
    pub stores_failed: u64,
    /// Body bytes fetched over every measured image.
    pub bytes_read: u64,
    pub parts: u64,
    /// The first 100 failed stores.
    pub errors: Vec<ListedStoreError>,
    /// More stores failed than `errors` lists.
    pub errors_truncated: bool,
}

/// A JSONL ingest's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestResult {
    pub lines_read: u64,
    pub lines_stored: u64,
    pub lines_rejected: u64,
    /// The first 100 rejected lines with their reasons (every one is at
    /// `GET /jobs/{id}/entries?rejected=true`).
    pub rejected: Vec<Rejection>,
    /// Stored entries by level.
    pub levels: BTreeMap<String, u64>,
    pub bytes_read: u64,
}

/// A completed job's result: one shape per kind (the job's `kind` says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum JobResult {
    Image(ImageJobResult),
    LogIngest(IngestResult),
    Archive(ArchiveResult),
    Email(EmailResult),
    Notification(NotificationResult),
    Report(ReportResult),
}

impl ArchiveResult {
    /// A plausible archive result, for tests that need a completed job.
    #[cfg(any(test, feature = "testing"))]
    pub fn example() -> JobResult {
        JobResult::Archive(ArchiveResult {
            archived_bucket: "jobs".into(),
            archived_key: "archive/a1/clip.mp4".into(),
            size: 1,
            storage_class: "GLACIER_IR".into(),
            etag: None,
        })
    }
}

impl JobResult {
    pub fn kind(&self) -> JobKind {
        match self {
            JobResult::Image(_) => JobKind::Image,
            JobResult::LogIngest(_) => JobKind::LogIngest,
            JobResult::Archive(_) => JobKind::Archive,
            JobResult::Email(_) => JobKind::Email,
            JobResult::Notification(_) => JobKind::Notification,
            JobResult::Report(_) => JobKind::Report,
        }
    }

    /// The stored JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("results serialize")
    }

    /// A stored result read as `kind`'s type.
    pub fn parse(kind: JobKind, value: &Value) -> Result<Self> {
        fn typed<T: serde::de::DeserializeOwned>(kind: JobKind, value: &Value) -> Result<T> {
            T::deserialize(value).map_err(|e| Error::Internal(format!("stored {kind} result: {e}")))
        }
        Ok(match kind {
            JobKind::Image => JobResult::Image(typed(kind, value)?),
            JobKind::LogIngest => JobResult::LogIngest(typed(kind, value)?),
            JobKind::Archive => JobResult::Archive(typed(kind, value)?),
            JobKind::Email => JobResult::Email(typed(kind, value)?),
            JobKind::Notification => JobResult::Notification(typed(kind, value)?),
            JobKind::Report => JobResult::Report(typed(kind, value)?),
        })
    }
}

macro_rules! from_results {
    ($($variant:ident($ty:ty)),*) => {
        $(impl From<$ty> for JobResult {
            fn from(r: $ty) -> Self {
                JobResult::$variant(r)
            }
        })*
    };
}
from_results!(
    Image(ImageJobResult),
    LogIngest(IngestResult),
    Archive(ArchiveResult),
    Email(EmailResult),
    Notification(NotificationResult),
    Report(ReportResult)
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_result_reads_back_as_its_kinds_type_and_no_other() {
        let archive = JobResult::Archive(ArchiveResult {
            archived_bucket: "b".into(),
            archived_key: "archive/a1/clip.mp4".into(),
            size: 3,
            storage_class: "GLACIER_IR".into(),
            etag: Some("\"e\"".into()),
        });
        let stored = archive.to_value();
        assert_eq!(JobResult::parse(JobKind::Archive, &stored).unwrap(), archive);
        // Shapes do not overlap: another kind's type refuses it, naming the kind.
        let e = JobResult::parse(JobKind::Email, &stored).unwrap_err().to_string();
        assert!(e.contains("email result"), "{e}");
        assert_eq!(archive.kind(), JobKind::Archive);
    }

    #[test]
    fn an_email_result_keeps_seed_001s_status_and_a_fixed_width_timestamp() {
        let v = json!({"status": "sent", "timestamp": "2026-11-30T10:00:00.000Z", "message_id": "m",
                       "to": "a@example.com", "from": "jobs@example.com"});
        let r = JobResult::parse(JobKind::Email, &v).unwrap();
        assert_eq!(r.to_value(), v);
    }

    #[test]
    fn a_result_missing_a_field_is_an_error_not_a_guess() {
        let v = json!({"lines_read": 1, "lines_stored": 1, "lines_rejected": 0, "rejected": [], "levels": {}});
        assert!(JobResult::parse(JobKind::LogIngest, &v).is_err());
    }
}
