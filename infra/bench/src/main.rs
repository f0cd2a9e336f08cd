//! `bench-handlers`: requests/s and latency of `POST /jobs` and `GET /jobs`, and jobs/s of the
//! worker, (1) in-process against the emulators with the time spent inside the emulator measured
//! by an SDK interceptor and subtracted ("handler time"), and (2) through the running local stack
//! over HTTP (API Gateway stand-in + cargo lambda watch), when it is up, signed in as the local
//! issuer's machine client (client credentials, as a service calling the API would).
//!
//! Also the cost of metrics and tracing on the handler path: the same handlers with EMF metrics
//! and the functions' JSON log subscriber each on and off, in alternating rounds of one run.
//!
//! Usage: bench-handlers [REQUESTS] [CONCURRENCY]   (defaults 300 and 4)
//! Run it optimized: `infra/bench/handlers` builds it with the `bench` profile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use axum::body::Body;
use axum::http::Request;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::queue::{JobMessage, SqsJobQueue};
use shared::service::Jobs;
use shared::store::DynamoJobStore;
use tower::ServiceExt;

tokio::task_local! {
    /// Nanoseconds the current request spent waiting on the emulator.
    static EMULATOR_NANOS: Arc<AtomicU64>;
}

#[derive(Debug)]
struct SentAt(Instant);
impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

/// Adds the time between sending a request and receiving its response to `EMULATOR_NANOS`.
#[derive(Debug)]
struct EmulatorTimer;

impl Intercept for EmulatorTimer {
    fn name(&self) -> &'static str {
        "EmulatorTimer"
    }
    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        cfg.interceptor_state().store_put(SentAt(Instant::now()));
        Ok(())
    }
    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(SentAt(t)) = cfg.load::<SentAt>() {
            let nanos = t.elapsed().as_nanos() as u64;
            let _ = EMULATOR_NANOS.try_with(|n| n.fetch_add(nanos, Ordering::Relaxed));
        }
        Ok(())
    }
}

struct Sample {
    total: Duration,
    emulator: Duration,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Prints rate and latency; `handler only` subtracts the emulator's share, which is meaningful
/// only when a sample's AWS calls run one after another (`sequential_calls`).
fn report(name: &str, samples: &[Sample], wall: Duration) {
    report_with(name, samples, wall, true)
}

fn report_with(name: &str, samples: &[Sample], wall: Duration, sequential_calls: bool) {
    let mut total: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    let mut handler: Vec<Duration> = samples.iter().map(|s| s.total.saturating_sub(s.emulator)).collect();
    total.sort();
    handler.sort();
    let rps = samples.len() as f64 / wall.as_secs_f64();
    if !sequential_calls {
        println!(
            "{name:<34} {:>8.1}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   handler only: n/a (records run concurrently)",
            rps,
            pct(&total, 0.5),
            pct(&total, 0.99)
        );
        return;
    }
    println!(
        "{name:<34} {:>8.1}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   handler only: p50 {:>6.3} ms  p99 {:>6.3} ms",
        rps,
        pct(&total, 0.5),
        pct(&total, 0.99),
        pct(&handler, 0.5),
        pct(&handler, 0.99)
    );
}

/// Where the bench's EMF lines go: written, as a function's are, to a file that keeps nothing.
struct DevNull(std::sync::Mutex<std::fs::File>);

impl shared::metrics::Sink for DevNull {
    fn write(&self, line: &str) {
        use std::io::Write;
        let mut f = self.0.lock().unwrap();
        let _ = f.write_all(line.as_bytes());
        let _ = f.write_all(b"\n");
    }
}

/// A sink that counts the lines it passes on.
struct Counting(Arc<dyn shared::metrics::Sink>, AtomicU64);

impl shared::metrics::Sink for Counting {
    fn write(&self, line: &str) {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.write(line);
    }
}

/// CPU time (user + system) of this process so far: the handlers' own work, whatever the
/// emulators (other processes) spend.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

type TracingSwitch = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The functions' log subscriber (`shared::telemetry::json_subscriber`'s settings: JSON lines
/// with the current span's fields, the job id and trace id among them), writing to /dev/null,
/// behind a filter the bench switches between `info` (as in Lambda) and `off`.
fn install_tracing() -> (TracingSwitch, Arc<AtomicU64>) {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new("off"));
    let bytes = Arc::new(AtomicU64::new(0));
    let dev_null = CountingWriter(
        std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap(),
        bytes.clone(),
    );
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .without_time()
                .with_writer(std::sync::Mutex::new(dev_null)),
        )
        .init();
    (handle, bytes)
}

