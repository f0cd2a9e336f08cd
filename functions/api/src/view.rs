//! How a job is answered: [`JobView`] is the stored [`Job`] plus `type` (the name seed 001's
//! clients read) next to `kind`, in every answer that carries a job. Lists leave out the
//! `timeline` (one job's page has it) and stop before Lambda's 6 MB response limit.
//! [`SeedJob`] is seed 002's camelCase shape for `/api/jobs`.

use serde::Serialize;
use serde::ser::Error as _;
use serde_json::Value;
use shared::job::{Job, JobKind, JobStatus};
use time::OffsetDateTime;

/// Bytes of jobs one list answer carries at most: under Lambda's 6 MB response limit, with room
/// for the envelope and the gateway's encoding.
pub const LIST_MAX_BYTES: usize = 5 * 1024 * 1024;

/// A job as the API answers it: every field of [`Job`], and `type` (the same value as `kind`).
#[derive(Debug, Clone)]
pub struct JobView<'a> {
    pub job: &'a Job,
    /// `false` in lists: the timeline is left out.
    pub timeline: bool,
    /// Why the job is past its bound (the sweeper's rule), on one job's answer: `past_bound`.
    pub past_bound: Option<String>,
}

impl<'a> JobView<'a> {
    /// The whole job (one job's answer).
    pub fn full(job: &'a Job) -> Self {
        JobView {
            job,
            timeline: true,
            past_bound: None,
        }
    }

    /// The whole job, flagged when it is past its bound ([`shared::sweep::past_bound`]).
    pub fn flagged(job: &'a Job, bounds: &shared::sweep::Bounds, now: OffsetDateTime) -> Self {
        JobView {
            past_bound: shared::sweep::past_bound(job, now, bounds),
            ..JobView::full(job)
        }
    }

    /// A list's entry: without the timeline.
    pub fn listed(job: &'a Job) -> Self {
        JobView {
            job,
            timeline: false,
            past_bound: None,
        }
    }

    /// The view as a JSON object.
    pub fn to_value(&self) -> serde_json::Result<Value> {
        let mut v = serde_json::to_value(self.job)?;
        let Some(map) = v.as_object_mut() else {
            return Err(serde_json::Error::custom("a job serializes to an object"));
        };
        map.insert("type".into(), Value::String(self.job.kind().as_str().into()));
        if !self.timeline {
            map.remove("timeline");
        }
        if let Some(why) = &self.past_bound {
            map.insert("past_bound".into(), Value::String(why.clone()));
        }
        Ok(v)
    }
}

/// `JobView`'s schema: [`Job`]'s, and `type`. By hand because the view serializes through
/// [`JobView::to_value`] (the job's own fields, whatever they are, plus one).
impl utoipa::PartialSchema for JobView<'_> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder};
        use utoipa::openapi::{Ref, RefOr};
        let kind_ref = RefOr::Ref(Ref::from_schema_name(JobKind::name()));
        AllOfBuilder::new()
            .item(Ref::from_schema_name(Job::name()))
            .item(
                ObjectBuilder::new()
                    .property(
                        "type",
                        AllOfBuilder::new()
                            .item(kind_ref)
                            .description(Some("Same as kind (seed 001's name)")),
                    )
                    .required("type")
                    .property(
                        "past_bound",
                        ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .description(Some(
                                "One job's answer: why it is past its bound (the sweeper acts on it at its next run); absent within its bounds",
                            )),
                    ),
            )
            .description(Some("A job as the API answers it; lists leave out `timeline`"))
            .into()
    }
}

impl utoipa::ToSchema for JobView<'_> {
    fn name() -> std::borrow::Cow<'static, str> {
        "JobView".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((Job::name().into(), Job::schema()));
        Job::schemas(schemas);
        schemas.push((JobKind::name().into(), JobKind::schema()));
    }
}

impl Serialize for JobView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().map_err(S::Error::custom)?.serialize(serializer)
    }
}

/// A job's summary fields: a row of the console's list (`GET /jobs?view=summary`); the whole job
/// is `GET /jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: shared::job::JobId,
    pub kind: JobKind,
    /// Same as kind (seed 001's name).
    #[serde(rename = "type")]
    pub kind_alias: JobKind,
    pub status: JobStatus,
    pub priority: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: shared::job::Progress,
    #[serde(with = "shared::clock::serde_ts")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "shared::clock::serde_ts")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "shared::clock::serde_ts::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_for: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<shared::auth::Owner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind's main key: an archive's asset id, an ingest's file name, an image job's first
    /// store id (`S1 +2` when it has more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Bumped by every write (the console redraws a row when it changes).
    pub version: u64,
    /// Why the job is past its bound (the sweeper's rule: it acts on it at its next run);
    /// absent while it is within its bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub past_bound: Option<String>,
}

