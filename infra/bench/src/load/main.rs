//! `bench-load`: a burst of jobs through the running local stack (`infra/up`), then the list API
//! and the overview at that size, each next to the raw emulator doing the same kind of work in
//! the same run.
//!
//! 1. **Raw write rate**: the same concurrency of one `TransactWriteItems` each, the very items a
//!    job's creation writes (the job and its counters, `DynamoJobStore::create`), straight to the
//!    emulator on a scratch table with the jobs table's keys and indexes (deleted after).
//! 2. **Burst**: `POST /jobs` through the HTTP API until the table holds each size of `--sizes`
//!    (1,000, 10,000, 100,000): mixed kinds (notification, email, archive, report) and priorities
//!    1-5; `--runnable` of them (default 10 %) run now (notification, email), the rest are scheduled
//!    a day ahead and stay `pending` (as a big backlog does). 900 per owner (under the in-flight
//!    limit), owners `load0`, `load1`, ...
//! 3. **At each size**: `GET /jobs?limit=20` (the console's list page, every status), the same with
//!    `status=pending`, `GET /stats` (the overview's counters) against one raw `Query` of 20 items of
//!    a status index partition (`by_status_shard`, `pending#0`, newest first): p50/p99 and ratios;
//!    and the list's own plan raw (every shard of `by_created_shard`, keys only, then one
//!    `BatchGetItem` of the page).
//! 4. **Drain and loss**: waits (bounded) until every runnable job it created has ended, then checks
//!    that the table counts exactly the jobs the API accepted and that none of them failed.
//!
//! The table is filled up to the sizes, not by them: run it again and it measures the same sizes
//! without writing (DynamoDB Local keeps the data; `DYNAMODB_FRESH=1 infra/up` starts empty).
//!
//! `--prefill N` first tops the table up to N jobs without the API: each job through the store's
//! own creation transaction (`DynamoJobStore::create`: the job, its lookups, its counters), scheduled
//! a year ahead, so parked as the API would park it (no queue message; the sweeper sends it 15
//! minutes before it is due). The API's POST rate on this machine (~10-20/s) fills
//! 100,000 jobs in hours; this does it at the emulator's own rate, and the burst then goes through
//! the API from there.
//!
//! Usage: bench-load [--sizes 1000,10000,100000] [--concurrency 8] [--runnable 0.1]
//!                   [--samples 60] [--raw-writes 2000] [--drain-bound 1800]
//!                   [--prefill N] [--prefill-concurrency 16]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, Projection};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use shared::job::{Job, JobSpec};
use shared::store::{DynamoJobStore, JobStore};
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(about = "A burst of jobs through the local stack, then list and overview latency at 1k/10k/100k jobs")]
struct Args {
    /// Table sizes (jobs) to fill up to and measure at, ascending.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<u64>,
    /// Requests (and raw transactions) in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Share of the created jobs that run now (the rest are scheduled a day ahead).
    #[arg(long, default_value_t = 0.1)]
    runnable: f64,
    /// Timed requests of each kind at each size.
    #[arg(long, default_value_t = 60)]
    samples: usize,
    /// Raw transactions for the write baseline.
    #[arg(long, default_value_t = 2000)]
    raw_writes: usize,
    /// Seconds to wait for the runnable jobs to end.
    #[arg(long, default_value_t = 1800)]
    drain_bound: u64,
    /// Top the table up to this many jobs first, straight through the store (no HTTP, no queue).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Store transactions in flight at once while prefilling.
    #[arg(long, default_value_t = 16)]
    prefill_concurrency: usize,
}

const PER_OWNER: u64 = 900;

/// The owner of the `n`th job: 900 each, under the jobs-in-flight limit.
fn owner_of(n: u64) -> String {
    format!("load{}", n / PER_OWNER)
}

use local_bridge::testing::{stack_var, state_dir};

fn token(user: &str, groups: &[&str]) -> String {
    local_bridge::auth::mint(&state_dir(), user, groups).expect("a token (infra/up)")
}