/// /dev/null, counting the bytes written to it.
struct CountingWriter(std::fs::File, Arc<AtomicU64>);

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The SQS event of one batch of job messages.
fn sqs_event(i: usize, batch: &[shared::job::JobId]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (k, id) in batch.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("bench-m{i}-{k}-{id}"));
        m.body = Some(
            serde_json::to_string(&JobMessage {
                job_id: *id,
                part: None,
                run: None,
                images: None,
            })
            .unwrap(),
        );
        event.records.push(m);
    }
    event
}

async fn timed<F: Future<Output = ()>>(f: F) -> Sample {
    let acc = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    EMULATOR_NANOS.scope(acc.clone(), f).await;
    Sample {
        total: start.elapsed(),
        emulator: Duration::from_nanos(acc.load(Ordering::Relaxed)),
    }
}

async fn run<F, Fut>(n: usize, concurrency: usize, f: F) -> (Vec<Sample>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let samples = futures::stream::iter(0..n)
        .map(|i| timed(f(i)))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (samples, start.elapsed())
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(300);
    let concurrency = args.get(1).copied().unwrap_or(4);
    println!("{n} requests, concurrency {concurrency}; emulators: LocalStack (SQS, S3) + DynamoDB Local\n");

    let (tracing_switch, log_bytes) = install_tracing();
    let t = local_bridge::testing::TestStack::new(None).await;
    let sdk = shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(EmulatorTimer)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(EmulatorTimer)
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(EmulatorTimer)
            .build(),
    );
    let store = Arc::new(DynamoJobStore::new(dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(SqsJobQueue::new(
        sqs.clone(),
        t.var("HIGH_QUEUE_URL"),
        t.var("NORMAL_QUEUE_URL"),
    ));
    let jobs = Jobs::new(store.clone(), queue.clone(), time::Duration::seconds(90));
    let files = api::files::Files {
        s3: s3.clone(),
        bucket: t.var("UPLOADS_BUCKET").to_string(),
        entries: Arc::new(shared::store::entries::DynamoEntryStore::new(
            dynamodb.clone(),
            t.var("LOG_ENTRIES_TABLE"),
        )),
        max_upload_bytes: api::files::MAX_UPLOAD_BYTES,
        max_presigned_bytes: api::files::MAX_PRESIGNED_BYTES,
    };
    let files_again = files.clone();
    let app = api::app::router(api::app::AppState {
        jobs: jobs.clone(),
        files,
        parts: Arc::new(shared::store::DynamoPartStore::new(dynamodb.clone(), store.table())),
        // The handlers' cost, not the gateway's: sign-in off (every caller one admin).
        auth: api::auth::AuthConfig::off(),
    });
    let bucket = t.var("UPLOADS_BUCKET").to_string();
    s3.put_object()
        .bucket(&bucket)
        .key("media/bench.bin")
        .body(vec![0u8; 64 * 1024].into())
        .send()
        .await
        .unwrap();
    let create_body = json!({"kind": "archive", "priority": 3, "payload": {"asset_id": "bench", "source": format!("s3://{bucket}/media/bench.bin")}}).to_string();

    // Baseline: the emulator alone, one PutItem, same client.
    let (base, wall) = run(n, concurrency, |i| {
        let dynamodb = dynamodb.clone();
        let table = t.var("JOBS_TABLE").to_string();
        async move {
            dynamodb
                .put_item()
                .table_name(table)
                .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("BENCH#{i}")))
                .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("X".into()))
                .send()
                .await
                .unwrap();
        }
    })
    .await;
    println!("in-process (router / worker handler called directly):");
    report("baseline: raw DynamoDB PutItem", &base, wall);

    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (samples, wall) = run(n, concurrency, |_| {
        let app = app.clone();
        let body = create_body.clone();
        let ids = ids.clone();
        async move {
            let req = Request::post("/jobs")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 201);
            let job: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
            ids.lock()
                .unwrap()
                .push(job["id"].as_str().unwrap().parse::<shared::job::JobId>().unwrap());
        }
    })
    .await;
    report("POST /jobs", &samples, wall);

    let (samples, wall) = run(n, concurrency, |_| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(
                    Request::get("/jobs?status=pending&limit=50")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.unwrap();
        }
    })
    .await;
    report("GET /jobs?status=pending&limit=50", &samples, wall);

    let make_worker = |store: Arc<dyn shared::store::JobStore>| {
        Arc::new(worker::handler::Worker {
            store: store.clone(),
            queue: queue.clone(),
            runner: Arc::new(worker::handler::Processors {
                archive: worker::archive::Archiver::new(Arc::new(shared::objects::S3Objects::new(s3.clone()))),
                // Only archive jobs run here; the mail and notification seams are wired as in main.rs.
                email: worker::email::Emailer::new(Arc::new(shared::mail::SesMailer::new(
                    shared::aws::Clients::from_config(&sdk).ses,
                    "jobs@example.com",
                ))),
                notify: worker::notification::Notifier::new(Arc::new(shared::notify::SnsPublisher::new(
                    shared::aws::Clients::from_config(&sdk).sns,
                    "arn:aws:sns:us-east-1:000000000000:unused",
                ))),
                report: worker::report::Reporter {
                    store: store.clone(),
                    objects: Arc::new(shared::objects::S3Objects::new(s3.clone())),
                    bucket: "unused".into(),
                    link_ttl: std::time::Duration::from_secs(3600),
                    max_jobs: worker::report::REPORT_MAX_JOBS,
                },
            }),
            images: Arc::new(worker::image::ImageJobs::new(
                store.clone(),
                Arc::new(shared::store::DynamoPartStore::new(
                    dynamodb.clone(),
                    t.var("JOBS_TABLE"),
                )),
                queue.clone(),
                worker::image::fetch::Fetcher::new(Default::default()).expect("HTTP client"),
            )),
            lease: time::Duration::seconds(90),
            max_receives: 3,
        })
    };
    let w = make_worker(store.clone());
    let ids: Vec<_> = ids.lock().unwrap().clone();
    let batches: Vec<Vec<shared::job::JobId>> = ids.chunks(10).map(|c| c.to_vec()).collect();
    let jobs_done = ids.len();
    let (samples, wall) = run(batches.len(), concurrency, |i| {
        let w = w.clone();
        let batch = batches[i].clone();
        async move {
            let mut event = SqsEvent::default();
            for (k, id) in batch.iter().enumerate() {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("bench-{i}-{k}"));
                m.body = Some(
                    serde_json::to_string(&JobMessage {
                        job_id: *id,
                        part: None,
                        run: None,
                        images: None,
                    })
                    .unwrap(),
                );
                event.records.push(m);
            }
            let out = w.handle(event).await.unwrap();
            assert!(out.batch_item_failures.is_empty());
        }
    })
    .await;
    report_with("worker: batch of 10 archive jobs", &samples, wall, false);
    println!(
        "{:<34} {:>8.1} jobs/s",
        "worker throughput",
        jobs_done as f64 / wall.as_secs_f64()
    );

    // The cost of metrics and tracing: the same handlers over the metered store, each request or
    // batch an invocation whose EMF lines are written (to /dev/null) at its end, with recording
    // on and off (`shared::metrics::set_enabled`, what METRICS=off does), and the functions' JSON
    // log subscriber at `info` or `off`, in alternating rounds (4 configurations per round). The
    // trace header itself (read from the request or record, sent with each SQS message, a span
    // per job) is always carried: it is not switchable, so it is in every configuration.
    {
        let metered = shared::metrics::Metered::wrap(store.clone());
        let mapp = api::app::router(api::app::AppState {
            jobs: Jobs::new(metered.clone(), queue.clone(), time::Duration::seconds(90)),
            files: files_again.clone(),
            parts: Arc::new(shared::store::DynamoPartStore::new(dynamodb.clone(), store.table())),
            auth: api::auth::AuthConfig::off(),
        });
        let mw = make_worker(metered);
        const ROUNDS: usize = 4;
        let per_round = (n / ROUNDS).max(10);
        let switch = (&tracing_switch, &log_bytes);
        let figures = overhead_rounds(&mapp, &mw, &create_body, (ROUNDS, per_round, concurrency), switch).await;
        print_overhead(
            &format!(
                "\nmetrics and tracing overhead (same run, {ROUNDS} alternating rounds of 4 configurations, {} jobs each; \
                 ratios against both off; CPU = this process's user+system time per request or batch, \
                 the emulators excluded):",
                figures[0].jobs
            ),
            &figures,
        );
        #[cfg(feature = "memory-twins")]
        instrumentation_alone(&figures, &files_again, &bucket, concurrency, switch).await;
        #[cfg(not(feature = "memory-twins"))]
        println!(
            "(the instrumentation alone is measured when built with --features memory-twins, as infra/bench/handlers does)"
        );
    }

    let api_url = std::env::var("API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    if reqwest::Client::new()
        .get(format!("{api_url}/health"))
        .send()
        .await
        .is_err()
    {
        println!("\n(local stack not running: skipped the HTTP figures; start it with infra/up)");
        return;
    }
    let state_dir = local_bridge::testing::state_dir();
    // The stack signs in (since #13): a token of the local issuer's machine client, by the client
    // credentials flow, as a service calling the API would get one.
    let (http, owner) = machine_client(&state_dir).await;
    println!("\nthrough the local stack ({api_url}: bridge -> cargo lambda watch -> api), as {owner}:");
    // A real object in the running stack's bucket, under the caller's own prefix (archive sources
    // must be the owner's files), so the jobs the worker picks up complete.
    let stack_bucket = local_bridge::testing::stack_var("UPLOADS_BUCKET");
    let key = format!("uploads/{owner}/media/bench.bin");
    s3.put_object()
        .bucket(&stack_bucket)
        .key(&key)
        .body(vec![0u8; 64 * 1024].into())
        .send()
        .await
        .unwrap();
    let body = json!({"kind": "archive", "priority": 1, "payload": {"asset_id": "bench", "source": format!("s3://{stack_bucket}/{key}")}})
        .to_string();
    let (samples, wall) = run(n, concurrency, |_| {
        let http = http.clone();
        let body = body.clone();
        let url = format!("{api_url}/jobs");
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        }
    })
    .await;
    report("HTTP POST /jobs", &samples, wall);
    let (samples, wall) = run(n, concurrency, |_| {
        let http = http.clone();
        let url = format!("{api_url}/jobs?limit=50");
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
    })
    .await;
    report("HTTP GET /jobs?limit=50", &samples, wall);
    println!("(\"handler only\" is not separable over HTTP: it is measured in-process above)");
}

