//! Metrics in CloudWatch's Embedded Metric Format (EMF): values are gathered in memory during an
//! invocation and written at its end ([`flush`]) as JSON lines on stdout, one per dimension set
//! (values of one metric as an array, up to 100 per line). CloudWatch Logs turns them into
//! metrics on AWS; locally the bridge does (`infra/local-bridge/src/emf.rs`). No `PutMetricData`.
//!
//! Names are typed ([`Metric`]) and dimensions are low-cardinality only ([`Dims`]: a job's kind
//! and priority band, a sweeper action, an ingest or image figure's kind; never a job id). The
//! namespace is `METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]); `METRICS=off` (or
//! [`set_enabled`]) records nothing, for the overhead bench.
//!
//! The job lifecycle is metered in one place: [`Metered`], the `JobStore` every function wraps its
//! store in, sees every write of a job (created, claimed, completed, failed, re-queued) whoever
//! makes it (worker, ingest, sweeper, api). Tests capture lines with [`capture`] (a task-local sink)
//! rather than scraping stdout.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::auth::Scope;
use crate::error::Result;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::Band;
use crate::quota::Charge;
use crate::store::{Change, Created, IdempotencyKey, JobStore, ListFilter, Page, Stats};

/// The namespace when `METRICS_NAMESPACE` is unset (the template's default too).
pub const DEFAULT_NAMESPACE: &str = "ServerlessJobs";
/// EMF takes at most 100 values per metric in one line.
pub const MAX_VALUES: usize = 100;

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Bytes,
    CountPerSecond,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::CountPerSecond => "Count/Second",
        }
    }
}

/// Every metric this system emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    JobsCreated,
    JobsStarted,
    JobsCompleted,
    JobsFailed,
    /// Back to `queued` after a failed attempt, by a retry, or taken back by the sweeper.
    JobsRetried,
    /// From an attempt's start to the job's end (completed or failed).
    RunTime,
    /// From the job's last move to `pending`/`queued` (or its `scheduled_for`) to an attempt's start.
    QueueTime,
    ImageUrlsMeasured,
    ImageUrlsFailed,
    /// Bytes read for one image (one value per image).
    ImageBytes,
    /// Image fetches tried again (after a timeout, a 5xx, a reset).
    FetchRetries,
    IngestLinesRead,
    IngestLinesStored,
    IngestLinesRejected,
    /// Lines read per second of one ingest run (one value per run).
    IngestLinesPerSecond,
    /// Jobs the sweeper acted on, by action.
    SweeperActions,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::JobsCreated,
        Metric::JobsStarted,
        Metric::JobsCompleted,
        Metric::JobsFailed,
        Metric::JobsRetried,
        Metric::RunTime,
        Metric::QueueTime,
        Metric::ImageUrlsMeasured,
        Metric::ImageUrlsFailed,
        Metric::ImageBytes,
        Metric::FetchRetries,
        Metric::IngestLinesRead,
        Metric::IngestLinesStored,
        Metric::IngestLinesRejected,
        Metric::IngestLinesPerSecond,
        Metric::SweeperActions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::JobsCreated => "JobsCreated",
            Metric::JobsStarted => "JobsStarted",
            Metric::JobsCompleted => "JobsCompleted",
            Metric::JobsFailed => "JobsFailed",
            Metric::JobsRetried => "JobsRetried",
            Metric::RunTime => "RunTime",
            Metric::QueueTime => "QueueTime",
            Metric::ImageUrlsMeasured => "ImageUrlsMeasured",
            Metric::ImageUrlsFailed => "ImageUrlsFailed",
            Metric::ImageBytes => "ImageBytes",
            Metric::FetchRetries => "FetchRetries",
            Metric::IngestLinesRead => "IngestLinesRead",
            Metric::IngestLinesStored => "IngestLinesStored",
            Metric::IngestLinesRejected => "IngestLinesRejected",
            Metric::IngestLinesPerSecond => "IngestLinesPerSecond",
            Metric::SweeperActions => "SweeperActions",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::RunTime | Metric::QueueTime => Unit::Milliseconds,
            Metric::ImageBytes => Unit::Bytes,
            Metric::IngestLinesPerSecond => Unit::CountPerSecond,
            _ => Unit::Count,
        }
    }

    /// Counts are summed into one value per line; the others keep every value (a distribution).
    pub fn is_count(self) -> bool {
        self.unit() == Unit::Count
    }
}

