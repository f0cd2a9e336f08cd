//! Limits per owner: jobs in flight, image URLs per hour, upload bytes per day.
//!
//! A limit is checked in the same DynamoDB transaction that creates the job (a conditional
//! counter update), so concurrent requests cannot together go past it, and a refused request
//! writes nothing. Over a limit the API answers 429 with `Retry-After` and the limit's name.

use time::{Duration, OffsetDateTime, Time};

use crate::auth::Owner;
use crate::error::{Error, Result};
use crate::job::{Job, JobSpec, JobStatus};

/// The per-owner limits a deployment sets (`QUOTA_*` variables; 0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Jobs `pending`, `queued` or `processing` at once (`QUOTA_JOBS_IN_FLIGHT`).
    pub jobs_in_flight: u64,
    /// Image URLs submitted per clock hour (`QUOTA_IMAGE_URLS_PER_HOUR`).
    pub image_urls_per_hour: u64,
    /// Bytes uploaded or announced for presigned uploads per UTC day (`QUOTA_UPLOAD_BYTES_PER_DAY`).
    pub upload_bytes_per_day: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            jobs_in_flight: 1_000,
            image_urls_per_hour: 250_000,
            upload_bytes_per_day: 50 * 1024 * 1024 * 1024,
        }
    }
}

impl Quotas {
    /// No limits at all (tests, tools).
    pub const NONE: Quotas = Quotas {
        jobs_in_flight: 0,
        image_urls_per_hour: 0,
        upload_bytes_per_day: 0,
    };

    pub fn from_env() -> Result<Quotas> {
        let d = Quotas::default();
        Ok(Quotas {
            jobs_in_flight: crate::settings::optional("QUOTA_JOBS_IN_FLIGHT", d.jobs_in_flight)?,
            image_urls_per_hour: crate::settings::optional("QUOTA_IMAGE_URLS_PER_HOUR", d.image_urls_per_hour)?,
            upload_bytes_per_day: crate::settings::optional("QUOTA_UPLOAD_BYTES_PER_DAY", d.upload_bytes_per_day)?,
        })
    }

    /// What creating `job` charges against its owner's limits; none for a job without owner.
    /// A single request larger than a whole limit is refused here, without a store call.
    pub fn charges(&self, job: &Job, now: OffsetDateTime) -> Result<Vec<Charge>> {
        let Some(owner) = &job.owner else {
            return Ok(Vec::new());
        };
        let mut charges = Vec::new();
        if self.jobs_in_flight > 0 && job.status == JobStatus::Pending {
            charges.push(Charge::new(owner, Limit::JobsInFlight, 1, self.jobs_in_flight, now));
        }
        match &job.spec {
            JobSpec::Image(p) if self.image_urls_per_hour > 0 => charges.push(Charge::new(
                owner,
                Limit::ImageUrlsPerHour,
                p.image_count() as u64,
                self.image_urls_per_hour,
                now,
            )),
            JobSpec::LogIngest(p) if self.upload_bytes_per_day > 0 => charges.push(Charge::new(
                owner,
                Limit::UploadBytesPerDay,
                p.size,
                self.upload_bytes_per_day,
                now,
            )),
            _ => {}
        }
        for c in &charges {
            if c.amount > c.max {
                return Err(c.exceeded());
            }
        }
        Ok(charges)
    }
}

/// The limits there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    JobsInFlight,
    ImageUrlsPerHour,
    UploadBytesPerDay,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::JobsInFlight => "jobs_in_flight",
            Limit::ImageUrlsPerHour => "image_urls_per_hour",
            Limit::UploadBytesPerDay => "upload_bytes_per_day",
        }
    }
}

/// One amount to add to one owner's use of one limit, in the window it falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub owner: Owner,
    pub limit: Limit,
    pub amount: u64,
    pub max: u64,
    /// The window's key (`2026-11-30T15` for an hour, `2026-11-30` for a day); `None` for
    /// jobs in flight, which the owner's counters hold.
    pub window: Option<String>,
    /// When the window ends (the counter item expires a day later).
    pub window_end: OffsetDateTime,
    /// Seconds until trying again can succeed.
    pub retry_after: u64,
}

