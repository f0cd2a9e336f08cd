//! The console's metrics view: `GET /metrics` reads the last hour of the functions' metrics
//! (`shared::metrics`, written as EMF) from CloudWatch with `GetMetricData`, and `GET /alarms`
//! lists the alarms in the `ALARM` state (`DescribeAlarms`). Both for admins: the figures cover
//! everyone's jobs. CloudWatch is reached where the environment says (`AWS_ENDPOINT_URL_CLOUDWATCH`
//! locally, LocalStack); the client is added to the router as an `Extension` by `main.rs`.

use std::collections::HashMap;

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
        }
    }
}

/// Sum, average, maximum and (where CloudWatch computes them) percentiles of one metric.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Distribution {
    /// How many values in the hour.
    pub count: f64,
    pub average: Option<f64>,
    pub maximum: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// One kind's hour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KindFigures {
    pub kind: String,
    pub created: f64,
    pub started: f64,
    pub completed: f64,
    pub failed: f64,
    pub retried: f64,
    /// Completed jobs in each 5-minute bucket of the hour, oldest first (12 values).
    pub completed_series: Vec<f64>,
    /// Failed jobs in each 5-minute bucket, oldest first.
    pub failed_series: Vec<f64>,
    /// Milliseconds from an attempt's start to the job's end.
    pub run_time_ms: Distribution,
    /// Milliseconds a job waited in its queue before an attempt started.
    pub queue_time_ms: Distribution,
}

/// The ingest's hour.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IngestFigures {
    pub lines_read: f64,
    pub lines_stored: f64,
    pub lines_rejected: f64,
    /// Lines read per second, one value per ingest invocation.
    pub lines_per_second: Distribution,
}

/// Image jobs' hour.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImageFigures {
    pub urls_measured: f64,
    pub urls_failed: f64,
    pub fetch_retries: f64,
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
    pub sweeper: HashMap<String, f64>,
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