/// A priority band's dimension value.
pub fn band_name(band: Band) -> &'static str {
    match band {
        Band::High => "high",
        Band::Normal => "normal",
    }
}

/// The dimensions of a value: few, fixed values each (a kind is [`crate::job::JobKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dims {
    /// Declared as `[Kind, Band]` and `[Kind]`: by kind and band, and by kind alone.
    KindBand(&'static str, BandDim),
    /// `[Kind]`.
    Kind(&'static str),
    /// `[Action]` (the sweeper's).
    Action(&'static str),
}

/// [`Band`] with an order (a map key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BandDim {
    High,
    Normal,
}

impl From<Band> for BandDim {
    fn from(b: Band) -> BandDim {
        match b {
            Band::High => BandDim::High,
            Band::Normal => BandDim::Normal,
        }
    }
}

impl BandDim {
    pub fn as_str(self) -> &'static str {
        match self {
            BandDim::High => "high",
            BandDim::Normal => "normal",
        }
    }
}

impl Dims {
    pub fn of_job(job: &Job) -> Dims {
        Dims::KindBand(job.kind().as_str(), Band::of(job.priority).into())
    }

    /// The dimension sets declared (`Dimensions` of the directive).
    fn sets(self) -> Vec<Vec<&'static str>> {
        match self {
            Dims::KindBand(..) => vec![vec!["Kind", "Band"], vec!["Kind"]],
            Dims::Kind(_) => vec![vec!["Kind"]],
            Dims::Action(_) => vec![vec!["Action"]],
        }
    }

    fn values(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Dims::KindBand(k, b) => vec![("Kind", k), ("Band", b.as_str())],
            Dims::Kind(k) => vec![("Kind", k)],
            Dims::Action(a) => vec![("Action", a)],
        }
    }
}

/// Where finished lines go.
pub trait Sink: Send + Sync {
    fn write(&self, line: &str);
}

/// Standard output, one line per write (what Lambda sends to CloudWatch Logs).
pub struct Stdout;

impl Sink for Stdout {
    fn write(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// Lines kept in memory (tests).
#[derive(Default)]
pub struct Lines(pub Mutex<Vec<String>>);

impl Sink for Lines {
    fn write(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

/// Values gathered since the last flush, by dimensions and metric.
pub struct Recorder {
    values: Mutex<BTreeMap<Dims, BTreeMap<Metric, Vec<f64>>>>,
    sink: Arc<dyn Sink>,
    namespace: String,
}

impl Recorder {
    pub fn new(namespace: impl Into<String>, sink: Arc<dyn Sink>) -> Recorder {
        Recorder {
            values: Mutex::new(BTreeMap::new()),
            sink,
            namespace: namespace.into(),
        }
    }

    pub fn put(&self, dims: Dims, metric: Metric, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut values = self.values.lock().unwrap();
        let v = values.entry(dims).or_default().entry(metric).or_default();
        if metric.is_count() && !v.is_empty() {
            v[0] += value;
        } else {
            v.push(value);
        }
    }

    /// Writes what was gathered as EMF lines and forgets it.
    pub fn flush(&self) {
        let taken = std::mem::take(&mut *self.values.lock().unwrap());
        let ts = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        for (dims, metrics) in taken {
            for line in emf_lines(&self.namespace, ts, dims, &metrics) {
                self.sink.write(&line);
            }
        }
    }
}

/// The EMF lines of one dimension set: one, or more when a metric has over [`MAX_VALUES`] values.
pub fn emf_lines(namespace: &str, timestamp_ms: i64, dims: Dims, metrics: &BTreeMap<Metric, Vec<f64>>) -> Vec<String> {
    let chunks = metrics
        .values()
        .map(|v| v.len().div_ceil(MAX_VALUES))
        .max()
        .unwrap_or(0);
    (0..chunks)
        .map(|chunk| {
            let mut doc = Map::new();
            for (name, value) in dims.values() {
                doc.insert(name.into(), value.into());
            }
            let mut declared = Vec::new();
            for (metric, values) in metrics {
                let part = values
                    .iter()
                    .skip(chunk * MAX_VALUES)
                    .take(MAX_VALUES)
                    .copied()
                    .collect::<Vec<_>>();
                let value = match part.as_slice() {
                    [] => continue,
                    [one] => json!(one),
                    many => json!(many),
                };
                declared.push(json!({"Name": metric.name(), "Unit": metric.unit().as_str()}));
                doc.insert(metric.name().into(), value);
            }
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": dims.sets(),
                        "Metrics": declared,
                    }],
                }),
            );
            Value::Object(doc).to_string()
        })
        .collect()
}

