//! One job followed by one id across the functions' logs: a job created through the HTTP API
//! gets the request's trace (the invocation's; locally `cargo lambda watch` starts one per
//! invocation), the api logs its creation with that `trace_id`, the message carries it (`AWSTraceHeader`), and every
//! line the worker writes about the job carries the same `trace_id` and the `job_id`.
//! The functions' logs are `cargo lambda watch`'s, in `$JOBS_STATE_DIR/logs/watch.log`.

use std::time::{Duration, Instant};

use e2e::{api_url, state_dir, wait_finished};
use serde_json::{Value, json};

/// The JSON lines of the functions' log (other lines, cargo-lambda's own, skipped).
fn log_lines() -> Vec<Value> {
    let path = state_dir().join("logs/watch.log");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.find('{').and_then(|i| serde_json::from_str::<Value>(&l[i..]).ok()))
        .collect()
}

async fn archive_job() -> String {
    let source = e2e::upload(vec![7u8; 100]).await;
    let req = e2e::http()
        .post(format!("{}/jobs", api_url()))
        .json(&json!({"kind": "archive", "payload": {"asset_id": "traced", "source": source}}));
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let job: Value = resp.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let done = wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    id
}

/// The trace id the api logged the job's creation with, and the worker's lines about the job,
/// once the worker's "completed" line is in the log (the log is written asynchronously).
async fn lines_of(id: &str) -> (String, Vec<Value>) {
    let start = Instant::now();
    loop {
        let lines = log_lines();
        let created = lines
            .iter()
            .find(|l| l["fields"]["job_id"] == id && l["fields"]["message"] == "job created and enqueued");
        let worker: Vec<Value> = lines.iter().filter(|l| l["span"]["job_id"] == id).cloned().collect();
        let completed = worker.iter().any(|l| l["fields"]["message"] == "completed");
        if let (Some(created), true) = (created, completed) {
            let trace_id = created["span"]["trace_id"]
                .as_str()
                .unwrap_or_else(|| panic!("the api's line has no trace id: {created}"))
                .to_string();
            return (trace_id, worker);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no creation line or no completed line for {id} in watch.log"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn one_job_is_followed_by_one_trace_id_from_the_api_to_the_worker() {
    let id = archive_job().await;
    let (trace_id, worker) = lines_of(&id).await;
    assert!(
        shared::trace::TraceHeader::parse(&format!("Root={trace_id}")).is_some(),
        "{trace_id}"
    );
    let messages: Vec<&str> = worker.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"processing"), "{messages:?}");
    for line in &worker {
        assert_eq!(line["span"]["trace_id"], trace_id.as_str(), "{line}");
    }
}
