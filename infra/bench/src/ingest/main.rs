//! `bench-ingest`: the JSONL ingest, measured three ways (issue "JSONL log ingestion").
//!
//! 1. **parse+validate**: lines/s and MB/s on one core (a current-thread runtime; CPU time of the
//!    thread, so that other processes on the machine weigh less) of exactly what the ingest does
//!    per line: `ingest::reader::lines` + `reader::read_line` (bounded) + a UTF-8 check +
//!    `Tally::line` (blank-line skip, `shared::logs::parse_line`, counting) + batches of 25, with
//!    the function's global allocator. Over a deterministic generated corpus (`corpus.rs`).
//!    Informative second row: the same plus the DynamoDB item encoding (`DynamoEntryStore::items`) that
//!    runs per batch before storing.
//! 2. **end to end**: the ingest handler (in-process, as in its tests) storing a file from
//!    LocalStack S3 into moto, against, in the same run and alternating rounds, the emulator's raw
//!    `BatchWriteItem` rate for the same items (pre-encoded, 25 per call, the handler's
//!    `WRITES_IN_FLIGHT`), which is the ceiling.
//! 3. **peak RSS** (`VmHWM`) of the real ingest binary for files of two sizes, run under a minimal
//!    Runtime API with one S3 event; its DynamoDB endpoint is a thin proxy that drops the
//!    entries' `BatchWriteItem` calls (see `fake_lambda.rs`), everything else is real.
//!
//! Usage: bench-ingest [--only parse|e2e|rss]... [--parse-mb 64] [--parse-runs 5] [--breakdown]
//!                     [--e2e-kb 4096] [--rounds 4] [--rss-mb 10 --rss-mb 500]
//!                     [--binary target/.../ingest] [--data-dir DIR]

mod corpus;
mod fake_lambda;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::WriteRequest;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use ingest::handler::{Ingest, Tally, WRITES_IN_FLIGHT};
use serde_json::Value;
use shared::job::{JobId, JobStatus};
use shared::logs::LogEntry;
use shared::objects::S3Objects;
use shared::queue::SqsJobQueue;
use shared::service::Jobs;
use shared::store::entries::{BATCH, DynamoEntryStore};
use shared::store::{DynamoJobStore, JobStore};
use tokio::io::AsyncBufReadExt;

/// The ingest function's allocator (functions/ingest/src/main.rs), so that the line loop here
/// runs as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED_PARSE: u64 = 1;
const SEED_E2E: u64 = 2;
const SEED_RSS: u64 = 3;
const PARSE_TARGET_MBS: f64 = 200.0;
const E2E_TARGET: f64 = 0.90;
const RSS_TARGET_MB: f64 = 64.0;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Part {
    Parse,
    E2e,
    Rss,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmark of the JSONL ingest: parse+validate, end to end into moto, peak RSS")]
struct Args {
    /// Parts to run (default: all).
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Size of the in-memory corpus for parse+validate, MB.
    #[arg(long, default_value_t = 64)]
    parse_mb: u64,
    /// Passes over that corpus (the best one is reported).
    #[arg(long, default_value_t = 5)]
    parse_runs: u32,
    /// Also time the parts of the line loop (reading, JSON alone, parse_line, batching).
    #[arg(long)]
    breakdown: bool,
    /// Size of the file stored end to end (and written raw), KB.
    #[arg(long, default_value_t = 4096)]
    e2e_kb: u64,
    /// End-to-end rounds (each: raw and handler, in alternating order).
    #[arg(long, default_value_t = 4)]
    rounds: u32,
    /// File sizes for the peak-RSS runs, MB.
    #[arg(long = "rss-mb", default_values_t = [10, 500])]
    rss_mb: Vec<u64>,
    /// The ingest function binary (bench/release build) for the peak-RSS runs.
    #[arg(long, env = "INGEST_BIN")]
    binary: Option<PathBuf>,
    /// Where the generated RSS files are kept (reused across runs; never in the repo).
    #[arg(long, env = "BENCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let all = args.only.is_empty();
    let run = |p| all || args.only.contains(&p);
    let mut summary = Summary::default();
    if run(Part::Parse) {
        summary.parse = Some(parse_bench(args.parse_mb, args.parse_runs, args.breakdown));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if run(Part::E2e) {
        summary.e2e = Some(rt.block_on(e2e_bench(args.e2e_kb, args.rounds)));
    }
    if run(Part::Rss) {
        let binary = args
            .binary
            .clone()
            .expect("--binary (or INGEST_BIN): the ingest function binary for the RSS runs");
        let dir = args.data_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
                .join(".cache/serverless-jobs/bench-ingest")
        });
        summary.rss = rt.block_on(rss_bench(&binary, &args.rss_mb, &dir));
    }
    summary.print();
}