static ENABLED: LazyLock<AtomicBool> =
    LazyLock::new(|| AtomicBool::new(!matches!(std::env::var("METRICS").as_deref(), Ok("off"))));

static GLOBAL: LazyLock<Recorder> = LazyLock::new(|| {
    let namespace = std::env::var("METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    Recorder::new(namespace, Arc::new(Stdout))
});

tokio::task_local! {
    static SCOPE: Arc<Recorder>;
}

/// Whether values are recorded (`METRICS=off` turns it off).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns recording on or off for the whole process (the overhead bench).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn with_recorder(f: impl FnOnce(&Recorder)) {
    let mut f = Some(f);
    let _ = SCOPE.try_with(|r| f.take().map(|f| f(r)));
    if let Some(f) = f {
        f(&GLOBAL)
    }
}

/// Records one value (a count is added to the others of the same line).
pub fn put(dims: Dims, metric: Metric, value: f64) {
    if enabled() {
        with_recorder(|r| r.put(dims, metric, value));
    }
}

/// Writes the gathered values as EMF lines: at the end of each invocation.
pub fn flush() {
    with_recorder(Recorder::flush);
}

/// Runs one invocation and flushes its values after it, whatever it returned.
pub async fn invocation<F: Future>(f: F) -> F::Output {
    let out = f.await;
    flush();
    out
}

/// Runs `f` with `recorder` instead of the process's (benches: a recorder per invocation).
pub async fn scoped<F: Future>(recorder: Arc<Recorder>, f: F) -> F::Output {
    SCOPE.scope(recorder, f).await
}

/// Runs `f` with its own recorder (namespace [`DEFAULT_NAMESPACE`]) and returns what it wrote
/// (flushed at the end) with its output: the tests' sink.
pub async fn capture<F: Future>(f: F) -> (F::Output, Captured) {
    let lines = Arc::new(Lines::default());
    let recorder = Arc::new(Recorder::new(DEFAULT_NAMESPACE, lines.clone()));
    let out = SCOPE.scope(recorder.clone(), f).await;
    recorder.flush();
    let lines = std::mem::take(&mut *lines.0.lock().unwrap());
    (out, Captured { lines })
}

/// Lines a [`capture`] got.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub lines: Vec<String>,
}

impl Captured {
    /// Every value of `metric` in lines whose dimensions include `dims` (`[(name, value)]`).
    pub fn values(&self, metric: Metric, dims: &[(&str, &str)]) -> Vec<f64> {
        let mut out = Vec::new();
        for line in &self.lines {
            let doc: Value = serde_json::from_str(line).expect("an EMF line is JSON");
            if !dims
                .iter()
                .all(|(k, v)| doc.get(*k).and_then(Value::as_str) == Some(*v))
            {
                continue;
            }
            match doc.get(metric.name()) {
                Some(Value::Array(vs)) => out.extend(vs.iter().filter_map(Value::as_f64)),
                Some(v) => out.extend(v.as_f64()),
                None => {}
            }
        }
        out
    }

    /// The sum of `metric`'s values in lines with `dims`.
    pub fn sum(&self, metric: Metric, dims: &[(&str, &str)]) -> f64 {
        self.values(metric, dims).iter().sum()
    }
}

