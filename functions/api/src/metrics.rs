//! The console's metrics view: `GET /metrics` reads the last hour of the functions' metrics
//! (`shared::metrics`, written as EMF) from CloudWatch with `GetMetricData`, and `GET /alarms`
//! lists the alarms in the `ALARM` state (`DescribeAlarms`). Both for admins: the figures cover
//! everyone's jobs. CloudWatch is reached where the environment says (`AWS_ENDPOINT_URL_CLOUDWATCH`
//! locally, LocalStack); the client is added to the router as an `Extension` by `main.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric as CwMetric, MetricDataQuery, MetricStat, StateValue};
use axum::{Extension, Json};
use serde::Serialize;
use shared::job::JobKind;
use shared::metrics::Metric;
use time::OffsetDateTime;

use crate::auth::Signed;
use crate::error::ApiError;

/// The hour a view covers, in buckets of this many seconds.
pub const BUCKET_SECONDS: i64 = 300;
/// Buckets in the hour.
pub const BUCKETS: usize = 12;

/// Where the metrics are: CloudWatch and the namespace the functions write to.
#[derive(Clone, Debug)]
pub struct MetricsSource {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub namespace: String,
    /// Cleared once the endpoint refused percentile statistics (LocalStack): later requests
    /// leave them out instead of asking again.
    percentiles: Arc<AtomicBool>,
}

impl MetricsSource {
    /// From the shared configuration; the namespace from `METRICS_NAMESPACE`, as the functions.
    pub fn new(config: &aws_config::SdkConfig) -> MetricsSource {
        MetricsSource {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            namespace: std::env::var("METRICS_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| shared::metrics::DEFAULT_NAMESPACE.to_string()),
            percentiles: Arc::new(AtomicBool::new(true)),
        }
    }
}
/// Sum, average, maximum and (where CloudWatch computes them) percentiles of one metric.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Distribution {
    /// How many values in the hour.
    pub count: u64,
    pub average: Option<f64>,
    pub maximum: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// One kind's hour. Counts are whole numbers (CloudWatch returns every statistic as a float).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KindFigures {
    pub kind: String,
    pub created: u64,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
    /// Completed jobs in each 5-minute bucket of the hour, oldest first (12 values).
    pub completed_series: Vec<u64>,
    /// Failed jobs in each 5-minute bucket, oldest first.
    pub failed_series: Vec<u64>,
    /// Milliseconds from an attempt's start to the job's end.
    pub run_time_ms: Distribution,
    /// Milliseconds a job waited in its queue before an attempt started.
    pub queue_time_ms: Distribution,
}

/// The ingest's hour.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IngestFigures {
    pub lines_read: u64,
    pub lines_stored: u64,
    pub lines_rejected: u64,
    /// Lines read per second, one value per ingest invocation.
    pub lines_per_second: Distribution,
}

/// Image jobs' hour.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImageFigures {
    pub urls_measured: u64,
    pub urls_failed: u64,
    pub fetch_retries: u64,
    /// Bytes read per image measured.
    pub bytes_per_image: Distribution,
}

/// The answer of `GET /metrics`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MetricsView {
    pub namespace: String,
    /// The hour's start and end (RFC 3339), on 5-minute boundaries.
    pub start: String,
    pub end: String,
    pub bucket_seconds: i64,
    /// Every kind, also those without figures (zeros).
    pub kinds: Vec<KindFigures>,
    pub ingest: IngestFigures,
    pub images: ImageFigures,
    /// Jobs the sweeper acted on, by action (enqueued, resent, requeued, failed).
    pub sweeper: BTreeMap<String, u64>,
    /// Why percentiles are missing, when CloudWatch did not compute them (LocalStack computes
    /// Sum, Average, Minimum, Maximum and SampleCount only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentiles_note: Option<String>,
}

/// One alarm in the `ALARM` state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alarm {
    pub name: String,
    pub reason: Option<String>,
    /// When it went into `ALARM` (RFC 3339).
    pub since: Option<String>,
    pub namespace: Option<String>,
    pub metric: Option<String>,
}

/// The answer of `GET /alarms`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alarms {
    pub alarms: Vec<Alarm>,
}

const SWEEPER_ACTIONS: [&str; 4] = ["enqueued", "resent", "requeued", "failed"];

