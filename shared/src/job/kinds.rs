//! The kinds of work, each with its typed payload and the validation of what a client sends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Owner;
use crate::error::{Error, Result, invalid};
use crate::limits::{self, check_bytes, check_len};

use super::JobId;

/// Images per SQS message of an image job, so that many worker invocations share a big job.
pub const IMAGES_PER_PART: usize = 25;
/// The most images one image job may hold (its payload lives in one DynamoDB item).
pub const MAX_IMAGES_PER_JOB: usize = 5_000;
/// The most bytes an image job's payload may take as JSON (DynamoDB items stop at 400 KB).
pub const MAX_IMAGE_PAYLOAD_BYTES: usize = 256 * 1024;

/// The kinds of work the system knows. Each has a typed payload in [`JobSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Image,
    LogIngest,
    Archive,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Image, JobKind::LogIngest, JobKind::Archive];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Image => "image",
            JobKind::LogIngest => "log_ingest",
            JobKind::Archive => "archive",
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
            Error::Invalid(format!(
                "unknown kind {}; expected one of image, log_ingest, archive",
                limits::quote(s)
            ))
        })
    }
}

/// A kind together with its typed payload; serialized as `{"kind": ..., "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobSpec {
    /// A Retail Pulse store-visit job: every image is fetched and measured by the worker.
    Image(ImagePayload),
    /// A JSONL log file in S3, ingested line by line by the ingest function.
    LogIngest(LogIngestPayload),
    /// Seed 000's media-asset archive: copy an S3 object to the archive prefix.
    Archive(ArchivePayload),
}

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Image(_) => JobKind::Image,
            JobSpec::LogIngest(_) => JobKind::LogIngest,
            JobSpec::Archive(_) => JobKind::Archive,
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
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            JobSpec::Image(p) => p.validate(),
            JobSpec::LogIngest(p) => p.validate(),
            JobSpec::Archive(p) => p.validate(),
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

/// Retail Pulse's submission, kept in its public shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePayload {
    pub count: usize,
    pub visits: Vec<Visit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub store_id: String,
    pub image_url: Vec<String>,
    pub visit_time: String,
}

impl ImagePayload {
    pub fn validate(&self) -> Result<()> {
        if self.visits.is_empty() {
            return Err(invalid("payload.visits", "must not be empty"));
        }
        if self.count != self.visits.len() {
            return Err(invalid(
                "payload.count",
                format!("is {} but visits has {} entries", self.count, self.visits.len()),
            ));
        }
        for (i, v) in self.visits.iter().enumerate() {
            if v.store_id.trim().is_empty() {
                return Err(invalid(&format!("payload.visits[{i}].store_id"), "must not be empty"));
            }
            check_len(&format!("payload.visits[{i}].store_id"), &v.store_id, limits::STORE_ID)?;
            check_len(
                &format!("payload.visits[{i}].visit_time"),
                &v.visit_time,
                limits::VISIT_TIME,
            )?;
            if v.image_url.is_empty() {
                return Err(invalid(
                    &format!("payload.visits[{i}].image_url"),
                    "must list at least one URL",
                ));
            }
            for (j, u) in v.image_url.iter().enumerate() {
                check_len(&format!("payload.visits[{i}].image_url[{j}]"), u, limits::IMAGE_URL)?;
                crate::images::check_url(u)
                    .map_err(|why| invalid(&format!("payload.visits[{i}].image_url[{j}]"), why))?;
            }
        }
        let images = self.image_count();
        if images > MAX_IMAGES_PER_JOB {
            return Err(invalid(
                "payload.visits",
                format!("holds {images} images; one job takes at most {MAX_IMAGES_PER_JOB}, split it"),
            ));
        }
        let bytes = serde_json::to_vec(self).map(|b| b.len()).unwrap_or(usize::MAX);
        if bytes > MAX_IMAGE_PAYLOAD_BYTES {
            return Err(invalid(
                "payload",
                format!("is {bytes} bytes; one job takes at most {MAX_IMAGE_PAYLOAD_BYTES}, split it"),
            ));
        }
        Ok(())
    }

    /// Total number of images across all visits.
    pub fn image_count(&self) -> usize {
        self.visits.iter().map(|v| v.image_url.len()).sum()
    }

    /// Every image in payload order, with the store it belongs to.
    pub fn images(&self) -> impl Iterator<Item = ImageRef<'_>> {
        self.visits
            .iter()
            .flat_map(|v| v.image_url.iter().map(move |url| (v.store_id.as_str(), url.as_str())))
            .enumerate()
            .map(|(index, (store_id, url))| ImageRef { index, store_id, url })
    }

    /// How many SQS messages (parts of [`IMAGES_PER_PART`] images) the job is split into.
    pub fn part_count(&self) -> u32 {
        self.image_count().div_ceil(IMAGES_PER_PART) as u32
    }

    /// The images of part `part` (empty past the last part).
    pub fn part(&self, part: u32) -> Vec<ImageRef<'_>> {
        self.images()
            .skip(part as usize * IMAGES_PER_PART)
            .take(IMAGES_PER_PART)
            .collect()
    }
}

/// One image of an image job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Position among all the job's images.
    pub index: usize,
    pub store_id: &'a str,
    pub url: &'a str,
}

/// A JSONL object in S3 to ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Copy `source` (`s3://bucket/key`) to the archive prefix with an archival storage class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivePayload {
    pub asset_id: String,
    pub source: String,
}

impl ArchivePayload {
    pub fn validate(&self) -> Result<()> {
        if self.asset_id.trim().is_empty() {
            return Err(invalid("payload.asset_id", "must not be empty"));
        }
        check_len("payload.asset_id", &self.asset_id, limits::ASSET_ID)?;
        if !self
            .asset_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "payload.asset_id",
                "may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        self.source_location().map(|_| ())
    }

    /// `(bucket, key)` of the source object.
    pub fn source_location(&self) -> Result<(&str, &str)> {
        let rest = self
            .source
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("payload.source", "must look like s3://bucket/key"))?;
        match rest.split_once('/') {
            Some((b, k)) if !b.is_empty() && !k.is_empty() => {
                check_len("payload.source", b, limits::BUCKET)?;
                check_bytes("payload.source", k, limits::S3_KEY)?;
                Ok((b, k))
            }
            _ => Err(invalid("payload.source", "must look like s3://bucket/key")),
        }
    }
}