/// Checks one line against the EMF specification's rules (what CloudWatch Logs would reject):
/// `_aws` with a millisecond `Timestamp` and directives whose `Namespace` is a non-empty string,
/// every dimension named in `Dimensions` present as a string member, at most 30 per set, every
/// metric in `Metrics` present as a number or an array of at most 100 numbers, with a known unit.
pub fn validate(line: &str) -> std::result::Result<(), String> {
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let aws = doc.get("_aws").ok_or("no _aws")?;
    aws.get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("_aws.Timestamp is not an integer")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no CloudWatchMetrics")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    for d in directives {
        match d.get("Namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() => {}
            _ => return Err("Namespace missing or empty".into()),
        }
        let sets = d.get("Dimensions").and_then(Value::as_array).ok_or("no Dimensions")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("more than 30 dimensions in a set".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if doc.get(name).and_then(Value::as_str).is_none() {
                    return Err(format!("dimension {name} is not a string member"));
                }
            }
        }
        let metrics = d.get("Metrics").and_then(Value::as_array).ok_or("no Metrics")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err(format!("{} metrics in a directive", metrics.len()));
        }
        for m in metrics {
            let name = m.get("Name").and_then(Value::as_str).ok_or("a metric without a Name")?;
            let unit = m
                .get("Unit")
                .and_then(Value::as_str)
                .ok_or(format!("{name} has no Unit"))?;
            if ![
                "Count",
                "Milliseconds",
                "Bytes",
                "Count/Second",
                "Seconds",
                "None",
                "Percent",
            ]
            .contains(&unit)
            {
                return Err(format!("{name}: unknown unit {unit}"));
            }
            match doc.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(vs)) if !vs.is_empty() && vs.len() <= 100 && vs.iter().all(Value::is_number) => {}
                _ => return Err(format!("{name} is not a number or an array of 1-100 numbers")),
            }
        }
    }
    Ok(())
}

/// Milliseconds between two instants, never negative.
pub fn millis(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    ((to - from).whole_milliseconds().max(0)) as f64
}

/// What one write did to a job's lifecycle, from its state before and after.
fn lifecycle(before: &Before, after: &Job) {
    let dims = Dims::of_job(after);
    let now = after.updated_at;
    if after.attempts > before.attempts && after.status == JobStatus::Processing {
        put(dims, Metric::JobsStarted, 1.0);
        put(
            Dims::Kind(after.kind().as_str()),
            Metric::QueueTime,
            millis(before.queued_since, now),
        );
    }
    if before.status == after.status {
        return;
    }
    match after.status {
        JobStatus::Completed => put(dims, Metric::JobsCompleted, 1.0),
        JobStatus::Failed => put(dims, Metric::JobsFailed, 1.0),
        JobStatus::Queued if matches!(before.status, JobStatus::Processing | JobStatus::Failed) => {
            put(dims, Metric::JobsRetried, 1.0)
        }
        _ => {}
    }
    if matches!(after.status, JobStatus::Completed | JobStatus::Failed)
        && before.status == JobStatus::Processing
        && let Some(started) = after.started_at
    {
        put(Dims::Kind(after.kind().as_str()), Metric::RunTime, millis(started, now));
    }
}

/// What [`lifecycle`] needs of a job before a write.
struct Before {
    status: JobStatus,
    attempts: u32,
    queued_since: OffsetDateTime,
}

impl Before {
    fn of(j: &Job) -> Before {
        let moved = j.updated_at.max(j.created_at);
        Before {
            status: j.status,
            attempts: j.attempts,
            queued_since: j.scheduled_for.map_or(moved, |at| at.max(moved)),
        }
    }
}

/// `change`, noting the job as it was before the change that was finally written.
fn observed<'a>(
    change: &'a mut Change<'_>,
    before: &'a mut Option<Before>,
) -> impl FnMut(&mut Job) -> Result<()> + Send + 'a {
    move |j| {
        let b = Before::of(j);
        change(j)?;
        *before = Some(b);
        Ok(())
    }
}

/// A job store that meters the lifecycle: every function wraps its store in it.
pub struct Metered(pub Arc<dyn JobStore>);

impl Metered {
    pub fn wrap(store: Arc<dyn JobStore>) -> Arc<dyn JobStore> {
        Arc::new(Metered(store))
    }
}