// ---------------------------------------------------------------------------------------------
// 1. parse + validate

struct ParseFigures {
    bytes: u64,
    lines: u64,
    /// Best run, CPU time of the (only) thread.
    best: Duration,
    best_encoded: Duration,
    /// Best run, wall clock (higher when other processes compete for the core).
    best_wall: Duration,
}

/// CPU time of the calling thread: the measure of "one core" even when the machine is shared.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The corpus is plain text: the gzip limits do not apply.
const NO_GZIP: ingest::reader::InflateLimits = ingest::reader::InflateLimits {
    max_bytes: u64::MAX,
    max_ratio: u64::MAX,
};

/// One pass of the ingest's line loop over `corpus`; with `encode`, valid entries are also turned
/// into DynamoDB items 25 at a time, as the handler does before each `BatchWriteItem`.
async fn line_loop(corpus: &'static [u8], encode: Option<&DynamoEntryStore>) -> (Tally, u64) {
    let job = JobId::new();
    let mut reader = ingest::reader::lines(corpus, false, Arc::new(AtomicU64::new(0)), NO_GZIP);
    let (mut buf, mut tally, mut number, mut valid) = (Vec::new(), Tally::default(), 0u64, 0u64);
    let mut batch: Vec<LogEntry> = Vec::with_capacity(BATCH);
    let max_line = ingest::handler::Limits::default().max_line;
    loop {
        let read = ingest::reader::read_line(&mut reader, &mut buf, max_line)
            .await
            .expect("readable");
        if read == ingest::reader::Line::End {
            break;
        }
        number += 1;
        let text = std::str::from_utf8(&buf).expect("the corpus is UTF-8");
        if let Some(entry) = tally.line(number, text) {
            batch.push(entry);
        }
        if batch.len() == BATCH {
            valid += BATCH as u64;
            if let Some(store) = encode {
                std::hint::black_box(store.items(job, &batch).expect("encodable"));
            }
            batch.clear();
        }
    }
    (tally, valid + batch.len() as u64)
}