/// One question of a `GetMetricData` call: where its answer goes.
#[derive(Debug, Clone)]
struct Ask {
    metric: Metric,
    dims: Vec<(&'static str, String)>,
    stat: &'static str,
    period: i32,
}

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

/// `GET /metrics`: the last hour, from CloudWatch: throughput and failures by kind, run and
/// queue time (average, maximum; p50 and p95 where CloudWatch computes percentiles), the
/// ingest's lines and lines per second, image URLs and bytes per image, sweeper actions.
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
    let mut asks = Vec::new();
    let hourly = (BUCKET_SECONDS * BUCKETS as i64) as i32;
    for kind in JobKind::ALL {
        let dims = vec![("Kind", kind.as_str().to_string())];
        for m in [Metric::JobsCreated, Metric::JobsStarted, Metric::JobsRetried] {
            asks.push(Ask {
                metric: m,
                dims: dims.clone(),
                stat: "Sum",
                period: hourly,
            });
        }
        for m in [Metric::JobsCompleted, Metric::JobsFailed] {
            asks.push(Ask {
                metric: m,
                dims: dims.clone(),
                stat: "Sum",
                period: BUCKET_SECONDS as i32,
            });
        }
        for m in [Metric::RunTime, Metric::QueueTime] {
            for stat in ["SampleCount", "Average", "Maximum"] {
                asks.push(Ask {
                    metric: m,
                    dims: dims.clone(),
                    stat,
                    period: hourly,
                });
            }
        }
    }
    let ingest = vec![("Kind", JobKind::LogIngest.as_str().to_string())];
    let image = vec![("Kind", JobKind::Image.as_str().to_string())];
    for m in [
        Metric::IngestLinesRead,
        Metric::IngestLinesStored,
        Metric::IngestLinesRejected,
    ] {
        asks.push(Ask {
            metric: m,
            dims: ingest.clone(),
            stat: "Sum",
            period: hourly,
        });
    }
    for m in [Metric::ImageUrlsMeasured, Metric::ImageUrlsFailed, Metric::FetchRetries] {
        asks.push(Ask {
            metric: m,
            dims: image.clone(),
            stat: "Sum",
            period: hourly,
        });
    }
    for (m, dims) in [(Metric::IngestLinesPerSecond, &ingest), (Metric::ImageBytes, &image)] {
        for stat in ["SampleCount", "Average", "Maximum"] {
            asks.push(Ask {
                metric: m,
                dims: dims.clone(),
                stat,
                period: hourly,
            });
        }
    }
    for action in SWEEPER_ACTIONS {
        asks.push(Ask {
            metric: Metric::SweeperActions,
            dims: vec![("Action", action.to_string())],
            stat: "Sum",
            period: hourly,
        });
    }
    let got = fetch(&cw, &asks, start, end).await.map_err(ApiError)?;
    // Percentiles apart: an endpoint that does not compute them (LocalStack) refuses the call.
    let mut pct_asks = Vec::new();
    for kind in JobKind::ALL {
        for m in [Metric::RunTime, Metric::QueueTime] {
            for stat in ["p50", "p95"] {
                pct_asks.push(Ask {
                    metric: m,
                    dims: vec![("Kind", kind.as_str().to_string())],
                    stat,
                    period: hourly,
                });
            }
        }
    }
    for (m, dims) in [(Metric::IngestLinesPerSecond, &ingest), (Metric::ImageBytes, &image)] {
        for stat in ["p50", "p95"] {
            pct_asks.push(Ask {
                metric: m,
                dims: dims.clone(),
                stat,
                period: hourly,
            });
        }
    }
    let (pct, percentiles_note) = match fetch(&cw, &pct_asks, start, end).await {
        Ok(p) => (p, None),
        Err(e) => {
            tracing::info!(error = %e, "CloudWatch computed no percentiles");
            (
                Vec::new(),
                Some("this CloudWatch endpoint computes no percentiles (p50, p95); average and maximum shown".into()),
            )
        }
    };
    let find = |set: &[(Ask, Vec<(i64, f64)>)], metric: Metric, dims: &[(&str, String)], stat: &str| {
        set.iter()
            .find(|(a, _)| a.metric == metric && a.stat == stat && a.dims.as_slice() == dims)
            .map(|(_, points)| points.clone())
            .unwrap_or_default()
    };
    // A fold from 0.0, not `sum()`: an empty f64 sum is -0.0 (serialized as `-0.0`).
    let total = |metric, dims: &[(&str, String)]| find(&got, metric, dims, "Sum").iter().fold(0.0, |a, (_, v)| a + v);
    let one = |set: &[(Ask, Vec<(i64, f64)>)], metric, dims: &[(&str, String)], stat| {
        find(set, metric, dims, stat).first().map(|(_, v)| *v)
    };
    let distribution = |metric, dims: &[(&str, String)]| Distribution {
        count: one(&got, metric, dims, "SampleCount").unwrap_or(0.0),
        average: one(&got, metric, dims, "Average"),
        maximum: one(&got, metric, dims, "Maximum"),
        p50: one(&pct, metric, dims, "p50"),
        p95: one(&pct, metric, dims, "p95"),
    };
    let series = |metric, dims: &[(&str, String)]| {
        let mut out = vec![0.0; BUCKETS];
        for (at, v) in find(&got, metric, dims, "Sum") {
            let i = (at - start) / BUCKET_SECONDS;
            if (0..BUCKETS as i64).contains(&i) {
                out[i as usize] += v;
            }
        }
        out
    };
    let kinds = JobKind::ALL
        .iter()
        .map(|kind| {
            let d = vec![("Kind", kind.as_str().to_string())];
            KindFigures {
                kind: kind.as_str().to_string(),
                created: total(Metric::JobsCreated, &d),
                started: total(Metric::JobsStarted, &d),
                completed: total(Metric::JobsCompleted, &d),
                failed: total(Metric::JobsFailed, &d),
                retried: total(Metric::JobsRetried, &d),
                completed_series: series(Metric::JobsCompleted, &d),
                failed_series: series(Metric::JobsFailed, &d),
                run_time_ms: distribution(Metric::RunTime, &d),
                queue_time_ms: distribution(Metric::QueueTime, &d),
            }
        })
        .collect();
    let view = MetricsView {
        namespace: cw.namespace.clone(),
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
    };
    Ok(Json(view))
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Asks every question (at most 500 per call, CloudWatch's limit), following `NextToken`.
/// Returns each question with its points `(bucket start in seconds, value)`.
async fn fetch(cw: &MetricsSource, asks: &[Ask], start: i64, end: i64) -> shared::Result<Vec<(Ask, Vec<(i64, f64)>)>> {
    let mut out: Vec<(Ask, Vec<(i64, f64)>)> = asks.iter().map(|a| (a.clone(), Vec::new())).collect();
    for (chunk_no, chunk) in asks.chunks(500).enumerate() {
        let queries: Vec<MetricDataQuery> = chunk
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let metric = CwMetric::builder()
                    .namespace(&cw.namespace)
                    .metric_name(a.metric.name())
                    .set_dimensions(Some(
                        a.dims
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(*n).value(v).build())
                            .collect(),
                    ))
                    .build();
                MetricDataQuery::builder()
                    .id(format!("q{}", chunk_no * 500 + i))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(a.period)
                            .stat(a.stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut next: Option<String> = None;
        loop {
            let page = cw
                .cloudwatch
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| shared::Error::aws("GetMetricData", e))?;
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
}
