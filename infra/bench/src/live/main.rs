//! `bench-live`: live job updates through the running local stack against polling, in one run.
//!
//! M scheduled jobs (they stay pending: nothing else writes them) change at a steady rate: each
//! change is one `UpdateItem` of the job item (progress, stage, version) in DynamoDB. N WebSocket
//! subscribers (`$WS_URL`, an admin token) each follow one job (`subscribe` by id, N/M per job);
//! P pollers each follow one job with `GET /jobs/{id}` every POLL_MS (the dashboard's 3 s).
//! Reported: pushed messages delivered / expected (every change to every subscriber of its job;
//! the run waits up to 60 s after the last write for late ones),
//! p50/p99 from the moment the write was sent to DynamoDB to the message at the client; for
//! polling, the share of changes a poller ever saw and the same latency for those it saw.
//!
//! Usage: bench-live [SUBSCRIBERS] [JOBS] [CHANGES_PER_SEC] [SECONDS] [POLLERS] [POLL_MS]
//! (defaults 200 20 10 30 20 3000).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Writes = Arc<Mutex<HashMap<(String, u64), Instant>>>;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

use local_bridge::testing::{stack_var, state_dir};

#[tokio::main]
async fn main() {
    let (subscribers, jobs, rate, seconds, pollers, poll_ms) = (
        arg(1, 200),
        arg(2, 20),
        arg(3, 10),
        arg(4, 30),
        arg(5, 20),
        arg(6, 3000),
    );
    let api = std::env::var("API_URL").unwrap_or("http://127.0.0.1:3000".into());
    let ws_url = std::env::var("WS_URL").unwrap_or("ws://127.0.0.1:3002".into());
    let token = local_bridge::auth::mint(&state_dir(), "bench-live", &["admin"]).expect("a token (infra/up)");
    let http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let config = shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack_var("JOBS_TABLE");
    let bucket = stack_var("UPLOADS_BUCKET");

    // M jobs that nothing else will touch: scheduled a day ahead.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut ids = Vec::new();
    for i in 0..jobs {
        let r = http
            .post(format!("{api}/jobs"))
            .json(&json!({"kind": "archive", "priority": 5, "scheduled_for": later.format(&time::format_description::well_known::Rfc3339).unwrap(),
                          "payload": {"asset_id": format!("bench-live-{i}"), "source": format!("s3://{bucket}/uploads/bench-live/clip-{i}.mp4")}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "creating a job: {}", r.text().await.unwrap());
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    eprintln!("{jobs} jobs created; connecting {subscribers} subscribers");

    let writes: Writes = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let start_connect = Instant::now();
    let mut clients = Vec::new();
    for s in 0..subscribers {
        let job = ids[(s % jobs) as usize].clone();
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}/?token={token}"))
            .await
            .expect("connect");
        ws.send(Message::text(json!({"action": "subscribe", "job_id": job}).to_string()))
            .await
            .unwrap();
        loop {
            let m = ws.next().await.unwrap().unwrap();
            if let Message::Text(t) = m
                && serde_json::from_str::<Value>(&t).unwrap()["type"] == "subscribed"
            {
                break;
            }
        }
        let (writes, latencies) = (writes.clone(), latencies.clone());
        clients.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let now = Instant::now();
                let v: Value = serde_json::from_str(&t).unwrap();
                let key = (
                    v["job_id"].as_str().unwrap_or_default().to_string(),
                    v["job_version"].as_u64().unwrap_or(0),
                );
                if let Some(at) = writes.lock().unwrap().get(&key) {
                    latencies
                        .lock()
                        .unwrap()
                        .push(now.duration_since(*at).as_secs_f64() * 1000.0);
                }
            }
        }));
    }
    eprintln!(
        "subscribed in {:.1} s; {pollers} pollers every {poll_ms} ms",
        start_connect.elapsed().as_secs_f64()
    );

    // Pollers: the first poll that shows a version counts for it.
    let poll_seen: Arc<Mutex<HashMap<(usize, String, u64), f64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut poll_tasks = Vec::new();
    for p in 0..pollers as usize {
        let (http, api, job, writes, seen, stop) = (
            http.clone(),
            api.clone(),
            ids[p % jobs as usize].clone(),
            writes.clone(),
            poll_seen.clone(),
            stop.clone(),
        );
        poll_tasks.push(tokio::spawn(async move {
            // Spread the pollers over the interval, as independent dashboards would be.
            tokio::time::sleep(Duration::from_millis(poll_ms * p as u64 / pollers.max(1))).await;
            let mut tick = tokio::time::interval(Duration::from_millis(poll_ms));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let Ok(r) = http.get(format!("{api}/jobs/{job}")).send().await else {
                    continue;
                };
                let now = Instant::now();
                let Ok(v) = r.json::<Value>().await else { continue };
                let version = v["version"].as_u64().unwrap_or(0);
                let writes = writes.lock().unwrap();
                let mut seen = seen.lock().unwrap();
                // Every version up to this one that was written and not seen yet by this poller.
                for ((j, ver), at) in writes.iter() {
                    if *j == job && *ver <= version {
                        seen.entry((p, j.clone(), *ver))
                            .or_insert(now.duration_since(*at).as_secs_f64() * 1000.0);
                    }
                }
            }
        }));
    }

    // The writer: steady rate, round robin over the jobs.
    let total = rate * seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut per_job_writes: HashMap<String, u64> = HashMap::new();
    for k in 0..total {
        tick.tick().await;
        let job = &ids[(k % jobs) as usize];
        let sent = Instant::now();
        let out = dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(format!("JOB#{job}")))
            .key("sk", AttributeValue::S("JOB".into()))
            .update_expression("SET progress = :p, version = version + :one, updated_at = :u")
            .expression_attribute_values(
                ":p",
                AttributeValue::M(HashMap::from([
                    ("percent".into(), AttributeValue::N(((k / jobs) % 100).to_string())),
                    ("stage".into(), AttributeValue::S(format!("bench step {k}"))),
                ])),
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":u", AttributeValue::S(shared::clock::format(shared::clock::now())))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .expect("UpdateItem");
        let version: u64 = out.attributes.unwrap()["version"].as_n().unwrap().parse().unwrap();
        writes.lock().unwrap().insert((job.clone(), version), sent);
        *per_job_writes.entry(job.clone()).or_default() += 1;
    }
    let expected: u64 = (0..subscribers)
        .map(|s| per_job_writes.get(&ids[(s % jobs) as usize]).copied().unwrap_or(0))
        .sum();
    // Let the last changes arrive (and pollers see them): late is not lost, so wait up to 60 s
    // for every expected message (at least one poll interval and 5 s).
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_millis(poll_ms + 5000)
        || (waited.elapsed() < Duration::from_secs(60) && (latencies.lock().unwrap().len() as u64) < expected)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut push = latencies.lock().unwrap().clone();
    push.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let poll_expected: u64 = (0..pollers as usize)
        .map(|p| per_job_writes.get(&ids[p % jobs as usize]).copied().unwrap_or(0))
        .sum();
    let mut poll: Vec<f64> = poll_seen.lock().unwrap().values().copied().collect();
    poll.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{total} changes of {jobs} jobs at {rate}/s over {seconds} s; {subscribers} subscribers, {pollers} pollers every {poll_ms} ms"
    );
    println!(
        "push (WebSocket):  delivered {}/{} ({:.1} %), p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        push.len(),
        expected,
        100.0 * push.len() as f64 / expected.max(1) as f64,
        percentile(&push, 0.5),
        percentile(&push, 0.99),
        push.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "polling (GET):     seen {}/{} changes ({:.1} %), p50 {:.0} ms, p99 {:.0} ms (first poll showing the change)",
        poll.len(),
        poll_expected,
        100.0 * poll.len() as f64 / poll_expected.max(1) as f64,
        percentile(&poll, 0.5),
        percentile(&poll, 0.99)
    );
    for c in clients {
        c.abort();
    }
}