#[async_trait]
impl JobStore for Metered {
    async fn create(&self, job: &Job, idempotency: Option<&IdempotencyKey>, charges: &[Charge]) -> Result<Created> {
        let created = self.0.create(job, idempotency, charges).await?;
        if let Created::New(j) = &created {
            put(Dims::of_job(j), Metric::JobsCreated, 1.0);
        }
        Ok(created)
    }
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.0.get(id).await
    }
    async fn modify(&self, id: JobId, change: &mut Change<'_>) -> Result<Job> {
        let mut before = None;
        let after = self.0.modify(id, &mut observed(change, &mut before)).await?;
        if let Some(before) = before {
            lifecycle(&before, &after);
        }
        Ok(after)
    }
    async fn modify_known(&self, known: &Job, change: &mut Change<'_>) -> Result<Job> {
        let mut before = None;
        let after = self.0.modify_known(known, &mut observed(change, &mut before)).await?;
        if let Some(before) = before {
            lifecycle(&before, &after);
        }
        Ok(after)
    }
    async fn discard(&self, job: &Job, idempotency: Option<&IdempotencyKey>) -> Result<()> {
        self.0.discard(job, idempotency).await
    }
    async fn list(&self, filter: &ListFilter, limit: usize, cursor: Option<&str>) -> Result<Page> {
        self.0.list(filter, limit, cursor).await
    }
    async fn find(&self, term: &str, limit: usize) -> Result<Vec<JobId>> {
        self.0.find(term, limit).await
    }
    async fn stats(&self, scope: &Scope, now: OffsetDateTime) -> Result<Stats> {
        self.0.stats(scope, now).await
    }
    async fn oldest(&self, status: JobStatus, before: OffsetDateTime, limit: usize) -> Result<Vec<Job>> {
        self.0.oldest(status, before, limit).await
    }

    async fn due_to_wake(
        &self,
        after: Option<(OffsetDateTime, JobId)>,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Job>> {
        self.0.due_to_wake(after, until, limit).await
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::auth::Caller;
    use crate::job::ArchiveResult;
    use crate::service::{Claim, Ended, Jobs, NewJob, claim, end_attempt};
    use crate::store::memory::{MemoryJobStore, MemoryQueue};
    use time::Duration;

    #[test]
    fn a_line_is_valid_emf_with_every_metric_declared_and_its_unit() {
        let mut metrics = BTreeMap::new();
        metrics.insert(Metric::JobsCompleted, vec![3.0]);
        metrics.insert(Metric::RunTime, vec![12.0, 40.5]);
        let lines = emf_lines(
            "Ns",
            1_700_000_000_000,
            Dims::KindBand("email", BandDim::High),
            &metrics,
        );
        assert_eq!(lines.len(), 1);
        validate(&lines[0]).unwrap();
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["Kind"], "email");
        assert_eq!(doc["Band"], "high");
        assert_eq!(doc["JobsCompleted"], 3.0);
        assert_eq!(doc["RunTime"], json!([12.0, 40.5]));
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Ns");
        assert_eq!(d["Dimensions"], json!([["Kind", "Band"], ["Kind"]]));
        assert_eq!(
            d["Metrics"],
            json!([{"Name": "JobsCompleted", "Unit": "Count"}, {"Name": "RunTime", "Unit": "Milliseconds"}])
        );
        assert!(!lines[0].contains('\n'), "one object per line");
    }

    #[test]
    fn over_a_hundred_values_split_into_lines_and_counts_sum() {
        let rec_lines = Arc::new(Lines::default());
        let rec = Recorder::new("Ns", rec_lines.clone());
        for i in 0..250 {
            rec.put(Dims::Kind("image"), Metric::ImageBytes, i as f64);
            rec.put(Dims::Kind("image"), Metric::ImageUrlsMeasured, 1.0);
        }
        rec.put(Dims::Kind("image"), Metric::ImageBytes, f64::NAN);
        rec.flush();
        let lines = rec_lines.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 3);
        for l in &lines {
            validate(l).unwrap();
        }
        let got = Captured { lines };
        assert_eq!(got.values(Metric::ImageBytes, &[]).len(), 250);
        assert_eq!(got.sum(Metric::ImageUrlsMeasured, &[]), 250.0);
        // a flush empties the recorder
        rec.flush();
        assert_eq!(rec_lines.0.lock().unwrap().len(), 3);
    }

    #[test]
    fn validation_catches_what_cloudwatch_would_drop() {
        let bad = [
            (r#"{"x":1}"#, "no _aws"),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Kind"]],"Metrics":[{"Name":"A","Unit":"Count"}]}]},"A":1}"#,
                "dimension Kind",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A","Unit":"Count"}]}]}}"#,
                "A is not a number",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}"#,
                "A has no Unit",
            ),
        ];
        for (line, why) in bad {
            let e = validate(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    fn caller() -> Caller {
        Caller::admin("ops")
    }

    #[tokio::test]
    async fn a_lifecycle_run_counts_each_step_once_by_kind_and_band() {
        let store: Arc<dyn JobStore> = Metered::wrap(Arc::new(MemoryJobStore::new()));
        let jobs = Jobs::new(store.clone(), Arc::new(MemoryQueue::new()), Duration::seconds(60));
        let ((), got) = capture(async {
            let new = |priority| NewJob {
                kind: "archive".into(),
                payload: serde_json::json!({"asset_id": "a", "source": "s3://b/k"}),
                priority: Some(priority),
                scheduled_for: None,
            };
            let (done, _) = jobs.submit(&caller(), new(5), None).await.unwrap();
            let (flaky, _) = jobs.submit(&caller(), new(1), None).await.unwrap();
            for id in [done.id, flaky.id] {
                let Claim::Claimed(_) = claim(store.as_ref(), id, Duration::seconds(60)).await.unwrap() else {
                    panic!("not claimed")
                };
            }
            end_attempt(
                store.as_ref(),
                done.id,
                1,
                &Ended::Completed(ArchiveResult::example().into()),
            )
            .await
            .unwrap();
            let transient = Ended::Transient {
                error: "boom".into(),
                redelivered: true,
            };
            end_attempt(store.as_ref(), flaky.id, 1, &transient).await.unwrap();
            claim(store.as_ref(), flaky.id, Duration::seconds(60)).await.unwrap();
            end_attempt(store.as_ref(), flaky.id, 2, &Ended::Permanent("bad".into()))
                .await
                .unwrap();
            // a change that changes nothing, and a refused one, count nothing
            let _ = claim(store.as_ref(), done.id, Duration::seconds(60)).await.unwrap();
        })
        .await;
        let ids: Vec<String> = store
            .list(&ListFilter::default(), 10, None)
            .await
            .unwrap()
            .jobs
            .iter()
            .map(|j| j.id.to_string())
            .collect();
        assert_eq!(ids.len(), 2);
        for line in &got.lines {
            validate(line).unwrap();
            assert!(ids.iter().all(|id| !line.contains(id.as_str())), "a job id in {line}");
        }
        let high = [("Kind", "archive"), ("Band", "high")];
        let normal = [("Kind", "archive"), ("Band", "normal")];
        assert_eq!(got.sum(Metric::JobsCreated, &high), 1.0);
        assert_eq!(got.sum(Metric::JobsCreated, &normal), 1.0);
        assert_eq!(got.sum(Metric::JobsStarted, &high), 1.0);
        assert_eq!(got.sum(Metric::JobsStarted, &normal), 2.0);
        assert_eq!(got.sum(Metric::JobsCompleted, &high), 1.0);
        assert_eq!(got.sum(Metric::JobsCompleted, &normal), 0.0);
        assert_eq!(got.sum(Metric::JobsRetried, &normal), 1.0);
        assert_eq!(got.sum(Metric::JobsFailed, &normal), 1.0);
        assert_eq!(got.values(Metric::RunTime, &[("Kind", "archive")]).len(), 2);
        assert_eq!(got.values(Metric::QueueTime, &[("Kind", "archive")]).len(), 3);
        // one line per dimension set: (archive, high), (archive, normal), (archive)
        assert_eq!(got.lines.len(), 3, "{:#?}", got.lines);
    }
}
