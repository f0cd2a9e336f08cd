//! The `report` job (seed 001): counts and durations of jobs by status and kind over a period
//! ([`shared::report::aggregate`]), written as CSV, JSON and a printable PDF to
//! `reports/<owner>/<job>/report.*` in the uploads bucket (fixed keys: a re-run overwrites), with
//! a presigned link to the format asked for in the result.
//!
//! The jobs are read through the status listings, newest first, until the period's start; more
//! than [`REPORT_MAX_JOBS`] in the period fails the job for good (narrow the range).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::auth::Scope;
use shared::clock;
use shared::job::{Job, JobResult, ReportFiles, ReportPayload, ReportPeriod, ReportResult, ReportScope};
use shared::objects::Objects;
use shared::report::{Row, Spread, aggregate};
use shared::store::{JobStore, ListFilter};

use crate::handler::ProcessError;

/// Most jobs one report reads.
pub const REPORT_MAX_JOBS: usize = 50_000;
/// Jobs a listing page holds.
const PAGE: usize = 500;

#[derive(Clone)]
pub struct Reporter {
    pub store: Arc<dyn JobStore>,
    pub objects: Arc<dyn Objects>,
    /// Where reports go (the uploads bucket).
    pub bucket: String,
    /// How long the result's link works (`REPORT_LINK_SECONDS`).
    pub link_ttl: Duration,
    pub max_jobs: usize,
}

impl Reporter {
    pub async fn run(&self, p: &ReportPayload, job: &Job) -> Result<JobResult, ProcessError> {
        let period = p.period().map_err(|e| ProcessError::Permanent(e.to_string()))?;
        // A report "of one's own" jobs by a job without an owner (AUTH=off) covers every job.
        let scope = match (p.scope, &job.owner) {
            (ReportScope::Own, Some(owner)) => Scope::Owner(owner.clone()),
            _ => Scope::All,
        };
        let filter = ListFilter {
            scope,
            ..ListFilter::default()
        };
        let mut jobs = Vec::new();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page = self
                .store
                .list(&filter, PAGE, cursor.as_deref())
                .await
                .map_err(|e| ProcessError::of("listing the jobs", &e))?;
            for j in page.jobs {
                if j.created_at < period.start {
                    break 'pages; // newest first: the rest is older still
                }
                if period.contains(j.created_at) && j.id != job.id {
                    if jobs.len() == self.max_jobs {
                        return Err(ProcessError::Permanent(format!(
                            "more than {} jobs in the period; narrow date_range",
                            self.max_jobs
                        )));
                    }
                    jobs.push(j);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let rows = aggregate(&jobs);
        let owner = job.owner.as_ref().map(|o| o.to_string()).unwrap_or_else(|| "_".into());
        let prefix = format!("reports/{owner}/{}", job.id);
        let period = ReportPeriod {
            start: period.start,
            end: period.end,
        };
        let document = json!({
            "report_type": p.report_type,
            "job_id": job.id,
            "generated_at": clock::format(clock::now()),
            "period": period,
            "scope": p.scope,
            "jobs": jobs.len(),
            "rows": rows,
        });
        let files = [
            ("csv", csv(&rows), "text/csv; charset=utf-8"),
            (
                "json",
                serde_json::to_vec_pretty(&document).map_err(|e| ProcessError::Permanent(e.to_string()))?,
                "application/json",
            ),
            (
                "pdf",
                pdf(&p.report_type, &period, p.scope, jobs.len(), &rows),
                "application/pdf",
            ),
        ];
        for (ext, bytes, content_type) in files {
            let key = format!("{prefix}/report.{ext}");
            self.objects
                .put_object(&self.bucket, &key, bytes, content_type)
                .await
                .map_err(|error| {
                    tracing::warn!(%key, %error, "writing the report failed");
                    object_error(&format!("writing {key}"), error)
                })?;
        }
        let wanted = format!("{prefix}/report.{}", p.format.extension());
        let (url, expires_at) = self
            .objects
            .presign_get(&self.bucket, &wanted, self.link_ttl)
            .await
            .map_err(|error| object_error("signing the link", error))?;
        Ok(ReportResult {
            report_type: p.report_type.clone(),
            period,
            scope: p.scope,
            jobs: jobs.len() as u64,
            rows: rows.len() as u64,
            files: ReportFiles {
                bucket: self.bucket.clone(),
                csv: format!("{prefix}/report.csv"),
                json: format!("{prefix}/report.json"),
                pdf: Some(format!("{prefix}/report.pdf")),
            },
            download_url: url,
            download_expires_at: expires_at,
        }
        .into())
    }
}

fn object_error(doing: &str, error: shared::objects::ObjectError) -> ProcessError {
    let msg = format!("{doing}: {}", error.summary());
    if error.is_transient() {
        ProcessError::Transient(msg)
    } else {
        ProcessError::Permanent(msg)
    }
}

/// The report as a printable table (durations in seconds, as a reader wants them).
pub fn pdf(report_type: &str, period: &ReportPeriod, scope: ReportScope, jobs: usize, rows: &[Row]) -> Vec<u8> {
    let secs = |ms: i64| format!("{:.1}", ms as f64 / 1000.0);
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!("{:>9} {:>9} {:>9}", secs(s.p50), secs(s.p95), secs(s.max)),
        None => format!("{:>9} {:>9} {:>9}", "-", "-", "-"),
    };
    let scope = match scope {
        ReportScope::Own => "own jobs",
        ReportScope::All => "all jobs",
    };
    let mut lines = vec![
        format!("Report: {report_type}"),
        format!(
            "Period: {} to {} (end exclusive), {scope}",
            clock::format(period.start),
            clock::format(period.end)
        ),
        format!("Jobs: {jobs}, generated {}", clock::format(clock::now())),
        String::new(),
        format!(
            "{:<10} {:<12} {:>7}  {:^29}  {:^29}",
            "", "", "", "turnaround (s)", "run time (s)"
        ),
        format!(
            "{:<10} {:<12} {:>7}  {:>9} {:>9} {:>9}  {:>9} {:>9} {:>9}",
            "status", "kind", "count", "p50", "p95", "max", "p50", "p95", "max"
        ),
    ];
    for row in rows {
        lines.push(format!(
            "{:<10} {:<12} {:>7}  {}  {}",
            row.status.as_str(),
            row.kind.as_str(),
            row.count,
            spread(&row.turnaround_ms),
            spread(&row.run_ms)
        ));
    }
    if rows.is_empty() {
        lines.push("(no jobs in the period)".into());
    }
    shared::pdf::text_document(&format!("Report {report_type}"), &lines)
}

/// The rows as CSV, one line each, durations in ms (empty when no job of the row ended).
pub fn csv(rows: &[Row]) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let spread = |s: &Option<Spread>| -> [String; 5] {
        match s {
            Some(s) => [s.min, s.avg, s.p50, s.p95, s.max].map(|v| v.to_string()),
            None => Default::default(),
        }
    };
    let mut header = vec!["status".to_string(), "kind".into(), "count".into()];
    for what in ["turnaround_ms", "run_ms"] {
        for stat in ["min", "avg", "p50", "p95", "max"] {
            header.push(format!("{what}_{stat}"));
        }
    }
    // Writing to a Vec cannot fail.
    out.write_record(&header).expect("csv to memory");
    for row in rows {
        let mut record = vec![row.status.to_string(), row.kind.to_string(), row.count.to_string()];
        record.extend(spread(&row.turnaround_ms));
        record.extend(spread(&row.run_ms));
        out.write_record(&record).expect("csv to memory");
    }
    out.into_inner().expect("csv to memory")
}
