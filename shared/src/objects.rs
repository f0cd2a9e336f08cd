//! S3 objects behind a small trait: what the functions do with them, and nothing more. The ingest
//! reads a file from a byte offset (where its last invocation stopped); the worker copies a file to
//! an archive key with a storage class and reads back what landed.
//!
//! [`S3Objects`] is the real implementation; `store::memory::MemoryObjects` (feature `testing`)
//! keeps objects in a map for in-process tests. Failures are typed ([`ObjectError`]): a missing
//! object and a range past the end are answers the callers act on, everything else is a
//! [`crate::Error`] that says whether another try may help ([`crate::Error::is_transient`]).

use std::pin::Pin;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{MetadataDirective, StorageClass};
use tokio::io::AsyncRead;

use crate::error::Error;

/// An object's bytes, as they arrive.
pub type Body = Pin<Box<dyn AsyncRead + Send>>;

/// An object opened for reading.
pub struct Opened {
    /// The bytes from the offset asked for to the end of the object.
    pub body: Body,
    /// The size of the whole object (not only of what `body` holds).
    pub size: u64,
}

/// What [`Objects::head`] reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// `None` when S3 does not say (it omits `STANDARD`).
    pub storage_class: Option<StorageClass>,
    pub etag: Option<String>,
}

/// Why an object operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// No such object (or no such source, for a copy).
    #[error("object s3://{bucket}/{key} not found")]
    NotFound { bucket: String, key: String },
    /// A read from an offset at or after the end of the object: nothing is left to read.
    #[error("s3://{bucket}/{key} has no bytes at or after offset {offset}")]
    RangeNotSatisfiable { bucket: String, key: String, offset: u64 },
    /// Anything else, as the AWS call failed.
    #[error(transparent)]
    Other(#[from] Error),
}

impl ObjectError {
    /// True when the same call may well succeed later (see [`Error::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            ObjectError::Other(e) => e.is_transient(),
            ObjectError::NotFound { .. } | ObjectError::RangeNotSatisfiable { .. } => false,
        }
    }

    /// A short text safe to store on a job (see [`Error::summary`]).
    pub fn summary(&self) -> String {
        match self {
            ObjectError::Other(e) => e.summary(),
            other => crate::limits::clip(&other.to_string(), crate::limits::JOB_ERROR),
        }
    }
}

/// What the functions do with S3 objects.
#[async_trait]
pub trait Objects: Send + Sync {
    /// Opens `bucket/key` for reading from byte `offset` (0: the whole object).
    async fn read(&self, bucket: &str, key: &str, offset: u64) -> Result<Opened, ObjectError>;

    /// Copies `bucket/from` to `bucket/to` with storage class `class`, keeping its metadata.
    /// `NotFound` names the source.
    async fn copy(&self, bucket: &str, from: &str, to: &str, class: StorageClass) -> Result<(), ObjectError>;

    /// Size, storage class and ETag of `bucket/key`.
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError>;

    /// Writes `bytes` to `bucket/key` (replacing what is there) with `content_type`.
    async fn put_object(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), ObjectError>;

    /// A URL that GETs `bucket/key` for `ttl` without credentials, and when it stops working. It
    /// can do no more than its signer may, and no longer than the signer's session lasts.
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<(String, time::OffsetDateTime), ObjectError>;
}

/// The real [`Objects`]: S3 through the SDK.
#[derive(Clone, Debug)]
pub struct S3Objects {
    s3: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        S3Objects { s3 }
    }
}

fn not_found(bucket: &str, key: &str) -> ObjectError {
    ObjectError::NotFound {
        bucket: bucket.into(),
        key: key.into(),
    }
}

#[async_trait]
impl Objects for S3Objects {
    async fn read(&self, bucket: &str, key: &str, offset: u64) -> Result<Opened, ObjectError> {
        // No Range header for the whole object: an empty object has no byte 0 to start at.
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range)
            .send()
            .await;
        match object {
            Ok(object) => {
                let length = object.content_length().unwrap_or_default().max(0) as u64;
                // `bytes 100-999/1000`: the whole object's size is after the slash.
                let size = object
                    .content_range()
                    .and_then(|r| r.rsplit('/').next())
                    .and_then(|total| total.parse().ok())
                    .unwrap_or(offset + length);
                Ok(Opened {
                    body: Box::pin(object.body.into_async_read()),
                    size,
                })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Err(not_found(bucket, key)),
            Err(e) if offset > 0 && e.code() == Some("InvalidRange") => Err(ObjectError::RangeNotSatisfiable {
                bucket: bucket.into(),
                key: key.into(),
                offset,
            }),
            Err(e) => Err(Error::aws("GetObject", e).into()),
        }
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str, class: StorageClass) -> Result<(), ObjectError> {
        let copied = self
            .s3
            .copy_object()
            .copy_source(format!("{bucket}/{}", copy_source_key(from)))
            .bucket(bucket)
            .key(to)
            .storage_class(class)
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await;
        match copied {
            Ok(_) => Ok(()),
            // LocalStack answers a missing source with a bare 404 (no code).
            Err(e) if e.code() == Some("NoSuchKey") || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Err(not_found(bucket, from))
            }
            Err(e) => Err(Error::aws("CopyObject", e).into()),
        }
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(head) => Ok(ObjectInfo {
                size: head.content_length().unwrap_or_default().max(0) as u64,
                storage_class: head.storage_class().cloned(),
                etag: head.e_tag().map(str::to_owned),
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(not_found(bucket, key)),
            Err(e) => Err(Error::aws("HeadObject", e).into()),
        }
    }

    async fn put_object(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), ObjectError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| Error::aws("PutObject", e))?;
        Ok(())
    }

    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<(String, time::OffsetDateTime), ObjectError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| Error::Internal(format!("presigning for {ttl:?}: {e}")))?;
        let signed_at = crate::clock::now();
        let request = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| Error::aws("GetObject (presign)", e))?;
        let expires_at = signed_at + time::Duration::try_from(ttl).unwrap_or(time::Duration::ZERO);
        Ok((request.uri().to_string(), expires_at))
    }
}

/// `CopySource` wants the key URL-encoded (slashes kept).
pub fn copy_source_key(key: &str) -> String {
    key.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_keys_are_encoded_but_keep_slashes() {
        assert_eq!(super::copy_source_key("media/my clip+1.mp4"), "media/my%20clip%2B1.mp4");
    }
}
