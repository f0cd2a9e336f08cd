//! Event Horizon's JSONL ingest: a file in S3, streamed and stored line by line.

use serde::{Deserialize, Serialize};

use crate::auth::Owner;
use crate::error::{Result, invalid};
use crate::job::JobId;
use crate::limits::{self, check_bytes, check_len};

/// A JSONL object in S3 to ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogIngestPayload {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub size: u64,
}

impl LogIngestPayload {
    /// Where an upload made through the API puts its file:
    /// `uploads/<owner>/<job_id>/<file name>`, under its owner's prefix.
    pub fn upload_key(owner: &Owner, job: JobId, file_name: &str) -> String {
        format!("{}{job}/{file_name}", owner.upload_prefix())
    }

    /// The job an upload's key names (see [`LogIngestPayload::upload_key`]); `None` for any
    /// other key (a file dropped into the bucket).
    pub fn uploaded_job(key: &str) -> Option<JobId> {
        let mut parts = key.splitn(4, '/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("uploads"), Some(_owner), Some(id), Some(_)) => id.parse().ok(),
            _ => None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.bucket.is_empty() {
            return Err(invalid("payload.bucket", "must not be empty"));
        }
        check_len("payload.bucket", &self.bucket, limits::BUCKET)?;
        check_bytes("payload.key", &self.key, limits::S3_KEY)?;
        check_len("payload.file_name", &self.file_name, limits::FILE_NAME)?;
        if !(self.key.ends_with(".jsonl") || self.key.ends_with(".jsonl.gz")) {
            return Err(invalid("payload.key", "must end in .jsonl or .jsonl.gz"));
        }
        Ok(())
    }
}