fn parse_bench(mb: u64, runs: u32, breakdown: bool) -> ParseFigures {
    println!("== parse+validate: one core, {mb} MB generated corpus (seed {SEED_PARSE}) ==");
    let (corpus, expected) = corpus::in_memory(SEED_PARSE, mb << 20);
    let corpus: &'static [u8] = Box::leak(corpus.into_boxed_slice());
    let bytes = corpus.len() as u64;
    let lines = expected.lines;
    println!(
        "   {lines} lines, {:.1} MB, avg {:.0} B/line: {} valid, {} invalid, {} blank",
        bytes as f64 / 1e6,
        bytes as f64 / lines as f64,
        expected.valid,
        expected.invalid,
        expected.blank
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = DynamoEntryStore::new(offline_dynamodb(), "bench");
    let run = |encode: Option<&DynamoEntryStore>, label: &str| {
        let (mut best, mut best_wall) = (Duration::MAX, Duration::MAX);
        for i in 1..=runs {
            let (wall, cpu) = (Instant::now(), thread_cpu_time());
            let (tally, valid) = rt.block_on(line_loop(corpus, encode));
            let (took, wall) = (thread_cpu_time() - cpu, wall.elapsed());
            assert_eq!(
                (tally.counts(), valid),
                ((expected.valid + expected.invalid, expected.invalid), expected.valid),
                "the ingest's counts differ from the generator's"
            );
            println!(
                "   {label} run {i}: {:>7.1} MB/s {:>6.2} M lines/s (CPU time; wall: {:>6.1} MB/s)",
                bytes as f64 / 1e6 / took.as_secs_f64(),
                lines as f64 / 1e6 / took.as_secs_f64(),
                bytes as f64 / 1e6 / wall.as_secs_f64(),
            );
            best = best.min(took);
            best_wall = best_wall.min(wall);
        }
        (best, best_wall)
    };
    if breakdown {
        breakdown_of(corpus);
    }
    let (best, best_wall) = run(None, "parse+validate         ");
    let (best_encoded, _) = run(Some(&store), "+ item encoding (info) ");
    ParseFigures {
        bytes,
        lines,
        best,
        best_encoded,
        best_wall,
    }
}

/// Where the time of the line loop goes (`--breakdown`), CPU time, best of 3.
fn breakdown_of(corpus: &'static [u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mb = corpus.len() as f64 / 1e6;
    let text = std::str::from_utf8(corpus).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let time = |label: &str, f: &mut dyn FnMut() -> u64| {
        let mut best = Duration::MAX;
        let mut n = 0;
        for _ in 0..3 {
            let t = thread_cpu_time();
            n = std::hint::black_box(f());
            best = best.min(thread_cpu_time() - t);
        }
        println!("   breakdown {label:<40} {:>8.1} MB/s  ({n})", mb / best.as_secs_f64());
    };
    time("read_line only", &mut || {
        rt.block_on(async {
            let mut reader = ingest::reader::lines(corpus, false, Arc::new(AtomicU64::new(0)), NO_GZIP);
            let (mut buf, mut n) = (String::new(), 0u64);
            loop {
                buf.clear();
                if reader.read_line(&mut buf).await.unwrap() == 0 {
                    return n;
                }
                n += buf.len() as u64;
            }
        })
    });
    time("serde_json IgnoredAny per line", &mut || {
        lines
            .iter()
            .filter(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok())
            .count() as u64
    });
    time("serde_json Value per line", &mut || {
        lines
            .iter()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .count() as u64
    });
    time("parse_line per line (pre-split)", &mut || {
        lines
            .iter()
            .zip(1..)
            .filter(|(l, n)| shared::logs::parse_line(*n, l.trim_end()).is_ok())
            .count() as u64
    });
    time("pre-split + Tally::line, dropped at once", &mut || {
        let mut tally = Tally::default();
        lines
            .iter()
            .zip(1..)
            .filter(|(l, n)| tally.line(*n, l).is_some())
            .count() as u64
    });
    time("pre-split + Tally::line, batches of 25", &mut || {
        let mut tally = Tally::default();
        let mut batch = Vec::with_capacity(BATCH);
        let mut n = 0;
        for (l, i) in lines.iter().zip(1..) {
            if let Some(e) = tally.line(i, l) {
                batch.push(e);
            }
            if batch.len() == BATCH {
                n += 1;
                batch.clear();
            }
        }
        n
    });
    time("read_line + Tally::line, dropped at once", &mut || {
        rt.block_on(async {
            let mut reader = ingest::reader::lines(corpus, false, Arc::new(AtomicU64::new(0)), NO_GZIP);
            let (mut buf, mut n, mut tally) = (String::new(), 0u64, Tally::default());
            loop {
                buf.clear();
                if reader.read_line(&mut buf).await.unwrap() == 0 {
                    return n;
                }
                n += 1;
                std::hint::black_box(tally.line(n, &buf));
            }
        })
    });
}

/// A client that is never called: `DynamoEntryStore::items` only encodes.
fn offline_dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build(),
    )
}

// ---------------------------------------------------------------------------------------------
// 2. end to end vs raw BatchWriteItem