impl Charge {
    fn new(owner: &Owner, limit: Limit, amount: u64, max: u64, now: OffsetDateTime) -> Charge {
        let (window, window_end) = match limit {
            Limit::JobsInFlight => (None, now),
            Limit::ImageUrlsPerHour => {
                let start = now.replace_time(Time::from_hms(now.hour(), 0, 0).expect("a valid hour"));
                (
                    Some(format!("{}T{:02}", now.date(), now.hour())),
                    start + Duration::hours(1),
                )
            }
            Limit::UploadBytesPerDay => (
                Some(now.date().to_string()),
                now.replace_time(Time::MIDNIGHT) + Duration::days(1),
            ),
        };
        let retry_after = match window {
            None => 30,
            Some(_) => (window_end - now).whole_seconds().max(1) as u64,
        };
        Charge {
            owner: owner.clone(),
            limit,
            amount,
            max,
            window,
            window_end,
            retry_after,
        }
    }

    /// The refusal when this charge does not fit.
    pub fn exceeded(&self) -> Error {
        let what = match self.limit {
            Limit::JobsInFlight => format!("at most {} jobs may be pending, queued or processing at once", self.max),
            Limit::ImageUrlsPerHour => format!("at most {} image URLs may be submitted per hour", self.max),
            Limit::UploadBytesPerDay => format!("at most {} bytes may be uploaded per day", self.max),
        };
        Error::Limited {
            limit: self.limit.name(),
            message: format!("limit {} reached: {what}", self.limit.name()),
            retry_after: self.retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(h: u8, m: u8) -> OffsetDateTime {
        time::macros::datetime!(2026-11-30 00:00 UTC).replace_time(Time::from_hms(h, m, 0).unwrap())
    }

    fn owned(kind: &str, payload: serde_json::Value) -> Job {
        let spec = JobSpec::from_json(kind, payload).unwrap();
        Job::new(spec, 3, None, at(15, 20))
            .unwrap()
            .owned_by(Owner::parse("alice").unwrap())
    }

    #[test]
    fn each_kind_charges_what_it_uses_in_its_window() {
        let q = Quotas::default();
        let archive = owned("archive", json!({"asset_id": "a", "source": "s3://b/uploads/alice/k"}));
        let c = q.charges(&archive, at(15, 20)).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].limit, c[0].amount, c[0].window.as_deref()),
            (Limit::JobsInFlight, 1, None)
        );

        let images = owned(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["https://x/a.jpg", "https://x/b.jpg"], "visit_time": "t"}]}),
        );
        let c = q.charges(&images, at(15, 20)).unwrap();
        assert_eq!(c[1].limit, Limit::ImageUrlsPerHour);
        assert_eq!((c[1].amount, c[1].window.as_deref()), (2, Some("2026-11-30T15")));
        assert_eq!(c[1].retry_after, 40 * 60);
    }

    #[test]
    fn a_request_bigger_than_the_whole_limit_is_refused_at_once() {
        let q = Quotas {
            image_urls_per_hour: 1,
            ..Quotas::default()
        };
        let images = owned(
            "image",
            json!({"count": 1, "visits": [{"store_id": "S1", "image_url": ["https://x/a.jpg", "https://x/b.jpg"], "visit_time": "t"}]}),
        );
        match q.charges(&images, at(23, 59)) {
            Err(Error::Limited { limit, retry_after, .. }) => {
                assert_eq!((limit, retry_after), ("image_urls_per_hour", 60))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jobs_without_owner_and_unlimited_deployments_charge_nothing() {
        let spec = JobSpec::from_json("archive", json!({"asset_id": "a", "source": "s3://b/k"})).unwrap();
        let job = Job::new(spec, 3, None, at(1, 0)).unwrap();
        assert!(Quotas::default().charges(&job, at(1, 0)).unwrap().is_empty());
        let owned = job.owned_by(Owner::parse("bob").unwrap());
        assert!(Quotas::NONE.charges(&owned, at(1, 0)).unwrap().is_empty());
    }
}