/// CloudWatch's limit of queries in one `GetMetricData` call.
pub const MAX_QUERIES: usize = 500;

/// One question of a `GetMetricData` call: where its answer goes.
#[derive(Debug, Clone, PartialEq)]
struct Ask {
    metric: Metric,
    dims: Vec<(&'static str, String)>,
    stat: &'static str,
    period: i32,
}

/// Each question with its points `(bucket start in seconds, value)`, oldest first.
type Answers = Vec<(Ask, Vec<(i64, f64)>)>;

fn source(source: Option<Extension<MetricsSource>>) -> Result<MetricsSource, ApiError> {
    source
        .map(|Extension(s)| s)
        .ok_or_else(|| ApiError(shared::Error::Internal("no CloudWatch client configured".into())))
}

/// The hour before `now`, on bucket boundaries: `(start, end)` in seconds.
pub fn hour(now: OffsetDateTime) -> (i64, i64) {
    let end = (now.unix_timestamp() / BUCKET_SECONDS + 1) * BUCKET_SECONDS;
    (end - BUCKET_SECONDS * BUCKETS as i64, end)
}

const HOURLY: i32 = (BUCKET_SECONDS * BUCKETS as i64) as i32;

/// Every question of the view (110 with percentiles, 82 without): all in one call.
fn asks(percentiles: bool) -> Vec<Ask> {
    let mut asks = Vec::new();
    let mut ask = |metric, dims: &Vec<(&'static str, String)>, stat, period| {
        asks.push(Ask {
            metric,
            dims: dims.clone(),
            stat,
            period,
        })
    };
    let stats: &[&'static str] = if percentiles {
        &["SampleCount", "Average", "Maximum", "p50", "p95"]
    } else {
        &["SampleCount", "Average", "Maximum"]
    };
    let ingest = vec![("Kind", JobKind::LogIngest.as_str().to_string())];
    let image = vec![("Kind", JobKind::Image.as_str().to_string())];
    for kind in JobKind::ALL {
        let dims = vec![("Kind", kind.as_str().to_string())];
        for m in [Metric::JobsCreated, Metric::JobsStarted, Metric::JobsRetried] {
            ask(m, &dims, "Sum", HOURLY);
        }
        // Per bucket: the series, and summed, the hour's totals.
        for m in [Metric::JobsCompleted, Metric::JobsFailed] {
            ask(m, &dims, "Sum", BUCKET_SECONDS as i32);
        }
        for m in [Metric::RunTime, Metric::QueueTime] {
            for stat in stats {
                ask(m, &dims, stat, HOURLY);
            }
        }
    }
    for m in [
        Metric::IngestLinesRead,
        Metric::IngestLinesStored,
        Metric::IngestLinesRejected,
    ] {
        ask(m, &ingest, "Sum", HOURLY);
    }
    for m in [Metric::ImageUrlsMeasured, Metric::ImageUrlsFailed, Metric::FetchRetries] {
        ask(m, &image, "Sum", HOURLY);
    }
    for (m, dims) in [(Metric::IngestLinesPerSecond, &ingest), (Metric::ImageBytes, &image)] {
        for stat in stats {
            ask(m, dims, stat, HOURLY);
        }
    }
    for action in SWEEPER_ACTIONS {
        ask(
            Metric::SweeperActions,
            &vec![("Action", action.to_string())],
            "Sum",
            HOURLY,
        );
    }
    asks
}

/// A count as CloudWatch sums it (a float) as the whole number it is.
fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 { v.round() as u64 } else { 0 }
}

