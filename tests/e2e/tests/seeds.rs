//! Seed 002's routes and seed 001's offset paging through the whole stack (gateway, api,
//! DynamoDB, SQS, worker), with a token. The byte-for-byte replay of every seed's requests is the
//! fast tier's (`functions/api/src/seed_tests.rs`); this checks the same shapes on the real path.

use std::time::Duration;

use e2e::{api_url, http, wait_finished};
use serde_json::{Value, json};

#[tokio::test]
async fn seed_002_api_jobs_runs_a_job_to_completed_in_its_camel_case_shape() {
    let source = e2e::upload(vec![2u8; 500]).await;
    let body = json!({"type": "archive", "payload": {"asset_id": "seed-002", "source": source}});
    let resp = http()
        .post(format!("{}/api/jobs", api_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert!(
        matches!(created["status"].as_str(), Some("pending" | "processing" | "completed")),
        "{created}"
    );
    assert_eq!(created["type"], "archive");
    let id = created["id"].as_str().unwrap().to_string();
    wait_finished(&id, Duration::from_secs(120)).await;
    let got: Value = http()
        .get(format!("{}/api/jobs/{id}", api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (got["status"].as_str(), got["type"].as_str()),
        (Some("completed"), Some("archive")),
        "{got}"
    );
    assert!(got["createdAt"].is_string() && got["updatedAt"].is_string(), "{got}");
    assert!(got.get("created_at").is_none(), "camelCase only: {got}");
}

#[tokio::test]
async fn seed_001_offset_is_honoured_up_to_1000_through_the_gateway() {
    let get = |q: &'static str| async move {
        let resp = http().get(format!("{}/jobs?{q}", api_url())).send().await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let (status, page) = get("limit=2&offset=1&sort=created_at").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["offset"].as_u64(), page["limit"].as_u64()),
        (Some(1), Some(2)),
        "{page}"
    );
    for job in page["jobs"].as_array().unwrap() {
        assert!(job.get("timeline").is_none() && job["type"] == job["kind"], "{job}");
    }
    let (status, err) = get("offset=1001").await;
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().starts_with("offset: at most 1000"),
        "{err}"
    );
}