struct E2eFigures {
    lines: u64,
    items: u64,
    /// (raw, handler) time of each round.
    rounds: Vec<(Duration, Duration)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The S3 event of `events/ingest/s3-put-jsonl.json`, for another bucket, key and size.
fn s3_event(bucket: &str, key: &str, size: u64, sequencer: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ingest/s3-put-jsonl.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).expect("event fixture")).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = bucket.into();
    s3["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    s3["object"]["key"] = key.into(); // plain ASCII without spaces: nothing to URL-encode
    s3["object"]["size"] = size.into();
    s3["object"]["sequencer"] = sequencer.into();
    event
}

fn entries_of(body: &[u8]) -> Vec<LogEntry> {
    let mut tally = Tally::default();
    std::str::from_utf8(body)
        .unwrap()
        .split_inclusive('\n')
        .zip(1..)
        .filter_map(|(l, n)| tally.line(n, l))
        .collect()
}

/// Deletes the throwaway stack's tables: the emulator is shared, and holds everything in memory.
async fn drop_tables(dynamodb: &aws_sdk_dynamodb::Client, t: &local_bridge::testing::TestStack) {
    for table in ["JOBS_TABLE", "LOG_ENTRIES_TABLE"] {
        dynamodb.delete_table().table_name(t.var(table)).send().await.ok();
    }
}

/// Counts the DynamoDB calls of a client by operation (`X-Amz-Target`), with their summed latency.
#[derive(Debug, Default, Clone)]
struct OpCounter(Arc<std::sync::Mutex<std::collections::BTreeMap<String, (u64, Duration)>>>);

#[derive(Debug)]
struct SentAt(String, Instant);
impl aws_smithy_types::config_bag::Storable for SentAt {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_sdk_dynamodb::config::Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "OpCounter"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        cfg.interceptor_state().store_put(SentAt(op, Instant::now()));
        Ok(())
    }
    fn read_after_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(SentAt(op, at)) = cfg.load::<SentAt>() {
            let mut ops = self.0.lock().unwrap();
            let e = ops.entry(op.clone()).or_default();
            e.0 += 1;
            e.1 += at.elapsed();
        }
        Ok(())
    }
}