/// The view from the answers (questions without an answer count as no data).
fn view(namespace: &str, start: i64, end: i64, got: &Answers, percentiles_note: Option<String>) -> MetricsView {
    let find = |metric: Metric, dims: &[(&str, String)], stat: &str| {
        got.iter()
            .find(|(a, _)| a.metric == metric && a.stat == stat && a.dims.as_slice() == dims)
            .map(|(_, points)| points.as_slice())
            .unwrap_or_default()
    };
    let total = |metric, dims: &[(&str, String)]| count(find(metric, dims, "Sum").iter().map(|(_, v)| v).sum());
    let one = |metric, dims: &[(&str, String)], stat| find(metric, dims, stat).first().map(|(_, v)| *v);
    let distribution = |metric, dims: &[(&str, String)]| Distribution {
        count: one(metric, dims, "SampleCount").map(count).unwrap_or(0),
        average: one(metric, dims, "Average"),
        maximum: one(metric, dims, "Maximum"),
        p50: one(metric, dims, "p50"),
        p95: one(metric, dims, "p95"),
    };
    let series = |metric, dims: &[(&str, String)]| {
        let mut out = vec![0.0; BUCKETS];
        for (at, v) in find(metric, dims, "Sum") {
            let i = (at - start) / BUCKET_SECONDS;
            if (0..BUCKETS as i64).contains(&i) {
                out[i as usize] += v;
            }
        }
        out.into_iter().map(count).collect::<Vec<u64>>()
    };
    let ingest = [("Kind", JobKind::LogIngest.as_str().to_string())];
    let image = [("Kind", JobKind::Image.as_str().to_string())];
    let kinds = JobKind::ALL
        .iter()
        .map(|kind| {
            let d = [("Kind", kind.as_str().to_string())];
            let completed_series = series(Metric::JobsCompleted, &d);
            let failed_series = series(Metric::JobsFailed, &d);
            KindFigures {
                kind: kind.as_str().to_string(),
                created: total(Metric::JobsCreated, &d),
                started: total(Metric::JobsStarted, &d),
                // The hour's total is its buckets' (so the two always agree).
                completed: completed_series.iter().sum(),
                failed: failed_series.iter().sum(),
                retried: total(Metric::JobsRetried, &d),
                completed_series,
                failed_series,
                run_time_ms: distribution(Metric::RunTime, &d),
                queue_time_ms: distribution(Metric::QueueTime, &d),
            }
        })
        .collect();
    MetricsView {
        namespace: namespace.to_string(),
        start: shared::clock::format(at(start)),
        end: shared::clock::format(at(end)),
        bucket_seconds: BUCKET_SECONDS,
        kinds,
        ingest: IngestFigures {
            lines_read: total(Metric::IngestLinesRead, &ingest),
            lines_stored: total(Metric::IngestLinesStored, &ingest),
            lines_rejected: total(Metric::IngestLinesRejected, &ingest),
            lines_per_second: distribution(Metric::IngestLinesPerSecond, &ingest),
        },
        images: ImageFigures {
            urls_measured: total(Metric::ImageUrlsMeasured, &image),
            urls_failed: total(Metric::ImageUrlsFailed, &image),
            fetch_retries: total(Metric::FetchRetries, &image),
            bytes_per_image: distribution(Metric::ImageBytes, &image),
        },
        sweeper: SWEEPER_ACTIONS
            .iter()
            .map(|a| {
                (
                    a.to_string(),
                    total(Metric::SweeperActions, &[("Action", a.to_string())]),
                )
            })
            .collect(),
        percentiles_note,
    }
}

/// `GET /metrics`: the last hour, from CloudWatch: throughput and failures by kind, run and
/// queue time (average, maximum; p50 and p95 where CloudWatch computes percentiles), the
/// ingest's lines and lines per second, image URLs and bytes per image, sweeper actions.
///
/// One `GetMetricData` call asks every question. An endpoint that computes no percentiles
/// (LocalStack) refuses a call that asks for them: that call is not retried, the questions are
/// asked again without percentiles, and the source remembers it (one call from then on).
#[utoipa::path(get, path = "/metrics", summary = "The last hour's metrics from CloudWatch (admins)", tag = "service",
    responses(
        (status = 200, description = "The hour's figures", body = MetricsView),
        (status = 403, description = "Not an admin", body = crate::openapi::ErrorBody),
        (status = 503, description = "CloudWatch did not answer", body = crate::openapi::ErrorBody),
    ))]
