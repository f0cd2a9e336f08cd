//! The `archive` job (seed 000's media assets): copy the source object (one of its owner's
//! uploads, checked when the job was submitted) to `archive/<owner>/<asset_id>/` with an archival
//! storage class, and record where it went and its size.

use aws_sdk_s3::types::{MetadataDirective, StorageClass};
use serde_json::{Value, json};
use shared::auth::Owner;
use shared::job::ArchivePayload;

use crate::handler::ProcessError;

/// The storage class archived objects get: Glacier Instant Retrieval (archival, still readable).
pub const ARCHIVE_CLASS: StorageClass = StorageClass::GlacierIr;

#[derive(Clone, Debug)]
pub struct Archiver {
    s3: aws_sdk_s3::Client,
}

impl Archiver {
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Archiver { s3 }
    }

    pub async fn run(&self, p: &ArchivePayload, owner: Option<&Owner>) -> Result<Value, ProcessError> {
        let (bucket, key) = p
            .source_location()
            .map_err(|e| ProcessError::Permanent(e.to_string()))?;
        let file = key.rsplit('/').next().unwrap_or(key);
        let target = match owner {
            Some(owner) => format!("archive/{owner}/{}/{file}", p.asset_id),
            None => format!("archive/{}/{file}", p.asset_id),
        };
        let copy_source = format!("{bucket}/{}", encode_key(key));
        let copied = self
            .s3
            .copy_object()
            .copy_source(copy_source)
            .bucket(bucket)
            .key(&target)
            .storage_class(ARCHIVE_CLASS)
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await;
        if let Err(e) = copied {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.meta().code() == Some("NoSuchKey"))
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
            if missing {
                return Err(ProcessError::Permanent(format!(
                    "source object not found: {}",
                    p.source
                )));
            }
            // The full SDK error goes to the log; the job keeps a short summary.
            let error = shared::Error::aws("CopyObject", e);
            tracing::warn!(source = %p.source, %error, "copy failed");
            let msg = format!("copying {}: {}", p.source, error.summary());
            return Err(if error.is_transient() {
                ProcessError::Transient(msg)
            } else {
                ProcessError::Permanent(msg)
            });
        }
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(&target)
            .send()
            .await
            .map_err(|e| {
                let error = shared::Error::aws("HeadObject", e);
                tracing::warn!(%target, %error, "reading back the copy failed");
                ProcessError::Transient(format!("reading back {target}: {}", error.summary()))
            })?;
        Ok(json!({
            "archived_bucket": bucket,
            "archived_key": target,
            "size": head.content_length().unwrap_or_default(),
            "storage_class": head.storage_class().map(|c| c.as_str().to_string()).unwrap_or_else(|| ARCHIVE_CLASS.as_str().to_string()),
            "etag": head.e_tag(),
        }))
    }
}

/// `CopySource` wants the key URL-encoded (slashes kept).
fn encode_key(key: &str) -> String {
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
        assert_eq!(super::encode_key("media/my clip+1.mp4"), "media/my%20clip%2B1.mp4");
    }
}
