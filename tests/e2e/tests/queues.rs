//! Pausing a queue the AWS way through the running stack: `POST /queues/normal/pause` disables the
//! worker's event source mapping (the bridge serves Lambda's API and honours the flag), a job
//! submitted meanwhile stays waiting with its message in the queue, and after
//! `POST /queues/normal/resume` it completes.

use std::time::{Duration, Instant};

use e2e::{api_url, get_json, http_as, post_json, wait_finished};
use serde_json::{Value, json};

/// Resumes the normal queue when dropped, so that a failing test leaves no paused queue behind
/// (the bridge keeps the flag across restarts).
struct ResumeOnDrop;

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(post_json("/queues/normal/resume", &json!({})))
        })
        .join();
    }
}

fn queue<'a>(queues: &'a Value, name: &str) -> &'a Value {
    queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {queues}"))
}

#[tokio::test]
async fn a_paused_queue_keeps_its_messages_and_its_jobs_run_once_it_is_resumed() {
    // Only admins; an unknown queue is named.
    let resp = http_as("e2e-user", false)
        .post(format!("{}/queues/normal/pause", api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let (status, err) = post_json("/queues/nope/pause", &json!({})).await;
    assert_eq!(status, 404, "{err}");
    assert!(err["error"].as_str().unwrap().starts_with("name:"), "{err}");
    // A long name is quoted shortened, not echoed whole.
    for path in ["pause", "messages"] {
        let long = "q".repeat(3000);
        let resp = http_as("e2e-admin", true)
            .request(
                if path == "pause" {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                format!("{}/queues/{long}/{path}", api_url()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let err: serde_json::Value = resp.json().await.unwrap();
        let text = err["error"].as_str().unwrap();
        assert!(text.contains("(3000 characters)") && text.len() < 400, "{path}: {text}");
    }

    let _resume = ResumeOnDrop;
    let (status, paused) = post_json("/queues/normal/pause", &json!({})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["consumer"], "worker");
    assert_eq!(paused["mappings"].as_array().unwrap().len(), 1, "{paused}");
    let queues = get_json("/queues").await;
    assert_eq!(queue(&queues, "normal")["paused"], true, "{queues}");
    assert_eq!(queue(&queues, "normal")["mapping_state"], "Disabled");
    assert_eq!(queue(&queues, "high")["paused"], false, "only that queue");
    // (A long poll in flight when it was paused hands back what it gets at once: no wait here.)
    let (status, job) = post_json(
        "/jobs",
        &json!({"kind": "notification", "priority": 2, "payload": {"user_id": "e2e", "channel": "email", "message": "paused"}}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // For a bounded few seconds: still waiting, its message in the queue.
    let until = Instant::now() + Duration::from_secs(6);
    let mut waiting_seen = false;
    while Instant::now() < until {
        let job = get_json(&format!("/jobs/{id}")).await;
        assert!(
            matches!(job["status"].as_str(), Some("pending" | "queued")),
            "the job ran while its queue was paused: {job}"
        );
        let queues = get_json("/queues").await;
        waiting_seen |= queue(&queues, "normal")["visible"].as_i64().unwrap() >= 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(waiting_seen, "its message was never seen waiting in the normal queue");

    let (status, resumed) = post_json("/queues/normal/resume", &json!({})).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["paused"], false);
    let queues = get_json("/queues").await;
    assert_eq!(queue(&queues, "normal")["paused"], false, "{queues}");
    let done = wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
}
