//! The `report` job's arithmetic, pure: jobs counted by (status, kind), with the spread of their
//! turnaround (created to completed) and run time (started to completed), in milliseconds.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::job::{Job, JobKind, JobStatus};

/// min, mean, median, 95th percentile (nearest rank) and max of some durations, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub min: i64,
    pub avg: i64,
    pub p50: i64,
    pub p95: i64,
    pub max: i64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(mut values: Vec<i64>) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let rank = |p: usize| values[(n * p).div_ceil(100).max(1) - 1];
        let sum: i128 = values.iter().map(|v| *v as i128).sum();
        Some(Spread {
            min: values[0],
            avg: (sum / n as i128) as i64,
            p50: rank(50),
            p95: rank(95),
            max: values[n - 1],
        })
    }
}

/// One (status, kind) line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub status: JobStatus,
    pub kind: JobKind,
    pub count: u64,
    /// Of the jobs with an end: created to completed.
    pub turnaround_ms: Option<Spread>,
    /// Of the jobs that started and ended: started to completed.
    pub run_ms: Option<Spread>,
}

/// The rows for `jobs`, by status then kind (in their declared order); only pairs with jobs.
pub fn aggregate<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> Vec<Row> {
    let mut groups: BTreeMap<(usize, usize), (u64, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for job in jobs {
        let status = JobStatus::ALL
            .iter()
            .position(|s| *s == job.status)
            .unwrap_or(usize::MAX);
        let kind = JobKind::ALL.iter().position(|k| *k == job.kind()).unwrap_or(usize::MAX);
        let group = groups.entry((status, kind)).or_default();
        group.0 += 1;
        if let Some(done) = job.completed_at {
            group.1.push((done - job.created_at).whole_milliseconds() as i64);
            if let Some(started) = job.started_at {
                group.2.push((done - started).whole_milliseconds() as i64);
            }
        }
    }
    groups
        .into_iter()
        .map(|((status, kind), (count, turnaround, run))| Row {
            status: JobStatus::ALL[status],
            kind: JobKind::ALL[kind],
            count,
            turnaround_ms: Spread::of(turnaround),
            run_ms: Spread::of(run),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::job::JobSpec;

    fn job(kind: &str, status: JobStatus, run_ms: Option<(i64, i64)>) -> Job {
        let payload = match kind {
            "email" => json!({"to": "a@b"}),
            _ => json!({"user_id": "u", "channel": "sms", "message": "m"}),
        };
        let created = datetime!(2026-11-01 9:00 UTC);
        let mut job = Job::new(JobSpec::from_json(kind, payload).unwrap(), 3, None, created).unwrap();
        job.status = status;
        if let Some((wait, run)) = run_ms {
            job.started_at = Some(created + Duration::milliseconds(wait));
            job.completed_at = Some(created + Duration::milliseconds(wait + run));
        }
        job
    }

    #[test]
    fn spreads_use_nearest_ranks() {
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(
            Spread::of(vec![5]),
            Some(Spread {
                min: 5,
                avg: 5,
                p50: 5,
                p95: 5,
                max: 5
            })
        );
        let hundred: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(
            Spread::of(hundred),
            Some(Spread {
                min: 1,
                avg: 50,
                p50: 50,
                p95: 95,
                max: 100
            })
        );
        assert_eq!(
            Spread::of(vec![10, 40, 20, 30]),
            Some(Spread {
                min: 10,
                avg: 25,
                p50: 20,
                p95: 40,
                max: 40
            })
        );
    }

    #[test]
    fn jobs_are_counted_by_status_and_kind_with_their_durations() {
        let jobs = [
            job("email", JobStatus::Completed, Some((100, 1000))),
            job("email", JobStatus::Completed, Some((300, 3000))),
            job("email", JobStatus::Failed, Some((0, 50))),
            job("notification", JobStatus::Completed, Some((10, 20))),
            job("notification", JobStatus::Queued, None),
        ];
        let rows = aggregate(&jobs);
        let lines: Vec<(JobStatus, JobKind, u64)> = rows.iter().map(|r| (r.status, r.kind, r.count)).collect();
        assert_eq!(
            lines,
            [
                (JobStatus::Queued, JobKind::Notification, 1),
                (JobStatus::Completed, JobKind::Email, 2),
                (JobStatus::Completed, JobKind::Notification, 1),
                (JobStatus::Failed, JobKind::Email, 1),
            ]
        );
        assert_eq!((rows[0].turnaround_ms, rows[0].run_ms), (None, None));
        assert_eq!(
            rows[1].turnaround_ms,
            Some(Spread {
                min: 1100,
                avg: 2200,
                p50: 1100,
                p95: 3300,
                max: 3300
            })
        );
        assert_eq!(
            rows[1].run_ms,
            Some(Spread {
                min: 1000,
                avg: 2000,
                p50: 1000,
                p95: 3000,
                max: 3000
            })
        );
        assert_eq!(rows[3].run_ms.map(|s| s.max), Some(50));
    }
}