pub async fn metrics(
    Signed(caller): Signed,
    cw: Option<Extension<MetricsSource>>,
) -> Result<Json<MetricsView>, ApiError> {
    caller.require_admin("the metrics view")?;
    let cw = source(cw)?;
    let (start, end) = hour(shared::clock::now());
    let began = std::time::Instant::now();
    let mut calls = 1;
    let mut percentiles = cw.percentiles.load(Ordering::Relaxed);
    let with_percentiles = asks(percentiles);
    let got = match fetch(&cw, &with_percentiles, start, end, !percentiles).await {
        Ok(got) => got,
        Err(e) if percentiles => {
            if refuses_percentiles(&e) {
                cw.percentiles.store(false, Ordering::Relaxed);
                tracing::info!(error = %DisplayErrorContext(&e), "CloudWatch computes no percentiles: asked without them from now on");
            } else {
                tracing::warn!(error = %DisplayErrorContext(&e), "GetMetricData with percentiles failed: asked again without them");
            }
            percentiles = false;
            calls += 1;
            fetch(&cw, &asks(false), start, end, true)
                .await
                .map_err(|e| ApiError(shared::Error::aws("GetMetricData", e)))?
        }
        Err(e) => return Err(ApiError(shared::Error::aws("GetMetricData", e))),
    };
    tracing::info!(
        queries = got.len(),
        calls,
        elapsed_ms = began.elapsed().as_millis() as u64,
        "GET /metrics read CloudWatch"
    );
    let note = (!percentiles)
        .then(|| "this CloudWatch endpoint computes no percentiles (p50, p95); average and maximum shown".to_string());
    Ok(Json(view(&cw.namespace, start, end, &got, note)))
}

