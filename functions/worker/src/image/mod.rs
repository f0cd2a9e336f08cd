//! Retail Pulse image jobs as an SQS pipeline.
//!
//! 1. The job's own message (no `part`) starts a run and fans out: one message per part of
//!    [`shared::job::IMAGES_PER_PART`] images, on the job's priority queue, so that many worker
//!    invocations share a big job. A redelivery of it sends the parts again; that is harmless.
//!    A payload kept in S3 (the claim check, [`shared::payloads`]) is loaded once, here, and
//!    each part message carries its own images; a payload that changed fails the job for good.
//! 2. Each part message measures the images it carries (a message from before parts carried
//!    them reads its part from the payload) (store check against the store master, header-only
//!    fetch, perimeter) and records the part once (`store::parts`). Every failure of an image is
//!    that store's error; only storage failures leave the message on the queue.
//! 3. The delivery that brings the count of distinct parts to the total, or any later duplicate,
//!    sums the parts up and finishes the job: `completed`, or `failed` with each store's error, the
//!    successful results kept either way.

pub mod fetch;
pub mod guard;
pub mod store_master;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::image::store_master::StoreMaster;
use shared::clock;
use shared::error::Error;
use shared::images::{ImageResult, PartResult, StoreError, summarize};
use shared::job::{ClaimRefused, ImagePayload, ImageRef, Job, JobKind, PartImage, Visit, all_parts, visit_part};
use shared::metrics::{self, Dims, Metric};
use shared::payloads::Payloads;
use shared::queue::{JobMessage, JobQueue};
use shared::store::{JobStore, PartStore};

use crate::handler::RecordError;
use fetch::{FetchError, Fetcher};

tokio::task_local! {
    /// When the current invocation must have answered (set by [`crate::handler::Worker::handle_within`]
    /// from the Lambda context).
    pub static DEADLINE: Instant;
}

/// Time kept back before the deadline to record what was measured.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);
/// Less time than this left when an invocation starts is not a real deadline.
const LEAST_REAL_DEADLINE: Duration = Duration::from_secs(15);

/// The deadline of an invocation with `remaining` time left: `None` when it leaves almost nothing
/// at the start, which is no real one (emulators send odd values: `cargo lambda watch` a moment
/// of 1970, so `remaining` is zero).
pub fn invocation_deadline(remaining: Duration) -> Option<Instant> {
    (remaining > LEAST_REAL_DEADLINE).then(|| Instant::now() + remaining)
}

/// Why one image was not measured. Its text becomes the store's error on the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("unknown store_id {0}")]
    UnknownStore(String),
    /// The invocation's deadline came first (see [`DEADLINE`]).
    #[error("not measured: the worker ran out of time")]
    OutOfTime,
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// The outcome of measuring one part: its result, and how many of its images the invocation
/// ran out of time for (those are in `result.errors` too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measured {
    pub result: PartResult,
    pub out_of_time: usize,
}

/// Everything an image job needs.
pub struct ImageJobs {
    pub store: Arc<dyn JobStore>,
    pub parts: Arc<dyn PartStore>,
    pub queue: Arc<dyn JobQueue>,
    pub fetcher: Fetcher,
    pub stores: Arc<StoreMaster>,
    /// The seed's simulated GPU time per image, `(min, max)` milliseconds (`IMAGE_GPU_DELAY_MS`,
    /// e.g. `100-400`); off by default.
    pub gpu_delay: Option<(u64, u64)>,
    /// Where payloads over the inline size are (`None`: every payload is inline, tests).
    pub payloads: Option<Arc<dyn Payloads>>,
}

impl ImageJobs {
    /// With the bundled store master and no simulated GPU time (override the fields as needed).
    pub fn new(
        store: Arc<dyn JobStore>,
        parts: Arc<dyn PartStore>,
        queue: Arc<dyn JobQueue>,
        fetcher: Fetcher,
    ) -> Self {
        ImageJobs {
            store,
            parts,
            queue,
            fetcher,
            stores: StoreMaster::bundled(),
            gpu_delay: None,
            payloads: None,
        }
    }