/// An HTTP client signed in as the local issuer's machine client (`client_credentials` at
/// `$ISSUER_URL/oauth2/token`, its secret from the stack's state directory), and the owner id
/// the API knows it by (`GET /me`).
async fn machine_client(state_dir: &std::path::Path) -> (reqwest::Client, String) {
    let issuer = std::env::var("ISSUER_URL").unwrap_or_else(|_| "http://127.0.0.1:3001".into());
    let api_url = std::env::var("API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let secret = local_bridge::auth::machine_client_secret(state_dir).expect("the machine client's secret");
    let resp = reqwest::Client::new()
        .post(format!("{issuer}/oauth2/token"))
        .basic_auth(local_bridge::auth::MACHINE_CLIENT_ID, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("the local issuer answers");
    let status = resp.status();
    let token: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "client credentials at {issuer}: {status} {token}");
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let me: Value = http
        .get(format!("{api_url}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = me["owner"]
        .as_str()
        .unwrap_or_else(|| panic!("GET /me: {me}"))
        .to_string();
    (http, owner)
}

/// What one configuration of the overhead rounds measured.
#[derive(Default)]
struct Figures {
    post: Vec<Sample>,
    work: Vec<Sample>,
    post_cpu: Duration,
    work_cpu: Duration,
    jobs: usize,
    emf_lines: u64,
    log_bytes: u64,
}

/// (metrics, tracing): the configurations of the overhead rounds, both off first.
const CONFIGS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// `rounds` alternating rounds of the 4 [`CONFIGS`], each `per_round` POSTs through `mapp`, then
/// the jobs they made in batches of 10 through `mw`; each request or batch an invocation whose EMF
/// lines are written (to /dev/null) at its end. Metrics and logs are left on and `off` after.
async fn overhead_rounds(
    mapp: &axum::Router,
    mw: &Arc<worker::handler::Worker>,
    create_body: &str,
    (rounds, per_round, concurrency): (usize, usize, usize),
    (tracing_switch, log_bytes): (&TracingSwitch, &Arc<AtomicU64>),
) -> Vec<Figures> {
    let sink: Arc<dyn shared::metrics::Sink> = Arc::new(DevNull(std::sync::Mutex::new(
        std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap(),
    )));
    let mut figures: Vec<Figures> = CONFIGS.iter().map(|_| Figures::default()).collect();
    for _ in 0..rounds {
        for (c, &(metrics_on, tracing_on)) in CONFIGS.iter().enumerate() {
            shared::metrics::set_enabled(metrics_on);
            tracing_switch
                .reload(tracing_subscriber::EnvFilter::new(if tracing_on {
                    "info"
                } else {
                    "off"
                }))
                .unwrap();
            let logged = log_bytes.load(Ordering::Relaxed);
            let counted = Arc::new(Counting(sink.clone(), AtomicU64::new(0)));
            let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
            let cpu = cpu_time();
            let (samples, _) = run(per_round, concurrency, |_| {
                let app = mapp.clone();
                let body = create_body.to_string();
                let ids = ids.clone();
                let rec = Arc::new(shared::metrics::Recorder::new("Bench", counted.clone()));
                shared::metrics::scoped(
                    rec,
                    shared::metrics::invocation(async move {
                        let req = Request::post("/jobs")
                            .header("content-type", "application/json")
                            .body(Body::from(body))
                            .unwrap();
                        let resp = app.oneshot(req).await.unwrap();
                        assert_eq!(resp.status(), 201);
                        let job: Value =
                            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
                        ids.lock()
                            .unwrap()
                            .push(job["id"].as_str().unwrap().parse::<shared::job::JobId>().unwrap());
                    }),
                )
            })
            .await;
            let f = &mut figures[c];
            f.post_cpu += cpu_time() - cpu;
            f.post.extend(samples);
            let ids: Vec<_> = ids.lock().unwrap().clone();
            f.jobs += ids.len();
            let batches: Vec<Vec<shared::job::JobId>> = ids.chunks(10).map(|c| c.to_vec()).collect();
            let cpu = cpu_time();
            let (samples, _) = run(batches.len(), concurrency, |i| {
                let w = mw.clone();
                let event = sqs_event(i, &batches[i]);
                let rec = Arc::new(shared::metrics::Recorder::new("Bench", counted.clone()));
                shared::metrics::scoped(
                    rec,
                    shared::metrics::invocation(async move {
                        let out = w.handle(event).await.unwrap();
                        assert!(out.batch_item_failures.is_empty());
                    }),
                )
            })
            .await;
            f.work_cpu += cpu_time() - cpu;
            f.work.extend(samples);
            f.emf_lines += counted.1.load(Ordering::Relaxed);
            f.log_bytes += log_bytes.load(Ordering::Relaxed) - logged;
        }
    }
    shared::metrics::set_enabled(true);
    tracing_switch
        .reload(tracing_subscriber::EnvFilter::new("off"))
        .unwrap();
    for (f, &(metrics_on, tracing_on)) in figures.iter().zip(CONFIGS.iter()) {
        assert_eq!(
            f.emf_lines > 0,
            metrics_on,
            "metrics {metrics_on}: {} EMF lines",
            f.emf_lines
        );
        assert_eq!(
            f.log_bytes > 0,
            tracing_on,
            "tracing {tracing_on}: {} log bytes",
            f.log_bytes
        );
    }
    figures
}

/// The overhead rounds' table: each configuration's p50, mean and CPU per POST and per worker
/// batch, and its ratio against both off.
fn print_overhead(title: &str, figures: &[Figures]) {
    let p50 = |v: &[Sample]| {
        let mut d: Vec<Duration> = v.iter().map(|s| s.total).collect();
        d.sort();
        pct(&d, 0.5)
    };
    let mean = |v: &[Sample]| v.iter().map(|s| s.total.as_secs_f64()).sum::<f64>() / v.len() as f64 * 1000.0;
    let base = &figures[0];
    println!("{title}");
    for (f, &(metrics_on, tracing_on)) in figures.iter().zip(CONFIGS.iter()) {
        let name = match (metrics_on, tracing_on) {
            (false, false) => "both off",
            (true, false) => "metrics on",
            (false, true) => "tracing on",
            (true, true) => "metrics + tracing on",
        };
        let cpu_ms = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1000.0 / n as f64;
        let ratio = |a: f64, b: f64| a / b;
        println!(
            "{name:<22} POST /jobs: p50 {:>7.2} ms ({:.3}x) mean {:>7.2} ms ({:.3}x) CPU {:>6.3} ms ({:.3}x) | \
                 worker batch of 10: p50 {:>8.2} ms ({:.3}x) mean {:>8.2} ms ({:.3}x) CPU {:>6.3} ms ({:.3}x) | \
                 {} EMF lines, {} KB of logs",
            p50(&f.post),
            ratio(p50(&f.post), p50(&base.post)),
            mean(&f.post),
            ratio(mean(&f.post), mean(&base.post)),
            cpu_ms(f.post_cpu, f.post.len()),
            ratio(cpu_ms(f.post_cpu, f.post.len()), cpu_ms(base.post_cpu, base.post.len())),
            p50(&f.work),
            ratio(p50(&f.work), p50(&base.work)),
            mean(&f.work),
            ratio(mean(&f.work), mean(&base.work)),
            cpu_ms(f.work_cpu, f.work.len()),
            ratio(cpu_ms(f.work_cpu, f.work.len()), cpu_ms(base.work_cpu, base.work.len())),
            f.emf_lines,
            f.log_bytes / 1024,
        );
    }
}

/// The instrumentation alone: the same rounds over the in-memory twins of the store, the queue
/// and S3 (no emulator, no network), so this process's CPU is all there is and the difference
/// between a configuration and both off is the cost of recording and writing the EMF lines and
/// the log lines themselves, measured over many more requests than the emulators allow. That
/// cost is then put against the CPU of one request or batch of the real path above (both off),
/// measured in the same run.
#[cfg(feature = "memory-twins")]
async fn instrumentation_alone(
    real: &[Figures],
    files: &api::files::Files,
    bucket: &str,
    concurrency: usize,
    switch: (&TracingSwitch, &Arc<AtomicU64>),
) {
    use shared::store::memory::{
        MemoryJobStore, MemoryMailer, MemoryObjects, MemoryPartStore, MemoryPublisher, MemoryQueue,
    };
    let store = shared::metrics::Metered::wrap(Arc::new(MemoryJobStore::new()));
    let queue = Arc::new(MemoryQueue::new());
    let objects = Arc::new(MemoryObjects::new());
    objects.put(bucket, "media/bench.bin", vec![0u8; 64 * 1024]);
    let app = api::app::router(api::app::AppState {
        jobs: Jobs::new(store.clone(), queue.clone(), time::Duration::seconds(90)),
        files: files.clone(),
        parts: Arc::new(MemoryPartStore::new()),
        auth: api::auth::AuthConfig::off(),
    });
    let worker = Arc::new(worker::handler::Worker {
        store: store.clone(),
        queue: queue.clone(),
        runner: Arc::new(worker::handler::Processors {
            archive: worker::archive::Archiver::new(objects.clone()),
            email: worker::email::Emailer::new(Arc::new(MemoryMailer::new("jobs@example.com"))),
            notify: worker::notification::Notifier::new(Arc::new(MemoryPublisher::new(
                "arn:aws:sns:us-east-1:000000000000:unused",
            ))),
            report: worker::report::Reporter {
                store: store.clone(),
                objects,
                bucket: "unused".into(),
                link_ttl: std::time::Duration::from_secs(3600),
                max_jobs: worker::report::REPORT_MAX_JOBS,
            },
        }),
        images: Arc::new(worker::image::ImageJobs::new(
            store,
            Arc::new(MemoryPartStore::new()),
            queue,
            worker::image::fetch::Fetcher::new(Default::default()).expect("HTTP client"),
        )),
        lease: time::Duration::seconds(90),
        max_receives: 3,
    });
    let body = json!({"kind": "archive", "priority": 3, "payload": {"asset_id": "bench", "source": format!("s3://{bucket}/media/bench.bin")}}).to_string();
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 1_000;
    let twins = overhead_rounds(&app, &worker, &body, (ROUNDS, PER_ROUND, concurrency), switch).await;
    print_overhead(
        &format!(
            "\nthe same over the in-memory twins (store, queue, S3: this process's work only), {ROUNDS} alternating rounds, {} jobs each:",
            twins[0].jobs
        ),
        &twins,
    );
    let per = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1000.0 / n as f64;
    let (real_post, real_work) = (
        per(real[0].post_cpu, real[0].post.len()),
        per(real[0].work_cpu, real[0].work.len()),
    );
    println!(
        "\nthe instrumentation's own CPU (in-memory configuration minus in-memory both off), against the real path's CPU with both off \
         ({real_post:.3} ms a POST, {real_work:.3} ms a batch of 10, same run):"
    );
    for (f, &(metrics_on, tracing_on)) in twins.iter().zip(CONFIGS.iter()).skip(1) {
        let name = match (metrics_on, tracing_on) {
            (true, false) => "metrics on",
            (false, true) => "tracing on",
            _ => "metrics + tracing on",
        };
        let post = per(f.post_cpu, f.post.len()) - per(twins[0].post_cpu, twins[0].post.len());
        let work = per(f.work_cpu, f.work.len()) - per(twins[0].work_cpu, twins[0].work.len());
        println!(
            "{name:<22} POST /jobs: +{:.1} us = **{:+.2} %** of a real POST | worker batch of 10: +{:.1} us = **{:+.2} %** of a real batch",
            post * 1000.0,
            100.0 * post / real_post,
            work * 1000.0,
            100.0 * work / real_work,
        );
    }
}
