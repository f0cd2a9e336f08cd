//! Event Horizon's flow through the running stack: upload -> S3 -> notification -> ingest ->
//! entries in DynamoDB, followed through `/api/v1/jobs/{id}`.

use std::io::Write;
use std::time::{Duration, Instant};

use e2e::{api_url, get_json};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn sample() -> Vec<u8> {
    std::fs::read(e2e::root().join("events/samples/app-logs.jsonl")).unwrap()
}

async fn wait_ingested(id: &str) -> Value {
    let start = Instant::now();
    loop {
        let status: Value = e2e::get_json(&format!("/api/v1/jobs/{id}")).await;
        if matches!(status["status"].as_str(), Some("completed" | "failed")) {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "ingest of {id} not finished: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_multipart_upload_is_ingested_and_its_entries_are_queryable() {
    let http = e2e::http();
    let form = Form::new().part("file", Part::bytes(sample()).file_name("app logs.jsonl"));
    let resp = http
        .post(format!("{}/api/v1/files/upload", api_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.unwrap();
    // The file is in S3 before the answer is written, so the ingest function may already have
    // taken it (or, for a small file, finished it): any status the job can have once uploaded.
    let status = accepted["status"].as_str().unwrap_or_default();
    assert!(["queued", "processing", "completed"].contains(&status), "{accepted}");
    let id = accepted["job_id"].as_str().unwrap();
    let status = wait_ingested(id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        (
            status["lines_read"].as_u64(),
            status["lines_stored"].as_u64(),
            status["lines_rejected"].as_u64()
        ),
        (Some(7), Some(5), Some(2))
    );
    assert_eq!(status["progress"], 100);
    assert!(status["completed_at"].is_string());
    let rejected: Vec<u64> = status["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [5, 6]);

    let errors: Value = get_json(&format!("/api/v1/jobs/{id}/entries?level=error")).await;
    assert_eq!(errors["entries"].as_array().unwrap().len(), 1);
    assert_eq!(errors["entries"][0]["message"], "payment declined");
    assert_eq!(
        errors["counts_by_level"],
        json!({"debug": 1, "error": 1, "fatal": 1, "info": 1, "warn": 1})
    );
    let page1: Value = get_json(&format!("/api/v1/jobs/{id}/entries?limit=3")).await;
    let next = page1["next"].as_str().unwrap();
    let page2: Value = get_json(&format!("/api/v1/jobs/{id}/entries?limit=3&next={next}")).await;
    let lines: Vec<u64> = page1["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["entries"].as_array().unwrap())
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 3, 4, 7]);
}

#[tokio::test]
async fn a_raw_gzip_upload_and_a_presigned_upload_are_ingested_too() {
    let http = e2e::http();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&sample()).unwrap();
    let resp = http
        .post(format!("{}/api/v1/files/upload?filename=app.jsonl.gz", api_url()))
        .header("content-type", "application/gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_ingested(&id).await["lines_stored"], 5);

    let data = sample();
    let resp = http
        .post(format!("{}/api/v1/files", api_url()))
        .json(&json!({"file_name": "big.jsonl", "size": data.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let grant: Value = resp.json().await.unwrap();
    assert_eq!(grant["method"], "PUT");
    assert_eq!(grant["max_bytes"], data.len());
    let put = http
        .put(grant["upload_url"].as_str().unwrap())
        .body(data)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let status = wait_ingested(grant["job_id"].as_str().unwrap()).await;
    assert_eq!(
        (status["status"].as_str(), status["lines_stored"].as_u64()),
        (Some("completed"), Some(5))
    );
}

#[tokio::test]
async fn bad_uploads_get_a_4xx_naming_the_problem() {
    let http = e2e::http();
    let upload = |name: &str, body: Vec<u8>| {
        let form = Form::new().part("file", Part::bytes(body).file_name(name.to_string()));
        http.post(format!("{}/api/v1/files/upload", api_url()))
            .multipart(form)
            .send()
    };
    let r = upload("notes.txt", b"{}\n".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains(".jsonl")
    );
    let r = upload("empty.jsonl", Vec::new()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "the file is empty");
    // Over the 4 MiB upload limit but inside Lambda's 6 MB event: the function refuses it.
    let big = vec![b'x'; 4 * 1024 * 1024 + 100_000];
    let r = http
        .post(format!("{}/api/v1/files/upload?filename=big.jsonl", api_url()))
        .header("content-type", "application/octet-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("presigned")
    );
    let r = http
        .post(format!("{}/api/v1/files/upload", api_url()))
        .body("no name")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!(
            "{}/api/v1/jobs/01a20000-0000-7000-8000-000000000000",
            api_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
