//! The `archive` job (seed 000's media assets): copy the source object (one of its owner's
//! uploads, checked when the job was submitted) to `archive/<owner>/<asset_id>/` with an archival
//! storage class, and record where it went and its size.

use std::sync::Arc;

use aws_sdk_s3::types::StorageClass;
use shared::auth::Owner;
use shared::job::{ArchivePayload, ArchiveResult, JobResult};
use shared::objects::{ObjectError, Objects};

use crate::handler::ProcessError;

/// The storage class archived objects get: Glacier Instant Retrieval (archival, still readable).
pub const ARCHIVE_CLASS: StorageClass = StorageClass::GlacierIr;

#[derive(Clone)]
pub struct Archiver {
    objects: Arc<dyn Objects>,
}

impl Archiver {
    pub fn new(objects: Arc<dyn Objects>) -> Self {
        Archiver { objects }
    }

    pub async fn run(&self, p: &ArchivePayload, owner: Option<&Owner>) -> Result<JobResult, ProcessError> {
        let (bucket, key) = p
            .source_location()
            .map_err(|e| ProcessError::Permanent(e.to_string()))?;
        let file = key.rsplit('/').next().unwrap_or(key);
        let target = match owner {
            Some(owner) => format!("archive/{owner}/{}/{file}", p.asset_id),
            None => format!("archive/{}/{file}", p.asset_id),
        };
        match self.objects.copy(bucket, key, &target, ARCHIVE_CLASS).await {
            Ok(()) => {}
            Err(ObjectError::NotFound { .. }) => {
                return Err(ProcessError::Permanent(format!(
                    "source object not found: {}",
                    p.source
                )));
            }
            Err(error) => {
                // The full SDK error goes to the log; the job keeps a short summary.
                tracing::warn!(source = %p.source, %error, "copy failed");
                let msg = format!("copying {}: {}", p.source, error.summary());
                return Err(if error.is_transient() {
                    ProcessError::Transient(msg)
                } else {
                    ProcessError::Permanent(msg)
                });
            }
        }
        let head = self.objects.head(bucket, &target).await.map_err(|error| {
            tracing::warn!(%target, %error, "reading back the copy failed");
            ProcessError::Transient(format!("reading back {target}: {}", error.summary()))
        })?;
        Ok(ArchiveResult {
            archived_bucket: bucket.to_string(),
            archived_key: target,
            size: head.size,
            storage_class: head.storage_class.unwrap_or(ARCHIVE_CLASS).as_str().to_string(),
            etag: head.etag,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::job::JobSpec;
    use shared::store::memory::{Fault, MemoryObjects};

    use super::*;

    fn payload(source: &str) -> ArchivePayload {
        match JobSpec::from_json("archive", json!({"asset_id": "a1", "source": source})).unwrap() {
            JobSpec::Archive(p) => p,
            other => panic!("{other:?}"),
        }
    }

    fn archiver() -> (Archiver, Arc<MemoryObjects>) {
        let objects = Arc::new(MemoryObjects::new());
        (Archiver::new(objects.clone()), objects)
    }

    #[tokio::test]
    async fn the_source_is_copied_under_its_owners_archive_with_the_archive_class() {
        let (archiver, objects) = archiver();
        objects.put("b", "uploads/alice/my clip+1.mp4", vec![7u8; 1234]);
        let alice = Owner::parse("alice").unwrap();
        let result = archiver
            .run(&payload("s3://b/uploads/alice/my clip+1.mp4"), Some(&alice))
            .await
            .unwrap()
            .to_value();
        assert_eq!(result["archived_bucket"], "b");
        assert_eq!(result["archived_key"], "archive/alice/a1/my clip+1.mp4");
        assert_eq!(
            (result["size"].as_u64(), result["storage_class"].as_str()),
            (Some(1234), Some("GLACIER_IR"))
        );
        assert!(result["etag"].as_str().is_some_and(|e| !e.is_empty()), "{result}");
        assert_eq!(
            objects.get("b", "archive/alice/a1/my clip+1.mp4"),
            Some(vec![7u8; 1234])
        );
        assert!(
            objects.get("b", "uploads/alice/my clip+1.mp4").is_some(),
            "the source stays"
        );
    }

    #[tokio::test]
    async fn a_job_without_owner_archives_under_the_asset_alone() {
        let (archiver, objects) = archiver();
        objects.put("b", "uploads/k.mp4", b"x".to_vec());
        let result = archiver
            .run(&payload("s3://b/uploads/k.mp4"), None)
            .await
            .unwrap()
            .to_value();
        assert_eq!(result["archived_key"], "archive/a1/k.mp4");
    }

    #[tokio::test]
    async fn a_missing_source_fails_for_good() {
        let (archiver, _) = archiver();
        let err = archiver
            .run(&payload("s3://b/uploads/gone.mp4"), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProcessError::Permanent(m) if m == "source object not found: s3://b/uploads/gone.mp4"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_throttled_copy_is_worth_another_attempt_and_a_refused_one_is_not() {
        let (archiver, objects) = archiver();
        objects.put("b", "uploads/k.mp4", b"x".to_vec());
        objects.fail(Some(Fault::Throttled));
        let err = archiver.run(&payload("s3://b/uploads/k.mp4"), None).await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::Transient(m) if m == "copying s3://b/uploads/k.mp4: CopyObject failed (ThrottlingException)"),
            "{err:?}"
        );
        objects.fail(Some(Fault::Denied));
        let err = archiver.run(&payload("s3://b/uploads/k.mp4"), None).await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::Permanent(m) if m == "copying s3://b/uploads/k.mp4: CopyObject failed (AccessDenied)"),
            "{err:?}"
        );
        assert_eq!(objects.get("b", "archive/a1/k.mp4"), None, "nothing copied");
    }
}