    /// Reads payloads kept in S3 from `payloads`.
    pub fn with_payloads(mut self, payloads: Arc<dyn Payloads>) -> Self {
        self.payloads = Some(payloads);
        self
    }

    /// The visits of `payload`: inline, or loaded from S3 (checked against its sha256 and ETag).
    async fn visits(&self, payload: &ImagePayload) -> shared::Result<Vec<Visit>> {
        match (&payload.stored, &self.payloads) {
            (None, _) => Ok(payload.visits.clone()),
            (Some(stored), Some(payloads)) => payloads.load(stored).await,
            (Some(stored), None) => Err(Error::Internal(format!(
                "image job payload in s3://{}/{} but no payload store configured",
                stored.bucket, stored.key
            ))),
        }
    }

    /// Ends run `run` as failed with `error` (a payload that no retry can read).
    async fn fail_run(&self, job: &Job, run: &str, error: &Error) -> Result<(), RecordError> {
        let (result, _) = summarize(&[]);
        let error = error.to_string();
        tracing::error!(job_id = %job.id, %error, "image job payload unusable; failed");
        self.store
            .modify(job.id, &mut |j| {
                if j.run_key().as_deref() == Some(run) {
                    j.finish_parts(run, &result, Some(error.clone()), clock::now())
                } else {
                    Ok(())
                }
            })
            .await?;
        Ok(())
    }

    /// Handles one message of image job `job`: the fan-out (no `part`) or one part.
    /// `last_delivery`: SQS will not deliver this message again (its receive count reached
    /// `maxReceiveCount`), so a part the invocation ran out of time for is recorded as it stands.
    pub async fn handle(
        &self,
        job: Job,
        payload: &ImagePayload,
        message: &JobMessage,
        last_delivery: bool,
    ) -> Result<(), RecordError> {
        match message.part {
            None => self.fan_out(job, payload).await,
            Some(part) => self.run_part(job, payload, part, message, last_delivery).await,
        }
    }

    async fn fan_out(&self, job: Job, payload: &ImagePayload) -> Result<(), RecordError> {
        let parts = payload.part_count();
        let mut refused = None;
        let started = self
            .store
            .modify(job.id, &mut |j| {
                j.start_parts(parts, clock::now()).map(|_| ()).map_err(|r| {
                    refused = Some(r);
                    Error::Conflict("run refused".into())
                })
            })
            .await;
        let job = match (started, refused) {
            (Ok(job), _) => job,
            (Err(_), Some(ClaimRefused::Finished(status))) => {
                tracing::info!(job_id = %job.id, %status, "image job already finished; acknowledged");
                return Ok(());
            }
            (Err(e), _) => return Err(e.into()),
        };
        let visits = match self.visits(payload).await {
            Ok(visits) => visits,
            Err(e) if !e.is_transient() && !matches!(e, Error::Internal(_)) => {
                let run = job.run_key().unwrap_or_default();
                return self.fail_run(&job, &run, &e).await;
            }
            Err(e) => return Err(e.into()),
        };
        let images = all_parts(&visits);
        if images.len() != parts as usize {
            let e = Error::Corrupt(format!(
                "payload changed: {parts} parts counted, {} found",
                images.len()
            ));
            return self.fail_run(&job, &job.run_key().unwrap_or_default(), &e).await;
        }
        let messages: Vec<JobMessage> = images
            .into_iter()
            .enumerate()
            .map(|(part, images)| JobMessage {
                job_id: job.id,
                part: Some(part as u32),
                run: job.run_key(),
                images: Some(images),
            })
            .collect();
        self.queue.send_all(&messages, job.priority).await?;
        tracing::info!(job_id = %job.id, parts, images = payload.image_count(), "image job fanned out");
        Ok(())
    }