impl OpCounter {
    /// "BatchWriteItem 311, TransactWriteItems 12, ..." since the last call; resets.
    fn take(&self) -> String {
        let ops = std::mem::take(&mut *self.0.lock().unwrap());
        let mut by_count: Vec<_> = ops.into_iter().collect();
        by_count.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
        by_count
            .iter()
            .map(|(op, (n, _))| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn e2e_bench(kb: u64, rounds: u32) -> E2eFigures {
    println!(
        "\n== end to end: ingest handler -> moto, vs raw BatchWriteItem (25/call, {WRITES_IN_FLIGHT} in flight) =="
    );
    let t = local_bridge::testing::TestStack::new(None).await;
    let sdk = shared::aws::sdk_config().await;
    let clients = shared::aws::Clients::from_config(&sdk);
    // One client for both sides, counting its calls: the same connection pool and settings.
    let ops = OpCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(ops.clone())
            .build(),
    );
    let table = t.var("LOG_ENTRIES_TABLE").to_string();
    let store = Arc::new(DynamoJobStore::new(dynamodb.clone(), t.var("JOBS_TABLE")));
    let queue = Arc::new(
        SqsJobQueue::new(clients.sqs.clone(), t.var("HIGH_QUEUE_URL"), t.var("NORMAL_QUEUE_URL"))
            .with_ingest(t.var("INGEST_QUEUE_URL")),
    );
    // The raw side encodes with the same store the handler writes through.
    let entry_store = Arc::new(DynamoEntryStore::new(dynamodb.clone(), &table));
    let ingest = Ingest {
        jobs: Jobs::new(store.clone(), queue, time::Duration::seconds(600)),
        entries: entry_store.clone(),
        objects: Arc::new(S3Objects::new(clients.s3.clone())),
        lease: time::Duration::seconds(600),
        line_delay_ms: 0,
        time_budget: Duration::from_secs(3600),
        limits: Default::default(),
    };
    let bucket = t.var("UPLOADS_BUCKET").to_string();
    let (body, expected) = corpus::in_memory(SEED_E2E, kb << 10);
    let entries = entries_of(&body);
    assert_eq!(entries.len() as u64, expected.valid);
    println!(
        "   file: {} lines ({} valid, {} invalid, {} blank), {:.2} MB; stack {}",
        expected.lines,
        expected.valid,
        expected.invalid,
        expected.blank,
        body.len() as f64 / 1e6,
        t.stack.name
    );
    println!("   rounds alternate the order (raw first, then handler first) so that drifts in the emulator's");
    println!("   speed (other processes share the CPU) weigh on both sides alike");
    let raw_round = async |round: u32| -> Duration {
        // The same entries, encoded beforehand, under a fresh job id (new keys, as the handler's).
        let job = JobId::new();
        let requests: Vec<Vec<WriteRequest>> = entries
            .chunks(BATCH)
            .map(|c| entry_store.items(job, c).unwrap())
            .collect();
        ops.take();
        let start = Instant::now();
        futures::stream::iter(requests)
            .map(|r| {
                let (client, table) = (dynamodb.clone(), table.clone());
                async move {
                    let out = client.batch_write_item().request_items(&table, r).send().await;
                    let out = out.map_err(aws_sdk_dynamodb::error::DisplayErrorContext).unwrap();
                    let left = out.unprocessed_items.map_or(0, |u| u.values().map(Vec::len).sum());
                    assert_eq!(left, 0, "the emulator left items unprocessed");
                }
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
        let took = start.elapsed();
        println!(
            "   round {round} raw:     {:>6.0} items/s              {:>6.2} s   calls: {}",
            expected.valid as f64 / took.as_secs_f64(),
            took.as_secs_f64(),
            ops.take()
        );
        took
    };
    let handler_round = async |round: u32| -> Duration {
        let key = format!("bench/e2e-{round}.jsonl");
        clients
            .s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        let event = s3_event(&bucket, &key, body.len() as u64, &format!("{round:018X}"));
        ops.take();
        let start = Instant::now();
        let out = ingest.handle(event, None).await.unwrap();
        let took = start.elapsed();
        let calls = ops.take();
        let id: JobId = out["jobs"][0].as_str().unwrap().parse().unwrap();
        let job = store.get(id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
        let result = job.result.as_ref().unwrap();
        assert_eq!(result["lines_stored"].as_u64(), Some(expected.valid), "{result}");
        println!(
            "   round {round} handler: {:>6.0} items stored/s {:>6.0} lines/s {:>6.2} s   calls: {calls}",
            expected.valid as f64 / took.as_secs_f64(),
            expected.lines as f64 / took.as_secs_f64(),
            took.as_secs_f64(),
        );
        took
    };
    let mut times = Vec::new();
    for round in 1..=rounds {
        let (raw, handler) = if round % 2 == 1 {
            let raw = raw_round(round).await;
            (raw, handler_round(round).await)
        } else {
            let handler = handler_round(round).await;
            (raw_round(round).await, handler)
        };
        println!(
            "   round {round}: handler at {:.1} % of raw",
            raw.as_secs_f64() / handler.as_secs_f64() * 100.0
        );
        times.push((raw, handler));
        clients
            .s3
            .delete_object()
            .bucket(&bucket)
            .key(format!("bench/e2e-{round}.jsonl"))
            .send()
            .await
            .ok();
    }
    drop_tables(&dynamodb, &t).await;
    E2eFigures {
        lines: expected.lines,
        items: expected.valid,
        rounds: times,
    }
}

// ---------------------------------------------------------------------------------------------
// 3. peak RSS of the real binary

struct RssFigure {
    mb: u64,
    bytes: u64,
    lines: u64,
    vm_hwm_kb: u64,
    took: Duration,
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn rss_bench(binary: &Path, sizes: &[u64], dir: &Path) -> Vec<RssFigure> {
    println!(
        "\n== peak RSS of {} (a real Lambda process: Runtime API stand-in, one S3 event) ==",
        binary.display()
    );
    println!("   NOTE: its DynamoDB endpoint is a thin proxy that forwards every call to moto EXCEPT the");
    println!("   entries' BatchWriteItem, which it acknowledges ({{\"UnprocessedItems\":{{}}}}) and drops;");
    println!(
        "   S3 (LocalStack), SQS and the jobs table are real. Generated files: {}",
        dir.display()
    );
    assert!(binary.exists(), "{} does not exist", binary.display());
    let t = local_bridge::testing::TestStack::new(None).await;
    let clients = shared::aws::Clients::from_config(&shared::aws::sdk_config().await);
    let store = DynamoJobStore::new(clients.dynamodb.clone(), t.var("JOBS_TABLE"));
    let bucket = t.var("UPLOADS_BUCKET").to_string();
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("AWS_ENDPOINT_URL_DYNAMODB (source infra/env.sh)");
    let (proxy, dropped) = fake_lambda::dynamodb_proxy(upstream, t.var("LOG_ENTRIES_TABLE").to_string()).await;
    let mut figures = Vec::new();
    for &mb in sizes {
        let (path, expected) = corpus::file(dir, SEED_RSS, mb << 20).expect("writing the generated file");
        let size = std::fs::metadata(&path).unwrap().len();
        let key = format!("bench/rss-{mb}MB.jsonl");
        let t0 = Instant::now();
        clients
            .s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from_path(&path).await.unwrap())
            .send()
            .await
            .map_err(aws_sdk_s3::error::DisplayErrorContext)
            .unwrap();
        println!(
            "   {mb} MB file: {} lines, uploaded to LocalStack in {:.1} s",
            expected.lines,
            t0.elapsed().as_secs_f64()
        );
        let (runtime, answer) = fake_lambda::runtime_api(
            s3_event(&bucket, &key, size, &format!("{mb:018X}")),
            Duration::from_secs(3600),
        )
        .await;
        let before = dropped.items.load(Ordering::Relaxed);
        let start = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .envs(&t.env)
            .env("RUST_LOG", "warn")
            .env("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{proxy}"))
            .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ingest")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("INGEST_TIME_BUDGET_MS", "3600000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the ingest binary");
        let pid = child.id().unwrap();
        let answer = tokio::select! {
            a = answer => a.expect("runtime API"),
            status = child.wait() => panic!("the ingest process exited before answering: {status:?}"),
        };
        let took = start.elapsed();
        let hwm = proc_status_kb(pid, "VmHWM").expect("VmHWM");
        child.kill().await.ok();
        let answer = answer.unwrap_or_else(|e| panic!("the function failed: {}", String::from_utf8_lossy(&e)));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        let id: JobId = answer["jobs"][0].as_str().unwrap().parse().unwrap();
        let job = store.get(id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
        let result = job.result.unwrap();
        assert_eq!(result["lines_stored"].as_u64(), Some(expected.valid), "{result}");
        assert_eq!(dropped.items.load(Ordering::Relaxed) - before, expected.valid);
        println!(
            "   {mb} MB file: VmHWM {:.1} MB; {} lines in {:.1} s ({:.0} lines/s, {:.1} MB/s, entry writes dropped)",
            hwm as f64 / 1024.0,
            expected.lines,
            took.as_secs_f64(),
            expected.lines as f64 / took.as_secs_f64(),
            size as f64 / 1e6 / took.as_secs_f64()
        );
        clients.s3.delete_object().bucket(&bucket).key(&key).send().await.ok();
        figures.push(RssFigure {
            mb,
            bytes: size,
            lines: expected.lines,
            vm_hwm_kb: hwm,
            took,
        });
    }
    drop_tables(&clients.dynamodb, &t).await;
    figures
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Summary {
    parse: Option<ParseFigures>,
    e2e: Option<E2eFigures>,
    rss: Vec<RssFigure>,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

impl Summary {
    fn print(&self) {
        println!("\n== summary ==");
        println!("{:<46} {:<40} target", "measure", "figure");
        if let Some(p) = &self.parse {
            let mbs = p.bytes as f64 / 1e6 / p.best.as_secs_f64();
            let lps = p.lines as f64 / p.best.as_secs_f64();
            println!(
                "{:<46} {:<40} {:<16} {}",
                "parse+validate, 1 core (best run, CPU time)",
                format!("{mbs:.1} MB/s, {:.2} M lines/s", lps / 1e6),
                format!(">= {PARSE_TARGET_MBS:.0} MB/s"),
                verdict(mbs >= PARSE_TARGET_MBS)
            );
            println!(
                "{:<46} {:<40}",
                "  the same, wall clock (shared machine)",
                format!("{:.1} MB/s", p.bytes as f64 / 1e6 / p.best_wall.as_secs_f64())
            );
            let s = p.best_encoded.as_secs_f64();
            println!(
                "{:<46} {:<40}",
                "  + DynamoDB item encoding (informative)",
                format!(
                    "{:.1} MB/s, {:.2} M lines/s",
                    p.bytes as f64 / 1e6 / s,
                    p.lines as f64 / 1e6 / s
                )
            );
        }
        if let Some(e) = &self.e2e {
            // Medians over the rounds: the emulator is shared, and one disturbed round should
            // not decide the figure. The pooled ratio (all rounds' time) is shown too.
            let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
            let raw = median(e.rounds.iter().map(|r| rate(e.items, r.0)).collect());
            let stored = median(e.rounds.iter().map(|r| rate(e.items, r.1)).collect());
            let lines = median(e.rounds.iter().map(|r| rate(e.lines, r.1)).collect());
            let ratio = median(e.rounds.iter().map(|r| r.0.as_secs_f64() / r.1.as_secs_f64()).collect());
            let (raw_sum, handler_sum) = e
                .rounds
                .iter()
                .fold((0.0, 0.0), |(a, b), r| (a + r.0.as_secs_f64(), b + r.1.as_secs_f64()));
            println!(
                "{:<46} {:<40}",
                format!("raw BatchWriteItem into moto (median of {})", e.rounds.len()),
                format!("{raw:.0} items/s")
            );
            println!(
                "{:<46} {:<40}",
                format!("end to end: handler -> moto (median of {})", e.rounds.len()),
                format!("{stored:.0} items stored/s ({lines:.0} lines/s)")
            );
            println!(
                "{:<46} {:<40} {:<16} {}",
                "  end to end / raw (median of round ratios)",
                format!(
                    "{:.1} %  (pooled: {:.1} %)",
                    ratio * 100.0,
                    raw_sum / handler_sum * 100.0
                ),
                format!(">= {:.0} %", E2E_TARGET * 100.0),
                verdict(ratio >= E2E_TARGET)
            );
        }
        for r in &self.rss {
            println!(
                "{:<46} {:<40}",
                format!("peak RSS, {} MB file ({} lines)", r.mb, r.lines),
                format!(
                    "{:.1} MB  ({:.0} lines/s, writes dropped)",
                    r.vm_hwm_kb as f64 / 1024.0,
                    r.lines as f64 / r.took.as_secs_f64()
                )
            );
            let _ = r.bytes;
        }
        if self.rss.len() >= 2 {
            let mbs: Vec<f64> = self.rss.iter().map(|r| r.vm_hwm_kb as f64 / 1024.0).collect();
            let (lo, hi) = mbs.iter().fold((f64::MAX, 0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
            // "The same": within 2 MB or 10 %, whichever is larger.
            let same = hi - lo <= (lo * 0.10).max(2.0);
            println!(
                "{:<46} {:<40} {:<16} {}",
                "  peak RSS across file sizes",
                format!("{lo:.1}..{hi:.1} MB (spread {:.1} MB)", hi - lo),
                format!("same, < {RSS_TARGET_MB:.0} MB"),
                verdict(same && hi < RSS_TARGET_MB)
            );
        }
    }
}
