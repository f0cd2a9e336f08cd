//! Live job updates over API Gateway's WebSocket API (issue #14).
//!
//! - [`JobUpdate`]: the one message shape a subscriber receives for every change of a job.
//! - [`connections`]: who is connected, as whom, and what each connection subscribed to
//!   (`ConnectionStore`: DynamoDB, and in memory for the fast tier).
//! - [`management`]: posting to a connection through the `@connections` Management API.
//! - [`fanout`]: one job change to every subscribed connection that may see the job; connections
//!   that answer 410 Gone are deleted.
//! - [`token`]: `$connect`'s token check (a WebSocket API has no JWT authorizer).

pub mod connections;
pub mod fanout;
pub mod management;
pub mod token;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::{Caller, Owner};
use crate::job::{Job, JobId, JobStatus};

/// The version of [`JobUpdate`]'s shape; bumped on any incompatible change.
pub const MESSAGE_VERSION: u32 = 1;

/// A change of a job, as pushed to subscribers (`"type": "job"`).
///
/// `text` carries Event Horizon's wording: `queued`, `started processing`, `N% complete`,
/// `completed: X stored, Y rejected` (or `completed` when the job counts nothing),
/// `failed: <error>`, `cancelled`. `job_version` grows with every write of the job: a client
/// that sees a version at or below one it already has drops the message (delivery is at least
/// once, and a retried stream batch may repeat a change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobUpdate {
    /// Always `job`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "job"))]
    pub kind_of_message: String,
    /// [`MESSAGE_VERSION`].
    pub version: u32,
    pub job_id: JobId,
    /// The job's kind (`archive`, `log_ingest`, `image`, ...).
    pub kind: String,
    pub status: JobStatus,
    /// Percent done, 0-100.
    pub progress: u8,
    /// The worker's own stage text (e.g. `40% complete (1200 lines)`).
    pub stage: String,
    /// Event Horizon's text for this change.
    pub text: String,
    /// What the job counted, when it counts lines (ingests): stored, rejected, read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    /// The job's write counter (see above).
    pub job_version: u64,
    #[serde(with = "crate::clock::serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

/// Counts of a job that stores lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub stored: u64,
    pub rejected: u64,
    pub read: u64,
}

impl JobUpdate {
    pub fn of(job: &Job) -> JobUpdate {
        let counts = job.result.as_ref().and_then(counts_of);
        JobUpdate {
            kind_of_message: "job".into(),
            version: MESSAGE_VERSION,
            job_id: job.id,
            kind: job.spec.kind().as_str().to_string(),
            status: job.status,
            progress: job.progress.percent,
            stage: job.progress.stage.clone(),
            text: text(job, counts),
            counts,
            error: job.error.clone(),
            attempts: job.attempts,
            job_version: job.version,
            updated_at: job.updated_at,
        }
    }

    /// True when a subscriber would see nothing new going from `self` to `other` (a lease
    /// renewal, a timeline note): the stream handler posts only changes that show.
    pub fn same_as(&self, other: &JobUpdate) -> bool {
        (
            self.status,
            self.progress,
            &self.stage,
            &self.counts,
            &self.error,
            self.attempts,
        ) == (
            other.status,
            other.progress,
            &other.stage,
            &other.counts,
            &other.error,
            other.attempts,
        )
    }
}

fn counts_of(result: &Value) -> Option<Counts> {
    let n = |k: &str| result.get(k).and_then(Value::as_u64);
    let (stored, rejected) = (n("lines_stored"), n("lines_rejected"));
    (stored.is_some() || rejected.is_some()).then(|| Counts {
        stored: stored.unwrap_or(0),
        rejected: rejected.unwrap_or(0),
        read: n("lines_read").unwrap_or(0),
    })
}

fn text(job: &Job, counts: Option<Counts>) -> String {
    match job.status {
        JobStatus::Pending | JobStatus::Queued => "queued".into(),
        JobStatus::Processing if job.progress.percent == 0 => "started processing".into(),
        JobStatus::Processing => format!("{}% complete", job.progress.percent),
        JobStatus::Completed => match counts {
            Some(c) => format!("completed: {} stored, {} rejected", c.stored, c.rejected),
            None => "completed".into(),
        },
        JobStatus::Failed => format!("failed: {}", job.error.as_deref().unwrap_or("no reason given")),
        JobStatus::Cancelled => "cancelled".into(),
    }
}

/// Who a connection belongs to: fixed at `$connect` from the verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub owner: Owner,
    pub admin: bool,
}

impl Viewer {
    pub fn of(caller: &Caller) -> Viewer {
        Viewer {
            owner: caller.owner.clone(),
            admin: caller.admin,
        }
    }