    async fn run_part(
        &self,
        job: Job,
        payload: &ImagePayload,
        part: u32,
        message: &JobMessage,
        last_delivery: bool,
    ) -> Result<(), RecordError> {
        let message_run = message.run.as_deref();
        let Some(run) = job.run_key() else {
            // Finished, or queued again by a retry whose own message will fan out afresh.
            tracing::info!(job_id = %job.id, part, status = %job.status, "part of a job not running; acknowledged");
            return Ok(());
        };
        if message_run.is_some_and(|r| r != run) {
            tracing::info!(job_id = %job.id, part, "part of an earlier run; acknowledged");
            return Ok(());
        }
        let loaded;
        let images: Vec<ImageRef<'_>> = match (&message.images, payload.inline_visits()) {
            (Some(carried), _) => refs(part, carried),
            (None, Some(visits)) => visit_part(visits, part),
            (None, None) => {
                // A message from before parts carried their images: read the part from S3.
                loaded = match self.visits(payload).await {
                    Ok(visits) => visits,
                    Err(e) if !e.is_transient() && !matches!(e, Error::Internal(_)) => {
                        return self.fail_run(&job, &run, &e).await;
                    }
                    Err(e) => return Err(e.into()),
                };
                visit_part(&loaded, part)
            }
        };
        if images.is_empty() {
            tracing::warn!(job_id = %job.id, part, "part past the job's last image; acknowledged");
            return Ok(());
        }
        let Measured { result, out_of_time } = self.measure(part, &images).await;
        if out_of_time > 0 && !last_delivery {
            // Leave the message: a later delivery measures the part afresh.
            return Err(RecordError::OutOfTime {
                part,
                images: out_of_time,
            });
        }
        let total = payload.part_count();
        let recorded = self.parts.record(job.id, &run, &result).await?;
        tracing::info!(
            job_id = %job.id, part, done = recorded.done, total, first = recorded.first,
            images = result.images.len(), errors = result.errors.len(), "part recorded"
        );
        if recorded.done >= total {
            self.finish(&job, &run).await
        } else {
            // Progress in steps of 10 %: every part rewriting the job item would make it hot.
            let step = |done: u32| u64::from(done) * 10 / u64::from(total.max(1));
            if recorded.first && step(recorded.done) > step(recorded.done - 1) {
                let progress = self
                    .store
                    .modify(job.id, &mut |j| {
                        j.part_progress(&run, recorded.done, total, clock::now())
                    })
                    .await;
                // Only the progress bar lags either way: the part is recorded, the finisher sets 100 %.
                match progress {
                    Ok(_) => {}
                    // The run ended meanwhile (another delivery finished it, or a retry replaced it).
                    Err(Error::Conflict(e)) => {
                        tracing::debug!(job_id = %job.id, part, error = %e, "progress of an ended run")
                    }
                    Err(e) => tracing::warn!(job_id = %job.id, part, error = %e, "progress not recorded"),
                }
            }
            Ok(())
        }
    }

    /// Sums up every part of the run and ends the job (a concurrent finisher makes this a no-op).
    async fn finish(&self, job: &Job, run: &str) -> Result<(), RecordError> {
        let parts = self.parts.list(job.id, run).await?;
        let (result, error) = summarize(&parts);
        let finished = self
            .store
            .modify(job.id, &mut |j| {
                if j.run_key().as_deref() == Some(run) {
                    j.finish_parts(run, &result, error.clone(), clock::now())
                } else {
                    Ok(()) // already finished by another delivery
                }
            })
            .await?;
        tracing::info!(job_id = %job.id, status = %finished.status, "image job finished");
        Ok(())
    }

    /// Measures the images of one part, each with its store check, at the fetcher's concurrency.
    pub async fn measure(&self, part: u32, images: &[ImageRef<'_>]) -> Measured {
        let outcomes = futures::future::join_all(images.iter().map(|image| self.measure_one(*image))).await;
        let mut measured = Measured {
            result: PartResult {
                part,
                ..PartResult::default()
            },
            out_of_time: 0,
        };
        let dims = Dims::Kind(JobKind::Image.as_str());
        for (image, outcome) in images.iter().zip(outcomes) {
            match outcome {
                Ok(result) => {
                    metrics::put(dims, Metric::ImageUrlsMeasured, 1.0);
                    metrics::put(dims, Metric::ImageBytes, result.bytes_read as f64);
                    measured.result.images.push(result)
                }
                Err(error) => {
                    metrics::put(dims, Metric::ImageUrlsFailed, 1.0);
                    if error == ImageError::OutOfTime {
                        measured.out_of_time += 1;
                    }
                    measured.result.errors.push(StoreError {
                        store_id: image.store_id.to_owned(),
                        url: Some(image.url.to_owned()),
                        error: error.to_string(),
                    });
                }
            }
        }
        measured
    }

    async fn measure_one(&self, image: ImageRef<'_>) -> Result<ImageResult, ImageError> {
        if self.stores.get(image.store_id).is_none() {
            return Err(ImageError::UnknownStore(image.store_id.to_owned()));
        }
        let fetch = self.fetcher.dimensions(image.url);
        let size = match DEADLINE.try_with(|d| *d) {
            Ok(deadline) => tokio::time::timeout_at(deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline), fetch)
                .await
                .map_err(|_| ImageError::OutOfTime)?,
            Err(_) => fetch.await,
        }?;
        if let Some((min, max)) = self.gpu_delay {
            let ms = if max > min { rand::random_range(min..=max) } else { min };
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(ImageResult::new(
            image.store_id,
            image.url,
            size.width,
            size.height,
            size.bytes_read,
        ))
    }
}