/// The token of the `n`th job's owner, signed once per owner (a signature per request cost the
/// client milliseconds of CPU a POST, on the cores the stack runs on).
fn owner_token(n: u64) -> String {
    static TOKENS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let owner = (n / PER_OWNER) as usize;
    let mut tokens = TOKENS.lock().unwrap();
    while tokens.len() <= owner {
        let next = tokens.len() as u64 * PER_OWNER;
        tokens.push(token(&owner_of(next), &[]));
    }
    tokens[owner].clone()
}

struct Summary {
    p50: f64,
    p99: f64,
}

fn summary(mut ms: Vec<f64>) -> Summary {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Summary {
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The body of the `n`th job: every tenth-ish runs now, the rest are scheduled.
fn body(n: u64, runnable: f64, later: &str, bucket: &str) -> (Value, bool) {
    let runs = ((n as f64 + 0.5) * runnable).floor() != ((n as f64 - 0.5) * runnable).floor();
    let priority = 1 + n % 5;
    let (kind, payload) = match (runs, n % 4) {
        (true, k) if k % 2 == 0 => (
            "notification",
            json!({"user_id": format!("u{n}"), "channel": "sms", "message": "load"}),
        ),
        (true, _) => (
            "email",
            json!({"to": format!("user{n}@example.com"), "subject": "load", "body": "load"}),
        ),
        (false, 0) => (
            "notification",
            json!({"user_id": format!("u{n}"), "channel": "push", "message": "load"}),
        ),
        (false, 1) => (
            "email",
            json!({"to": format!("user{n}@example.com"), "subject": "load", "body": "load"}),
        ),
        (false, 2) => (
            "archive",
            json!({"asset_id": format!("asset-{n}"), "source": format!("s3://{bucket}/uploads/{}/clip-{n}.mp4", owner_of(n))}),
        ),
        (false, _) => (
            "report",
            json!({"report_type": "daily", "date_range": {"start": "2026-11-01", "end": "2026-11-02"}}),
        ),
    };
    let mut b = json!({"kind": kind, "priority": priority, "payload": payload});
    if !runs {
        b["scheduled_for"] = json!(later);
    }
    (b, runs)
}

struct Api {
    http: reqwest::Client,
    url: String,
    admin: String,
}

impl Api {
    async fn get(&self, path: &str) -> (f64, Value) {
        let t = Instant::now();
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(status.is_success(), "GET {path}: {status} {v}");
        (t.elapsed().as_secs_f64() * 1000.0, v)
    }

    async fn stats(&self) -> Value {
        self.get("/stats").await.1
    }
}

fn count(stats: &Value, status: &str) -> u64 {
    stats["by_status"][status].as_u64().unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let api = Api {
        http: reqwest::Client::new(),
        url: std::env::var("API_URL").unwrap_or("http://127.0.0.1:3000".into()),
        admin: token("load-admin", &["admin"]),
    };
    let config = shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack_var("JOBS_TABLE");
    let bucket = stack_var("UPLOADS_BUCKET");

    // 1. The raw write rate, same concurrency.
    let raw_rate = raw_writes(&dynamodb, &table, &bucket, args.raw_writes, args.concurrency).await;
    println!(
        "raw TransactWriteItems (a job's creation, DynamoJobStore::create, no HTTP or Lambda), {} at concurrency {}: {raw_rate:.0}/s",
        args.raw_writes, args.concurrency
    );

    let before = api.stats().await["total"].as_u64().unwrap_or(0);
    if args.prefill > before {
        prefill(
            &dynamodb,
            &table,
            &bucket,
            before..args.prefill,
            args.prefill_concurrency,
        )
        .await;
        let now = api.stats().await["total"].as_u64().unwrap_or(0);
        assert_eq!(now, args.prefill, "the counters count every prefilled job");
    }

    let start = api.stats().await;
    let start_total = start["total"].as_u64().unwrap_or(0);
    let terminal = |s: &Value| count(s, "completed") + count(s, "failed") + count(s, "cancelled");
    let (start_terminal, start_failed) = (terminal(&start), count(&start, "failed"));
    println!("table holds {start_total} jobs at the start");

    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&Rfc3339)
        .unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let runnable = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicUsize::new(0));
    let mut total = start_total;
    let burst = Instant::now();
    let mut post_secs = 0.0;
    let mut rows = Vec::new();
    for &size in &args.sizes {
        if total < size {
            let (from, to) = (total, size);
            let t = Instant::now();
            futures::stream::iter(from..to)
                .for_each_concurrent(args.concurrency, |n| {
                    let (api, later, bucket) = (&api, &later, &bucket);
                    let (accepted, runnable, throttled) = (accepted.clone(), runnable.clone(), throttled.clone());
                    let args = &args;
                    async move {
                        let tok = owner_token(n);
                        let (b, runs) = body(n, args.runnable, later, bucket);
                        let mut wait = Duration::from_millis(50);
                        for attempt in 1..=8 {
                            let r = api
                                .http
                                .post(format!("{}/jobs", api.url))
                                .bearer_auth(&tok)
                                .json(&b)
                                .send()
                                .await
                                .unwrap_or_else(|e| panic!("POST /jobs: {e}"));
                            let status = r.status();
                            if status.is_success() {
                                accepted.fetch_add(1, Ordering::Relaxed);
                                runnable.fetch_add(u64::from(runs), Ordering::Relaxed);
                                return;
                            }
                            let text = r.text().await.unwrap_or_default();
                            // 429 (the route's throttle) and 503 are the gateway's "try again".
                            assert!(
                                (status == 429 || status == 503) && attempt < 8,
                                "POST /jobs {b}: {status} {text}"
                            );
                            throttled.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                })
                .await;
            let secs = t.elapsed().as_secs_f64();
            post_secs += secs;
            println!(
                "POST /jobs {} -> {} jobs: {:.1} s, {:.0}/s ({:.0} % of raw)",
                from,
                to,
                secs,
                (to - from) as f64 / secs,
                100.0 * (to - from) as f64 / secs / raw_rate
            );
            total = to;
        }
        rows.push((size, measure(&api, &dynamodb, &table, args.samples).await));
    }
    let added = accepted.load(Ordering::Relaxed);
    let runnable = runnable.load(Ordering::Relaxed);

    // 4. Drain: every runnable job ends (the scheduled ones wait for tomorrow).
    let bound = Duration::from_secs(args.drain_bound);
    let mut last_print = Instant::now();
    let end = loop {
        let s = api.stats().await;
        let ended = terminal(&s) - start_terminal;
        if ended >= runnable {
            break s;
        }
        assert!(
            burst.elapsed() < bound + Duration::from_secs_f64(post_secs),
            "waited {} s after the burst for {runnable} runnable jobs to end; {ended} ended ({})",
            args.drain_bound,
            s["by_status"]
        );
        if last_print.elapsed() > Duration::from_secs(15) {
            eprintln!("  draining: {ended}/{runnable} runnable jobs ended");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let drain = burst.elapsed().as_secs_f64();

    println!();
    println!(
        "| jobs in table | GET /jobs?limit=20 p50 / p99 | the console's list (view=summary) p50 / p99 | status=pending p50 / p99 | GET /stats p50 / p99 | raw Query (20 items) p50 / p99 | list p50 / raw p50 | raw fan-out of the listing (queries) p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (size, m) in &rows {
        println!(
            "| {size} | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.1} / {:.1} ms | **{:.1}x** (console {:.1}x, pending {:.1}x, stats {:.1}x) | ({}) {:.0} / {:.0} ms |",
            m.list.p50,
            m.list.p99,
            m.console.p50,
            m.console.p99,
            m.pending.p50,
            m.pending.p99,
            m.stats.p50,
            m.stats.p99,
            m.raw.p50,
            m.raw.p99,
            m.list.p50 / m.raw.p50,
            m.console.p50 / m.raw.p50,
            m.pending.p50 / m.raw.p50,
            m.stats.p50 / m.raw.p50,
            m.queries,
            m.fanout.p50,
            m.fanout.p99,
        );
    }
    println!();
    let grew = end["total"].as_u64().unwrap_or(0) - start_total;
    let failed = count(&end, "failed") - start_failed;
    println!(
        "burst: {added} jobs accepted in {post_secs:.0} s of POSTs ({:.0}/s, {:.0} % of raw {raw_rate:.0}/s at concurrency {}; api instances {}), {} retried after 429/503",
        added as f64 / post_secs.max(f64::EPSILON),
        100.0 * added as f64 / post_secs.max(f64::EPSILON) / raw_rate,
        args.concurrency,
        std::env::var("LAMBDA_CONCURRENCY").unwrap_or_else(|_| "2 (infra/up's default)".into()),
        throttled.load(Ordering::Relaxed)
    );
    println!(
        "drain: the {runnable} runnable jobs all ended {drain:.0} s after the burst began; table grew by {grew} (accepted {added}); failed {failed}"
    );
    assert_eq!(
        grew, added,
        "the table must count every accepted job, no more, no fewer"
    );
    assert_eq!(failed, 0, "no runnable job of the burst should fail");
    println!("nothing lost");
}

/// What the console's jobs page asks for: summary rows and the total, read at once.
const CONSOLE_LIST: &str = "/jobs?view=summary&sort=created&order=desc&limit=20";

struct Measured {
    list: Summary,
    console: Summary,
    pending: Summary,
    stats: Summary,
    raw: Summary,
    fanout: Summary,
    queries: usize,
}

/// Sequential timed requests, interleaved so each sees the same background (the worker draining).
async fn measure(api: &Api, dynamodb: &aws_sdk_dynamodb::Client, table: &str, samples: usize) -> Measured {
    let (mut list, mut console, mut pending, mut stats, mut raw, mut fanout) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (_, first) = api.get("/jobs?limit=20").await; // warm
    assert_eq!(first["jobs"].as_array().map(Vec::len), Some(20), "a full first page");
    // The listing's own plan, raw: every shard of `by_created_shard` (keys only) queried at once
    // for the first round's share of a page (what `shards::merge` asks first), then the 20 newest
    // jobs by key in one consistent BatchGetItem; no HTTP, no Lambda.
    let shards: u32 = stack_var("LIST_SHARDS").parse().expect("LIST_SHARDS");
    let per_shard = (21usize.div_ceil(shards as usize) * 2).clamp(4, 21) as i32;
    for _ in 0..samples {
        let t = Instant::now();
        let mut keys: Vec<(String, String)> = futures::future::join_all((0..shards).map(|n| {
            dynamodb
                .query()
                .table_name(table)
                .index_name(shared::store::table::BY_CREATED_SHARD)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", shared::store::table::CREATED_SHARD)
                .expression_attribute_values(":p", AttributeValue::S(n.to_string()))
                .scan_index_forward(false)
                .limit(per_shard)
                .send()
        }))
        .await
        .into_iter()
        .flat_map(|r| r.expect("raw fan-out Query").items.unwrap_or_default())
        .filter_map(|i| {
            let s = |a: &str| i.get(a).and_then(|v| v.as_s().ok()).cloned();
            Some((s(shared::store::table::CREATED_KEY)?, s(shared::store::table::PK)?))
        })
        .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.truncate(20);
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(
                keys.into_iter()
                    .map(|(_, pk)| {
                        HashMap::from([
                            (shared::store::table::PK.to_string(), AttributeValue::S(pk)),
                            (shared::store::table::SK.to_string(), AttributeValue::S("JOB".into())),
                        ])
                    })
                    .collect(),
            ))
            .consistent_read(true)
            .build()
            .expect("keys");
        let got = dynamodb
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .expect("raw fan-out BatchGetItem");
        assert_eq!(
            got.responses.and_then(|mut r| r.remove(table)).map(|v| v.len()),
            Some(20),
            "the raw fan-out reads a page"
        );
        fanout.push(t.elapsed().as_secs_f64() * 1000.0);
        list.push(api.get("/jobs?limit=20").await.0);
        console.push(api.get(CONSOLE_LIST).await.0);
        pending.push(api.get("/jobs?limit=20&status=pending").await.0);
        stats.push(api.get("/stats").await.0);
        let t = Instant::now();
        let out = dynamodb
            .query()
            .table_name(table)
            .index_name(shared::store::table::BY_STATUS_SHARD)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", shared::store::table::STATUS_SHARD)
            .expression_attribute_values(":p", AttributeValue::S("pending#0".into()))
            .scan_index_forward(false)
            .limit(20)
            .send()
            .await
            .expect("raw Query");
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(out.count() > 0, "the raw query reads items");
    }
    Measured {
        list: summary(list),
        console: summary(console),
        pending: summary(pending),
        stats: summary(stats),
        raw: summary(raw),
        fanout: summary(fanout),
        queries: shards as usize + 1,
    }
}

/// The `i`th job as the API would make it from [`body`] (kind, payload, priority, owner), scheduled
/// for `at`: what the raw baseline and the prefill write straight through the store.
fn scheduled_job(i: u64, bucket: &str, at: time::OffsetDateTime) -> Job {
    let (b, _) = body(i, 0.0, "", bucket);
    let spec = JobSpec::from_json(b["kind"].as_str().unwrap(), b["payload"].clone()).expect("a valid spec");
    Job::new(spec, (1 + i % 5) as u8, Some(at), shared::clock::now())
        .unwrap()
        .owned_by(shared::auth::Owner::parse(&owner_of(i)).unwrap())
}

/// The jobs `range` (their numbers: owners and kinds as [`body`] gives them), each created by the
/// store's own transaction in `table`, scheduled a year ahead, no queue message.
async fn prefill(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    bucket: &str,
    range: std::ops::Range<u64>,
    concurrency: usize,
) {
    let store = DynamoJobStore::new(dynamodb.clone(), table.to_string());
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let (n, done) = (range.end - range.start, Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut last_print = Instant::now();
    let mut jobs = futures::stream::iter(range)
        .map(|i| {
            let (store, done) = (&store, done.clone());
            async move {
                let job = scheduled_job(i, bucket, later);
                // DynamoDB Local gives up on a lock it waited too long for ("will succeed in actual
                // DynamoDB", a 500) when a table is being made beside it; the same create again
                // is safe (a job already written under its id is found as ours).
                let mut wait = Duration::from_millis(500);
                for attempt in 1.. {
                    match store.create(&job, None, &[]).await {
                        Ok(_) => break,
                        Err(e) if attempt < 6 => {
                            eprintln!("  prefill: job {i}: {e}; again in {wait:?}");
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                        Err(e) => panic!("prefill create of job {i}, {attempt} attempts: {e}"),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed)
            }
        })
        .buffer_unordered(concurrency);
    while jobs.next().await.is_some() {
        if last_print.elapsed() > Duration::from_secs(30) {
            let made = done.load(Ordering::Relaxed);
            eprintln!(
                "  prefill: {made}/{n} ({:.0}/s)",
                made as f64 / t0.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "prefill: {n} jobs through DynamoJobStore::create (no HTTP, no queue) in {secs:.0} s, {:.0}/s at concurrency {concurrency}",
        n as f64 / secs
    );
}

/// `n` job creations straight to the emulator on a scratch copy of the jobs table's schema.
async fn raw_writes(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    bucket: &str,
    n: usize,
    concurrency: usize,
) -> f64 {
    let described = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("DescribeTable");
    let t = described.table.expect("a table");
    let scratch = format!("bench-load-raw-{}", std::process::id());
    let gsis: Vec<GlobalSecondaryIndex> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            GlobalSecondaryIndex::builder()
                .index_name(g.index_name().unwrap())
                .set_key_schema(Some(
                    g.key_schema()
                        .iter()
                        .map(|k| {
                            KeySchemaElement::builder()
                                .attribute_name(k.attribute_name())
                                .key_type(k.key_type().clone())
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .projection(
                    Projection::builder()
                        .set_projection_type(g.projection().and_then(|p| p.projection_type().cloned()))
                        .set_non_key_attributes(g.projection().map(|p| p.non_key_attributes().to_vec()))
                        .build(),
                )
                .build()
                .unwrap()
        })
        .collect();
    dynamodb
        .create_table()
        .table_name(&scratch)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(t.attribute_definitions().to_vec()))
        .set_key_schema(Some(t.key_schema().to_vec()))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .send()
        .await
        .expect("CreateTable (scratch)");
    let store = DynamoJobStore::new(dynamodb.clone(), scratch.clone());
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    futures::stream::iter(0..n as u64)
        .for_each_concurrent(concurrency, |i| {
            let (store, done) = (&store, done.clone());
            async move {
                store
                    .create(&scheduled_job(i, bucket, later), None, &[])
                    .await
                    .expect("raw create");
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
    let rate = done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    let _ = dynamodb.delete_table().table_name(&scratch).send().await;
    rate
}
