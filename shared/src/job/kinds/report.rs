//! Seed 001's `report` job: counts and durations of jobs by status and kind over a period, written
//! by the worker as CSV and JSON to S3, with a presigned link in the result.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::error::{Result, invalid};

/// Longest period a report may cover, in days.
pub const REPORT_MAX_DAYS: i64 = 366;

/// A report over the jobs created in `date_range`, the caller's own (`scope: own`) or everyone's
/// (`scope: all`, admins only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPayload {
    /// Free text `[a-z0-9_-]{1,64}`, the report's title.
    pub report_type: String,
    #[serde(default)]
    pub format: ReportFormat,
    pub date_range: DateRange,
    #[serde(default)]
    pub scope: ReportScope,
}

/// Which file the result's link points at (both are written).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Csv,
    Json,
    /// Accepted by the parser so that the refusal names the field; refused by `validate`.
    Pdf,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Pdf => "pdf",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportScope {
    /// The jobs of the report's owner.
    #[default]
    Own,
    /// Every job (admins only).
    All,
}

/// `start` and `end` (also spelled `from` and `to`): dates (`2026-11-01`) or RFC 3339 times,
/// the end inclusive (a date end means the whole day).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    #[serde(alias = "from")]
    pub start: String,
    #[serde(alias = "to")]
    pub end: String,
}

/// A period `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: OffsetDateTime,
    /// Exclusive.
    pub end: OffsetDateTime,
}

impl Period {
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.start <= t && t < self.end
    }
}

fn parse_bound(field: &str, text: &str, end: bool) -> Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        // An inclusive end instant: the period ends just after it.
        return Ok(if end { t + Duration::nanoseconds(1) } else { t });
    }
    match Date::parse(text, format_description!("[year]-[month]-[day]")) {
        Ok(d) => {
            let day = d.with_time(Time::MIDNIGHT).assume_utc();
            Ok(if end { day + Duration::days(1) } else { day })
        }
        Err(_) => Err(invalid(
            field,
            "must be a date (2026-11-01) or an RFC 3339 time (2026-11-01T09:00:00Z)",
        )),
    }
}

impl ReportPayload {
    pub fn validate(&self) -> Result<()> {
        let t = &self.report_type;
        if t.is_empty()
            || t.len() > 64
            || !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "payload.report_type",
                "must be 1 to 64 of a-z, 0-9, '_' and '-'",
            ));
        }
        self.period().map(|_| ())
    }

    /// The period the report covers, checked: `start <= end`, at most [`REPORT_MAX_DAYS`].
    pub fn period(&self) -> Result<Period> {
        let start = parse_bound("payload.date_range.start", &self.date_range.start, false)?;
        let end = parse_bound("payload.date_range.end", &self.date_range.end, true)?;
        if end <= start {
            return Err(invalid("payload.date_range", "start must not be after end"));
        }
        if end - start > Duration::days(REPORT_MAX_DAYS) {
            return Err(invalid(
                "payload.date_range",
                format!("covers more than {REPORT_MAX_DAYS} days"),
            ));
        }
        Ok(Period { start, end })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use crate::job::JobSpec;

    fn error(payload: serde_json::Value) -> String {
        JobSpec::from_json("report", payload).unwrap_err().to_string()
    }

    fn ok() -> serde_json::Value {
        json!({"report_type": "weekly", "date_range": {"start": "2026-11-01", "end": "2026-11-07"}})
    }

    #[test]
    fn a_date_range_covers_whole_days_and_times_are_inclusive() {
        let JobSpec::Report(p) = JobSpec::from_json("report", ok()).unwrap() else {
            panic!()
        };
        assert_eq!((p.format, p.scope), (super::ReportFormat::Csv, super::ReportScope::Own));
        let period = p.period().unwrap();
        assert_eq!(period.start, datetime!(2026-11-01 0:00 UTC));
        assert_eq!(period.end, datetime!(2026-11-08 0:00 UTC));
        let spec = JobSpec::from_json(
            "report",
            json!({"report_type": "daily", "format": "json", "scope": "all",
                   "date_range": {"from": "2026-11-01T09:00:00Z", "to": "2026-11-01T10:00:00Z"}}),
        )
        .unwrap();
        let JobSpec::Report(p) = spec else { panic!() };
        let period = p.period().unwrap();
        assert!(period.contains(datetime!(2026-11-01 10:00 UTC)));
        assert!(!period.contains(datetime!(2026-11-01 10:00:01 UTC)));
        assert!(!period.contains(datetime!(2026-11-01 8:59:59 UTC)));
    }

    #[test]
    fn every_error_names_its_field() {
        let with = |k: &str, v: serde_json::Value| {
            let mut p = ok();
            p[k] = v;
            error(p)
        };
        assert_eq!(
            with("format", json!("xls")),
            "payload.format: unknown variant `xls`, expected one of `csv`, `json`, `pdf`"
        );
        assert_eq!(
            with("scope", json!("team")),
            "payload.scope: unknown variant `team`, expected `own` or `all`"
        );
        assert_eq!(
            with("report_type", json!("Weekly Report")),
            "payload.report_type: must be 1 to 64 of a-z, 0-9, '_' and '-'"
        );
        assert_eq!(
            with("date_range", json!({"start": "yesterday", "end": "2026-11-07"})),
            "payload.date_range.start: must be a date (2026-11-01) or an RFC 3339 time (2026-11-01T09:00:00Z)"
        );
        assert_eq!(
            with("date_range", json!({"start": "2026-11-01", "end": "2026-13-01"})),
            "payload.date_range.end: must be a date (2026-11-01) or an RFC 3339 time (2026-11-01T09:00:00Z)"
        );
        assert_eq!(
            with("date_range", json!({"start": "2026-11-08", "end": "2026-11-07"})),
            "payload.date_range: start must not be after end"
        );
        assert_eq!(
            with("date_range", json!({"start": "2025-01-01", "end": "2026-11-07"})),
            "payload.date_range: covers more than 366 days"
        );
        assert!(
            with("date_range", json!({"start": "2026-11-01"})).starts_with("payload.date_range: missing field `end`")
        );
        assert!(error(json!({"report_type": "w"})).starts_with("payload: missing field `date_range`"));
    }
}