/// The images a part message carries, numbered from the part's first image.
fn refs(part: u32, images: &[PartImage]) -> Vec<ImageRef<'_>> {
    let first = part as usize * shared::job::IMAGES_PER_PART;
    images
        .iter()
        .enumerate()
        .map(|(i, image)| ImageRef {
            index: first + i,
            store_id: &image.store_id,
            url: &image.url,
        })
        .collect()
}

/// Parses `IMAGE_GPU_DELAY_MS`: `""` (off), `"250"` or `"100-400"`.
pub fn parse_gpu_delay(value: &str) -> shared::Result<Option<(u64, u64)>> {
    let value = value.trim();
    if value.is_empty() || value == "0" {
        return Ok(None);
    }
    let bad = || {
        Error::Internal(format!(
            "IMAGE_GPU_DELAY_MS={value:?}: expected milliseconds like 250 or 100-400"
        ))
    };
    let (min, max) = match value.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let ms = value.parse().map_err(|_| bad())?;
            (ms, ms)
        }
    };
    if min > max {
        return Err(bad());
    }
    Ok(Some((min, max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_that_leaves_almost_nothing_at_the_start_is_none() {
        assert_eq!(invocation_deadline(Duration::ZERO), None, "cargo lambda watch's 1970");
        assert_eq!(invocation_deadline(Duration::from_secs(15)), None);
        let deadline = invocation_deadline(Duration::from_secs(60)).unwrap();
        let left = deadline - Instant::now();
        assert!(
            left > Duration::from_secs(59) && left <= Duration::from_secs(60),
            "{left:?}"
        );
    }

    #[test]
    fn the_gpu_delay_knob_takes_a_value_or_a_range() {
        assert_eq!(parse_gpu_delay("").unwrap(), None);
        assert_eq!(parse_gpu_delay("0").unwrap(), None);
        assert_eq!(parse_gpu_delay("250").unwrap(), Some((250, 250)));
        assert_eq!(parse_gpu_delay("100-400").unwrap(), Some((100, 400)));
        assert!(parse_gpu_delay("400-100").is_err());
        assert!(parse_gpu_delay("fast").is_err());
    }
}
