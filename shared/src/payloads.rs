//! The claim check of big image payloads: their visits live in S3 under
//! `payloads/<owner>/<job_id>.json`, and the job item holds only [`StoredVisits`].
//!
//! The api writes the object before the job item ([`Payloads::put`]) and deletes it best-effort
//! when the job is not created after all. Readers load it with [`Payloads::load`]: `If-Match` on
//! the recorded ETag, then the sha256 of the bytes. Any difference is [`Error::Corrupt`]
//! ("payload changed"), which no retry mends, so the job fails for good.
//!
//! [`S3Payloads`] is the real store; [`MemoryPayloads`] (feature `testing`) keeps objects in a map.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use crate::auth::Owner;
use crate::error::{Error, Result};
use crate::job::{JobId, StoredVisits, Visit, count_images_of};

/// The key of a job's stored visits: `payloads/<owner>/<job_id>.json` (`_admin` without owner).
pub fn key(owner: Option<&Owner>, job: JobId) -> String {
    format!("payloads/{}/{job}.json", owner.map_or("_admin", Owner::as_str))
}

/// The sha256 of `bytes`, as hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where big payloads are kept.
#[async_trait]
pub trait Payloads: Send + Sync {
    /// The bucket objects go to.
    fn bucket(&self) -> &str;

    /// Writes `bytes` to `key`; returns the ETag S3 answered with.
    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<String>;

    /// Reads `key`, if its ETag is still `etag`: `Err(Corrupt)` when it is not (or it is gone).
    async fn get_object(&self, key: &str, etag: &str) -> Result<Vec<u8>>;

    /// Removes `key` (a payload whose job was not created).
    async fn delete_object(&self, key: &str) -> Result<()>;

    /// Reads `key` whatever its ETag (a client's upload, `submissions/...`): `None` when there is
    /// no such object, `Err(Invalid)` naming `upload_id` when it holds more than `max` bytes.
    async fn read_object(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>>;

    /// Stores `visits` for job `job` of `owner`; returns the reference the job item keeps.
    async fn put(&self, owner: Option<&Owner>, job: JobId, visits: &[Visit]) -> Result<StoredVisits> {
        let bytes = serde_json::to_vec(visits).map_err(|e| Error::Internal(e.to_string()))?;
        let key = key(owner, job);
        let sha = sha256(&bytes);
        let size = bytes.len() as u64;
        let etag = self.put_object(&key, bytes).await?;
        Ok(StoredVisits {
            bucket: self.bucket().to_owned(),
            key,
            bytes: size,
            sha256: sha,
            etag,
            visits: visits.len(),
            images: count_images_of(visits),
        })
    }

    /// Loads the visits `stored` refers to, checking that they are exactly what was written.
    async fn load(&self, stored: &StoredVisits) -> Result<Vec<Visit>> {
        if stored.bucket != self.bucket() {
            return Err(Error::Corrupt(format!(
                "payload s3://{}/{} is not in the payload bucket {}",
                stored.bucket,
                stored.key,
                self.bucket()
            )));
        }
        let bytes = self.get_object(&stored.key, &stored.etag).await?;
        let sha = sha256(&bytes);
        if sha != stored.sha256 {
            return Err(changed(stored, &format!("sha256 {sha}, recorded {}", stored.sha256)));
        }
        let visits: Vec<Visit> =
            serde_json::from_slice(&bytes).map_err(|e| changed(stored, &format!("unreadable: {e}")))?;
        if visits.len() != stored.visits || count_images_of(&visits) != stored.images {
            return Err(changed(stored, "counts differ from the job's"));
        }
        Ok(visits)
    }
}

fn too_big(size: u64, max: u64) -> Error {
    Error::Invalid(format!("upload_id: the uploaded object is {size} bytes; at most {max}"))
}

fn changed(stored: &StoredVisits, why: &str) -> Error {
    Error::Corrupt(format!("payload changed: s3://{}/{}: {why}", stored.bucket, stored.key))
}

/// The real [`Payloads`]: S3 through the SDK.
#[derive(Clone, Debug)]
pub struct S3Payloads {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Payloads {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Payloads {
            s3,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl Payloads for S3Payloads {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<String> {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| Error::aws("PutObject", e))?;
        out.e_tag()
            .map(str::to_owned)
            .ok_or_else(|| Error::Internal(format!("PutObject of {key} answered no ETag")))
    }

