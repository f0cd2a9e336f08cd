//! Retail Pulse's image job: store visits, each with image URLs the worker measures.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::limits::{self, check_len};

/// Images per SQS message of an image job, so that many worker invocations share a big job.
pub const IMAGES_PER_PART: usize = 25;
/// The most images one image job may hold (its payload lives in one DynamoDB item).
pub const MAX_IMAGES_PER_JOB: usize = 5_000;
/// The most bytes an image job's payload may take as JSON (DynamoDB items stop at 400 KB).
pub const MAX_IMAGE_PAYLOAD_BYTES: usize = 256 * 1024;

/// Retail Pulse's submission, kept in its public shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImagePayload {
    pub count: usize,
    pub visits: Vec<Visit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
