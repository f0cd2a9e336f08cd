//! Where a job is in its life: the statuses, the one table of legal moves, and the moves an
//! operator may make by hand.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits;

/// Where a job is in its life. Legal moves are in [`JobStatus::can_become`] and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// No worker will touch a job in this state again (a failed job can still be retried by hand).
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The moves an operator may make by hand (`PUT /jobs/{id}/status`, admins): retry a failed
    /// job or send a pending one, end one that will not finish, cancel one not yet started.
    /// `completed` comes only with a worker's result, `processing` only with a worker's claim.
    pub fn operator_moves(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Pending => &[Queued, Failed, Cancelled],
            Queued => &[Failed, Cancelled],
            Processing => &[Failed],
            Failed => &[Queued],
            Completed | Cancelled => &[],
        }
    }

    /// The state machine: the one place that says which moves are legal.
    pub fn can_become(self, to: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, to),
            (Pending, Queued)
                | (Pending | Queued, Processing)
                | (Processing, Completed | Failed | Queued)
                | (Pending | Queued, Cancelled)
                | (Pending | Queued, Failed)
                | (Failed, Queued)
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown status {}; expected one of pending, queued, processing, completed, failed, cancelled",
                limits::quote(s)
            ))
        })
    }
}