    async fn get_object(&self, key: &str, etag: &str) -> Result<Vec<u8>> {
        let got = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await;
        let object = match got {
            Ok(object) => object,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.code() == Some("PreconditionFailed")
                    || e.raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 404 | 412)) =>
            {
                return Err(Error::Corrupt(format!(
                    "payload changed: s3://{}/{key} is gone or no longer ETag {etag}",
                    self.bucket
                )));
            }
            Err(e) => return Err(Error::aws("GetObject", e)),
        };
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| Error::Internal(format!("reading s3://{}/{key}: {e}", self.bucket)))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn read_object(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let got = self.s3.get_object().bucket(&self.bucket).key(key).send().await;
        let object = match got {
            Ok(object) => object,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::aws("GetObject", e)),
        };
        let size = object.content_length().unwrap_or(0).max(0) as u64;
        if size > max {
            return Err(too_big(size, max));
        }
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| Error::Internal(format!("reading s3://{}/{key}: {e}", self.bucket)))?;
        let bytes = body.into_bytes().to_vec();
        if bytes.len() as u64 > max {
            return Err(too_big(bytes.len() as u64, max));
        }
        Ok(Some(bytes))
    }

    async fn delete_object(&self, key: &str) -> Result<()> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("DeleteObject", e))?;
        Ok(())
    }
}

/// [`Payloads`] in a map, for in-process tests: ETags are the sha256 of the bytes, quoted.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryPayloads {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    gets: std::sync::atomic::AtomicUsize,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryPayloads {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes at `key`, if any.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    /// Replaces the bytes at `key` (as another writer would; the ETag changes with them).
    pub fn overwrite(&self, key: &str, bytes: Vec<u8>) {
        self.objects.lock().unwrap().insert(key.to_owned(), bytes);
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many reads there were.
    pub fn gets(&self) -> usize {
        self.gets.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl Payloads for MemoryPayloads {
    fn bucket(&self) -> &str {
        "memory-payloads"
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<String> {
        let etag = format!("\"{}\"", sha256(&bytes));
        self.objects.lock().unwrap().insert(key.to_owned(), bytes);
        Ok(etag)
    }

    async fn get_object(&self, key: &str, etag: &str) -> Result<Vec<u8>> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match self.object(key) {
            Some(bytes) if format!("\"{}\"", sha256(&bytes)) == etag => Ok(bytes),
            _ => Err(Error::Corrupt(format!(
                "payload changed: memory-payloads/{key} is gone or no longer ETag {etag}"
            ))),
        }
    }

    async fn read_object(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match self.object(key) {
            Some(bytes) if bytes.len() as u64 > max => Err(too_big(bytes.len() as u64, max)),
            got => Ok(got),
        }
    }

    async fn delete_object(&self, key: &str) -> Result<()> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visits(n: usize) -> Vec<Visit> {
        (0..n)
            .map(|i| Visit {
                store_id: format!("S{i}"),
                image_url: vec![format!("https://img.example/{i}.jpg"); 3],
                visit_time: "t".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn stored_visits_load_back_exactly_and_a_changed_object_is_refused() {
        let payloads = MemoryPayloads::new();
        let owner = Owner::parse("alice").unwrap();
        let id = JobId::new();
        let stored = payloads.put(Some(&owner), id, &visits(4)).await.unwrap();
        assert_eq!(stored.key, format!("payloads/alice/{id}.json"));
        assert_eq!((stored.visits, stored.images), (4, 12));
        assert_eq!(payloads.load(&stored).await.unwrap(), visits(4));

        payloads.overwrite(&stored.key, serde_json::to_vec(&visits(5)).unwrap());
        let err = payloads.load(&stored).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)) && !err.is_transient(), "{err}");
        assert!(err.to_string().contains("payload changed"), "{err}");

        // Same ETag but other bytes (a store that keeps ETags): the sha256 catches it.
        let mut forged = stored.clone();
        forged.sha256 = sha256(b"other");
        payloads.overwrite(&stored.key, serde_json::to_vec(&visits(4)).unwrap());
        assert!(payloads.load(&forged).await.unwrap_err().to_string().contains("sha256"));
    }
}