impl JobSummary {
    pub fn of(job: &Job) -> JobSummary {
        use shared::job::JobSpec;
        let key = match &job.spec {
            JobSpec::Archive(p) => Some(p.asset_id.clone()),
            JobSpec::LogIngest(p) if !p.file_name.is_empty() => Some(p.file_name.clone()),
            JobSpec::LogIngest(p) => p.key.rsplit('/').next().map(str::to_string),
            JobSpec::Image(p) => {
                let mut stores: Vec<&str> = p.visits.iter().map(|v| v.store_id.as_str()).collect();
                stores.dedup();
                stores.first().map(|first| match stores.len() {
                    1 => first.to_string(),
                    n => format!("{first} +{}", n - 1),
                })
            }
            _ => None,
        };
        JobSummary {
            id: job.id,
            kind: job.kind(),
            kind_alias: job.kind(),
            status: job.status,
            priority: job.priority,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            progress: job.progress.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            scheduled_for: job.scheduled_for,
            owner: job.owner.clone(),
            error: job.error.clone(),
            key,
            version: job.version,
            past_bound: None,
        }
    }

    /// [`JobSummary::of`], flagged when the job is past its bound.
    pub fn flagged(job: &Job, bounds: &shared::sweep::Bounds, now: OffsetDateTime) -> JobSummary {
        JobSummary {
            past_bound: shared::sweep::past_bound(job, now, bounds),
            ..JobSummary::of(job)
        }
    }
}

/// Seed 002's job (`GET /api/jobs/{id}`): `{id, type, status, createdAt, updatedAt}`, plus
/// `error` and `result` when set. Its clients know four statuses: `queued` (waiting again) reads
/// as `pending`, `cancelled` as `failed` with `error: "cancelled"`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedJob {
    #[schema(format = Uuid)]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// `pending`, `processing`, `completed` or `failed` (see [`SeedJob::status_name`]).
    #[schema(value_type = String, pattern = "^(pending|processing|completed|failed)$")]
    pub status: &'static str,
    #[serde(with = "shared::clock::serde_ts")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "shared::clock::serde_ts")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<shared::job::JobResult>)]
    pub result: Option<Value>,
}

impl SeedJob {
    /// The four statuses of seed 002's state machine.
    pub fn status_name(status: JobStatus) -> &'static str {
        match status {
            JobStatus::Pending | JobStatus::Queued => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed | JobStatus::Cancelled => "failed",
        }
    }

    pub fn of(job: &Job) -> SeedJob {
        let error = match job.status {
            JobStatus::Cancelled => Some("cancelled".to_string()),
            _ => job.error.clone(),
        };
        SeedJob {
            id: job.id.to_string(),
            kind: job.kind(),
            status: Self::status_name(job.status),
            created_at: job.created_at,
            updated_at: job.updated_at,
            error,
            result: job.result.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::job::JobSpec;

    fn job() -> Job {
        let spec = JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap();
        Job::new(spec, 3, None, shared::clock::now()).unwrap()
    }

    #[test]
    fn a_view_has_every_field_of_the_job_and_type_next_to_kind() {
        let job = job();
        let plain = serde_json::to_value(&job).unwrap();
        let view = serde_json::to_value(JobView::full(&job)).unwrap();
        for (k, v) in plain.as_object().unwrap() {
            assert_eq!(&view[k], v, "{k}");
        }
        assert_eq!(view["type"], "archive");
        assert_eq!(view["kind"], "archive");
        let listed = serde_json::to_value(JobView::listed(&job)).unwrap();
        assert!(listed.get("timeline").is_none());
        assert_eq!(listed["type"], "archive");
        assert_eq!(listed.as_object().unwrap().len(), view.as_object().unwrap().len() - 1);
    }

    #[test]
    fn seed_002_sees_four_statuses_and_a_cancelled_job_as_failed() {
        let got: Vec<&str> = JobStatus::ALL.iter().map(|s| SeedJob::status_name(*s)).collect();
        assert_eq!(
            got,
            ["pending", "pending", "processing", "completed", "failed", "failed"]
        );
        let mut j = job();
        j.cancel(shared::clock::now()).unwrap();
        let v = serde_json::to_value(SeedJob::of(&j)).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "cancelled");
        assert_eq!(v["type"], "archive");
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["createdAt", "error", "id", "status", "type", "updatedAt"]);
    }
}