/// Whether the endpoint refused the call for its percentile statistics (LocalStack 4.13.1
/// answers `InternalError` "exception while calling cloudwatch.GetMetricData: 'p50'").
fn refuses_percentiles(e: &SdkError<GetMetricDataError, HttpResponse>) -> bool {
    e.as_service_error()
        .and_then(|s| s.message())
        .is_some_and(|m| m.contains("p50") || m.contains("p95"))
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Asks every question (at most 500 per call, CloudWatch's limit: the view asks 110, one call),
/// following `NextToken`. `retry` off: the SDK's retries are not used (a refusal of the
/// percentiles is not worth three attempts with back-off).
async fn fetch(
    cw: &MetricsSource,
    asks: &[Ask],
    start: i64,
    end: i64,
    retry: bool,
) -> Result<Answers, SdkError<GetMetricDataError, HttpResponse>> {
    let mut out: Answers = asks.iter().map(|a| (a.clone(), Vec::new())).collect();
    for (chunk_no, chunk) in asks.chunks(MAX_QUERIES).enumerate() {
        let queries: Vec<MetricDataQuery> = chunk
            .iter()
            .enumerate()
            .map(|(i, a)| query(&cw.namespace, chunk_no * MAX_QUERIES + i, a))
            .collect();
        let mut next: Option<String> = None;
        loop {
            let mut call = cw
                .cloudwatch
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .set_next_token(next.take())
                .customize();
            if !retry {
                call = call.config_override(
                    aws_sdk_cloudwatch::config::Builder::default().retry_config(RetryConfig::disabled()),
                );
            }
            let page = call.send().await?;
            for r in page.metric_data_results() {
                let Some(i) = r
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some((_, points)) = out.get_mut(i) {
                    for (t, v) in r.timestamps().iter().zip(r.values()) {
                        points.push((t.secs(), *v));
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
    }
    // Oldest first.
    for (_, points) in &mut out {
        points.sort_by_key(|(t, _)| *t);
    }
    Ok(out)
}

/// The `GetMetricData` query of question `i` (its id `q<i>`).
fn query(namespace: &str, i: usize, a: &Ask) -> MetricDataQuery {
    let metric = CwMetric::builder()
        .namespace(namespace)
        .metric_name(a.metric.name())
        .set_dimensions(Some(
            a.dims
                .iter()
                .map(|(n, v)| Dimension::builder().name(*n).value(v).build())
                .collect(),
        ))
        .build();
    MetricDataQuery::builder()
        .id(format!("q{i}"))
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(a.period)
                .stat(a.stat)
                .build(),
        )
        .return_data(true)
        .build()
}

/// `GET /alarms`: the alarms in the `ALARM` state (at most 100), any namespace.
#[utoipa::path(get, path = "/alarms", summary = "CloudWatch alarms in the ALARM state (admins)", tag = "service",
    responses(
        (status = 200, description = "The alarms now in ALARM", body = Alarms),
        (status = 403, description = "Not an admin", body = crate::openapi::ErrorBody),
        (status = 503, description = "CloudWatch did not answer", body = crate::openapi::ErrorBody),
    ))]
pub async fn alarms(Signed(caller): Signed, cw: Option<Extension<MetricsSource>>) -> Result<Json<Alarms>, ApiError> {
    caller.require_admin("the alarms")?;
    let cw = source(cw)?;
    let out = cw
        .cloudwatch
        .describe_alarms()
        .state_value(StateValue::Alarm)
        .max_records(100)
        .send()
        .await
        .map_err(|e| ApiError(shared::Error::aws("DescribeAlarms", e)))?;
    let alarms = out
        .metric_alarms()
        .iter()
        .map(|a| Alarm {
            name: a.alarm_name().unwrap_or_default().to_string(),
            reason: a.state_reason().map(str::to_string),
            since: a
                .state_updated_timestamp()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                .map(shared::clock::format),
            namespace: a.namespace().map(str::to_string),
            metric: a.metric_name().map(str::to_string),
        })
        .chain(out.composite_alarms().iter().map(|a| {
            Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                reason: a.state_reason().map(str::to_string),
                since: a
                    .state_updated_timestamp()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                    .map(shared::clock::format),
                namespace: None,
                metric: None,
            }
        }))
        .collect();
    Ok(Json(Alarms { alarms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_ends_on_the_next_bucket_boundary() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_123).unwrap();
        let (start, end) = hour(now);
        assert_eq!(end % BUCKET_SECONDS, 0);
        assert!(end > now.unix_timestamp() && end - now.unix_timestamp() <= BUCKET_SECONDS);
        assert_eq!(end - start, 3600);
    }

    #[test]
    fn one_call_asks_every_question_once() {
        for percentiles in [true, false] {
            let all = asks(percentiles);
            assert!(all.len() <= MAX_QUERIES, "{} questions: more than one call", all.len());
            for (i, a) in all.iter().enumerate() {
                assert!(!all[..i].contains(a), "asked twice: {a:?}");
            }
            let pct = all.iter().filter(|a| a.stat.starts_with('p')).count();
            assert_eq!(pct > 0, percentiles, "{pct} percentile questions");
        }
        assert_eq!(asks(true).len(), 110);
        assert_eq!(asks(false).len(), 82);
    }

    #[test]
    fn counts_are_whole_numbers_and_the_hours_total_is_its_buckets() {
        let (start, end) = hour(OffsetDateTime::from_unix_timestamp(1_700_000_123).unwrap());
        let mut got: Answers = asks(false).into_iter().map(|a| (a, Vec::new())).collect();
        let mut answer = |metric: Metric, kind: &str, stat: &str, points: Vec<(i64, f64)>| {
            let (_, p) = got
                .iter_mut()
                .find(|(a, _)| a.metric == metric && a.stat == stat && a.dims == [("Kind", kind.to_string())])
                .unwrap();
            *p = points;
        };
        // CloudWatch sums as floats; a point before the hour is not in it.
        answer(
            Metric::JobsCompleted,
            "archive",
            "Sum",
            vec![
                (start - 300, 9.0),
                (start, 1.0),
                (start + 300, 2.0000000001),
                (end - 300, 4.0),
            ],
        );
        answer(Metric::RunTime, "archive", "SampleCount", vec![(start, 7.0)]);
        answer(Metric::RunTime, "archive", "Average", vec![(start, 12.5)]);
        answer(
            Metric::ImageUrlsMeasured,
            "image",
            "Sum",
            vec![(start, 3.0), (start + 600, 5.0)],
        );
        let v = view("Jobs", start, end, &got, None);
        let archive = v.kinds.iter().find(|k| k.kind == "archive").unwrap();
        assert_eq!(archive.completed, 7);
        assert_eq!(archive.completed_series, [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(archive.run_time_ms.count, 7);
        assert_eq!(archive.run_time_ms.average, Some(12.5));
        assert_eq!(archive.run_time_ms.p50, None);
        assert_eq!(v.images.urls_measured, 8);
        let json = serde_json::to_value(&v).unwrap();
        let email = json["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == "email")
            .unwrap();
        for field in ["created", "completed", "failed", "retried"] {
            assert!(email[field].is_u64(), "{field}: {}", email[field]);
            assert_eq!(email[field], 0);
        }
        assert!(json["kinds"][0]["completed_series"][0].is_u64());
        assert!(json["ingest"]["lines_per_second"]["count"].is_u64());
        assert!(json["sweeper"]["failed"].is_u64());
        assert!(!json.to_string().contains("-0"), "{json}");
        assert!(json.get("percentiles_note").is_none());
    }
}
