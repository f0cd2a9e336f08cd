//! Retail Pulse's image job: store visits, each with image URLs the worker measures.
//!
//! A payload over [`INLINE_PAYLOAD_BYTES`] is not kept in the job item (DynamoDB items stop at
//! 400 KB): the api writes its visits to S3 (`payloads/<owner>/<job_id>.json`, the claim check)
//! and the item keeps [`StoredVisits`], the reference with its counts, sha256 and ETag. Only the
//! service sets `stored`; a client that sends it is refused.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::limits::{self, check_bytes, check_len};

/// Images per SQS message of an image job, so that many worker invocations share a big job.
pub const IMAGES_PER_PART: usize = 25;
/// The most images one image job may hold (`IMAGE_MAX_PER_JOB` lowers it per deployment):
/// 10,000 visits of 10 images.
pub const MAX_IMAGES_PER_JOB: usize = 100_000;
/// The most bytes an image job's payload may take as JSON: what a presigned submission may hold
/// (25 MB, `POST /jobs/uploads`); an inline one stops earlier, at the 6 MB a Lambda request carries.
pub const MAX_IMAGE_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;
/// A payload up to this many bytes of JSON stays in the job item; a larger one goes to S3.
pub const INLINE_PAYLOAD_BYTES: usize = 32 * 1024;
/// Without a payload store (tests, tools), payloads up to this size still stay inline.
pub const MAX_INLINE_WITHOUT_STORE: usize = 256 * 1024;

/// The most images a job may hold here: `IMAGE_MAX_PER_JOB` if set (never above
/// [`MAX_IMAGES_PER_JOB`]), else [`MAX_IMAGES_PER_JOB`].
pub fn max_images_per_job() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("IMAGE_MAX_PER_JOB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(MAX_IMAGES_PER_JOB, |n| n.min(MAX_IMAGES_PER_JOB))
    })
}

/// Retail Pulse's submission, kept in its public shape (`stored` is ours, never a client's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImagePayload {
    pub count: usize,
    /// Empty when the visits are stored in S3 (`stored`); required all the same, as the seed has it.
    pub visits: Vec<Visit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub stored: Option<StoredVisits>,
}

/// Where a big payload's visits are: a JSON array of [`Visit`] in S3, as the api wrote it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVisits {
    pub bucket: String,
    pub key: String,
    /// Size of the object.
    pub bytes: u64,
    /// Hex sha256 of the object, checked on every load.
    pub sha256: String,
    /// The ETag S3 answered the write with; reads ask for exactly it (`If-Match`).
    pub etag: String,
    pub visits: usize,
    pub images: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Visit {
    pub store_id: String,
    pub image_url: Vec<String>,
    pub visit_time: String,
}

/// One image as a part message carries it (owned, unlike [`ImageRef`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartImage {
    pub store_id: String,
    pub url: String,
}

impl ImagePayload {
    /// Checks a client's payload. A `stored` reference is never a client's to send.
    pub fn validate(&self) -> Result<()> {
        if self.stored.is_some() {
            return Err(invalid(
                "payload.stored",
                "is set by the service for large payloads; send visits instead",
            ));
        }
        if self.visits.is_empty() {
            return Err(invalid("payload.visits", "must not be empty"));
        }
        if self.count != self.visits.len() {
            return Err(invalid(
                "payload.count",
                format!("is {} but visits has {} entries", self.count, self.visits.len()),
            ));
        }
        let max = max_images_per_job();
        let images = self.image_count();
        if images > max {
            return Err(invalid(
                "payload.visits",
                format!("holds {images} images; one job takes at most {max}, split it"),
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
                // Bytes, not characters: this bounds a part message (25 URLs) well under 256 KB.
                check_bytes(&format!("payload.visits[{i}].image_url[{j}]"), u, limits::IMAGE_URL)?;
                crate::images::check_url(u)
                    .map_err(|why| invalid(&format!("payload.visits[{i}].image_url[{j}]"), why))?;
            }
        }
        let bytes = self.json_bytes();
        if bytes > MAX_IMAGE_PAYLOAD_BYTES {
            return Err(invalid(
                "payload",
                format!("is {bytes} bytes; one job takes at most {MAX_IMAGE_PAYLOAD_BYTES}, split it"),
            ));
        }
        Ok(())
    }

    /// Size of the payload as JSON.
    pub fn json_bytes(&self) -> usize {
        serde_json::to_vec(self).map(|b| b.len()).unwrap_or(usize::MAX)
    }

    /// Total number of images across all visits (stored or inline).
    pub fn image_count(&self) -> usize {
        match &self.stored {
            Some(s) => s.images,
            None => count_images_of(&self.visits),
        }
    }

    /// How many SQS messages (parts of [`IMAGES_PER_PART`] images) the job is split into.
    pub fn part_count(&self) -> u32 {
        self.image_count().div_ceil(IMAGES_PER_PART) as u32
    }

    /// The visits when they are inline; `None` when they must be loaded (`stored`).
    pub fn inline_visits(&self) -> Option<&[Visit]> {
        self.stored.is_none().then_some(self.visits.as_slice())
    }

    /// What a job item shows instead of stored visits: counts and where the visits are.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "images": self.image_count(),
            "parts": self.part_count(),
            "stored": self.stored.is_some(),
        })
    }
}

/// Total number of images across `visits`.
pub fn count_images_of(visits: &[Visit]) -> usize {
    visits.iter().map(|v| v.image_url.len()).sum()
}

/// Every image in payload order, with the store it belongs to.
pub fn visit_images(visits: &[Visit]) -> impl Iterator<Item = ImageRef<'_>> {
    visits
        .iter()
        .flat_map(|v| v.image_url.iter().map(move |url| (v.store_id.as_str(), url.as_str())))
        .enumerate()
        .map(|(index, (store_id, url))| ImageRef { index, store_id, url })
}

/// The images of part `part` (empty past the last part).
pub fn visit_part(visits: &[Visit], part: u32) -> Vec<ImageRef<'_>> {
    visit_images(visits)
        .skip(part as usize * IMAGES_PER_PART)
        .take(IMAGES_PER_PART)
        .collect()
}

/// Every part of the visits, in order, as part messages carry them (one pass over the visits).
pub fn all_parts(visits: &[Visit]) -> Vec<Vec<PartImage>> {
    let mut parts = Vec::with_capacity(count_images_of(visits).div_ceil(IMAGES_PER_PART));
    let mut current = Vec::with_capacity(IMAGES_PER_PART);
    for image in visit_images(visits) {
        current.push(PartImage {
            store_id: image.store_id.to_owned(),
            url: image.url.to_owned(),
        });
        if current.len() == IMAGES_PER_PART {
            parts.push(std::mem::replace(&mut current, Vec::with_capacity(IMAGES_PER_PART)));
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// One image of an image job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Position among all the job's images.
    pub index: usize,
    pub store_id: &'a str,
    pub url: &'a str,
}