    /// The one rule of the fan-out: a job goes to its owner and to admins, never to anyone else.
    pub fn may_see(&self, job_owner: Option<&Owner>) -> bool {
        self.admin || job_owner == Some(&self.owner)
    }

    /// "Every job I may see": all jobs for an admin, the owner's own otherwise.
    pub fn all_topic(&self) -> Topic {
        if self.admin {
            Topic::All
        } else {
            Topic::Owner(self.owner.clone())
        }
    }
}

/// What a connection subscribes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// One job.
    Job(JobId),
    /// Every job of one owner (a user's "all my jobs").
    Owner(Owner),
    /// Every job (admins only).
    All,
}

impl Topic {
    /// The topics a change of a job owned by `owner` goes to.
    pub fn of_job(id: JobId, owner: Option<&Owner>) -> Vec<Topic> {
        let mut t = vec![Topic::Job(id)];
        if let Some(o) = owner {
            t.push(Topic::Owner(o.clone()));
        }
        t.push(Topic::All);
        t
    }

    /// Its key in the connections table.
    pub fn key(&self) -> String {
        match self {
            Topic::Job(id) => format!("job#{id}"),
            Topic::Owner(o) => format!("owner#{o}"),
            Topic::All => "all".into(),
        }
    }

    pub fn parse(key: &str) -> Option<Topic> {
        if key == "all" {
            return Some(Topic::All);
        }
        if let Some(id) = key.strip_prefix("job#") {
            return id.parse().ok().map(Topic::Job);
        }
        key.strip_prefix("owner#")
            .and_then(|o| Owner::parse(o).ok())
            .map(Topic::Owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Progress;

    fn ingest(status: JobStatus, percent: u8) -> Job {
        let spec = crate::job::JobSpec::from_json(
            "log_ingest",
            serde_json::json!({"bucket": "b", "key": "uploads/alice/a.jsonl"}),
        )
        .unwrap();
        let mut job = Job::new(spec, 3, None, crate::clock::now()).unwrap();
        job.status = status;
        job.progress = Progress {
            percent,
            stage: format!("{percent}% complete"),
        };
        job
    }

    #[test]
    fn event_horizon_texts() {
        assert_eq!(JobUpdate::of(&ingest(JobStatus::Queued, 0)).text, "queued");
        assert_eq!(
            JobUpdate::of(&ingest(JobStatus::Processing, 0)).text,
            "started processing"
        );
        assert_eq!(JobUpdate::of(&ingest(JobStatus::Processing, 40)).text, "40% complete");
        let mut done = ingest(JobStatus::Completed, 100);
        done.result = Some(serde_json::json!({"lines_read": 12, "lines_stored": 10, "lines_rejected": 2}));
        let u = JobUpdate::of(&done);
        assert_eq!(u.text, "completed: 10 stored, 2 rejected");
        assert_eq!(
            u.counts,
            Some(Counts {
                stored: 10,
                rejected: 2,
                read: 12
            })
        );
        let mut failed = ingest(JobStatus::Failed, 30);
        failed.error = Some("source missing".into());
        assert_eq!(JobUpdate::of(&failed).text, "failed: source missing");
    }

    #[test]
    fn the_message_is_versioned_json() {
        let v = serde_json::to_value(JobUpdate::of(&ingest(JobStatus::Processing, 50))).unwrap();
        assert_eq!(v["type"], "job");
        assert_eq!(v["version"], MESSAGE_VERSION);
        assert_eq!(v["status"], "processing");
        assert_eq!(v["progress"], 50);
        let back: JobUpdate = serde_json::from_value(v).unwrap();
        assert_eq!(back.progress, 50);
    }

    #[test]
    fn only_owner_and_admins_see_a_job() {
        let alice = Owner::parse("alice").unwrap();
        let bob = Owner::parse("bob").unwrap();
        let user = Viewer {
            owner: alice.clone(),
            admin: false,
        };
        assert!(user.may_see(Some(&alice)));
        assert!(!user.may_see(Some(&bob)));
        assert!(!user.may_see(None), "jobs without an owner are for admins only");
        let admin = Viewer {
            owner: bob,
            admin: true,
        };
        assert!(admin.may_see(Some(&alice)) && admin.may_see(None));
        assert_eq!(user.all_topic(), Topic::Owner(alice));
        assert_eq!(admin.all_topic(), Topic::All);
    }

    #[test]
    fn topics_round_trip() {
        let id = JobId::new();
        for t in [Topic::Job(id), Topic::Owner(Owner::parse("a.b").unwrap()), Topic::All] {
            assert_eq!(Topic::parse(&t.key()), Some(t));
        }
        assert_eq!(Topic::parse("job#nope"), None);
    }
}
