//! A job's identity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::{NoContext, Timestamp, Uuid};

use crate::error::{Error, Result};
use crate::limits;

/// A job's identity: a UUID (v7, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// An id whose time stamp is `t` to the millisecond, the rest random. A job's id is made from
    /// its `created_at`, so the id order and the listings' order (`<created_at>#<id>` sort keys)
    /// are the same order, also between jobs created within one millisecond.
    pub fn at(t: OffsetDateTime) -> Self {
        let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
        let (seconds, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let seconds = u64::try_from(seconds).unwrap_or(0);
        JobId(Uuid::new_v7(Timestamp::from_unix(
            NoContext,
            seconds,
            millis as u32 * 1_000_000,
        )))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(JobId)
            .map_err(|_| Error::Invalid(format!("not a job id: {}", limits::quote(s))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn millis(id: JobId) -> u64 {
        let (s, n) = id.0.get_timestamp().expect("a v7 id").to_unix();
        s * 1000 + u64::from(n) / 1_000_000
    }

    #[test]
    fn an_id_made_at_a_time_carries_that_millisecond_and_sorts_by_it() {
        let t = datetime!(2026-12-01 09:30:15.123_456 UTC);
        let id = JobId::at(t);
        assert_eq!(millis(id), 1_796_117_415_123);
        assert_eq!(id.0.get_version_num(), 7);
        let later = JobId::at(datetime!(2026-12-01 09:30:15.124 UTC));
        for _ in 0..100 {
            assert!(JobId::at(t) < later);
        }
        assert_ne!(JobId::at(t), JobId::at(t), "the rest is random");
    }
}
