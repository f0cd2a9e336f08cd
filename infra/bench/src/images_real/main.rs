//! A Retail Pulse job of real size through the local stack: 10,000 visits, 100,000 image URLs,
//! submitted to `POST /api/submit/` of the running stack (`infra/up`), measured by the worker
//! function under `cargo lambda watch`, until the job ends. Reports the time to accept, the time
//! to finish, the SQS messages and their bytes, the payload object's size, and checks that every
//! count is exact. The images come from a `test-images` server this binary starts on 127.0.0.1
//! (one small PNG behind 100,000 distinct URLs).
//!
//! `infra/bench/images --real-size [VISITS=10000] [PER_VISIT=10]`; needs `API_URL` and, with
//! sign-in on, `TOKEN` (the wrapper gets one from `infra/token`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::job::{JobId, Visit, all_parts};
use shared::queue::{JobMessage, batches};
use test_images::{ImageFormat, ImageServer, encode};

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let visits_n = args.first().copied().unwrap_or(10_000);
    let per_visit = args.get(1).copied().unwrap_or(10);
    let api = std::env::var("API_URL").expect("API_URL (source infra/env.sh)");
    let token = std::env::var("TOKEN").ok().filter(|t| !t.is_empty());

    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 64, 48))]).await;
    let stores = ["S00339218", "S01408764", "S01302075", "S01306137"];
    let visits: Vec<Visit> = (0..visits_n)
        .map(|v| Visit {
            store_id: stores[v % stores.len()].to_string(),
            image_url: (0..per_visit)
                .map(|i| server.url(&format!("/img/a.png?n={}", v * per_visit + i)))
                .collect(),
            visit_time: "2026-11-23T10:00:00Z".into(),
        })
        .collect();
    let images = visits_n * per_visit;
    let body = json!({"count": visits.len(), "visits": visits}).to_string();

    // What the fan-out sends: the same part messages, measured here.
    let parts = all_parts(&visits);
    let sizes: Vec<usize> = parts
        .iter()
        .enumerate()
        .map(|(i, images)| {
            serde_json::to_string(&JobMessage {
                job_id: JobId::new(),
                part: Some(i as u32),
                run: Some("1800000000000000000".into()),
                images: Some(images.clone()),
            })
            .unwrap()
            .len()
        })
        .collect();
    let part_bytes: usize = sizes.iter().sum();
    let batch_calls = batches(&sizes).len();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let auth = |r: reqwest::RequestBuilder| match &token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    eprintln!(
        "submitting {visits_n} visits, {images} images, {} bytes of JSON to {api}/api/submit/",
        body.len()
    );
    let t0 = Instant::now();
    let resp = auth(client.post(format!("{api}/api/submit/")))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("POST /api/submit/");
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status.as_u16(), 201, "{answer}");
    let accepted = t0.elapsed();
    let id = answer["job_id"].as_str().unwrap().to_string();
    eprintln!("accepted as {id} in {accepted:.1?}");

    let job = loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let job: Value = auth(client.get(format!("{api}/jobs/{id}")))
            .send()
            .await
            .expect("GET /jobs/{id}")
            .json()
            .await
            .expect("a job");
        eprintln!(
            "{:>6.0?} {} {} ({} image requests served)",
            t0.elapsed(),
            job["status"],
            job["progress"]["stage"],
            server.requests()
        );
        if matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
            break job;
        }
        assert!(t0.elapsed() < Duration::from_secs(3600), "not finished in an hour");
    };
    let finished = t0.elapsed();
    let result = &job["result"];
    let stored = &job["payload"]["stored"];
    let status: Value = auth(client.get(format!("{api}/api/status?jobid={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    println!("| what | value |\n|---|---|");
    println!("| visits / images | {visits_n} / {images} |");
    println!("| request body | {} bytes |", body.len());
    println!("| accepted (201) after | {:.1} s |", accepted.as_secs_f64());
    println!(
        "| finished ({}) after | {:.1} s |",
        job["status"],
        finished.as_secs_f64()
    );
    println!(
        "| images/s end to end | {:.0} |",
        images as f64 / finished.as_secs_f64()
    );
    println!(
        "| payload object (claim check) | {} bytes, {} visits, {} images |",
        stored["bytes"], stored["visits"], stored["images"]
    );
    println!(
        "| job item's payload | {} bytes of JSON |",
        job["payload"].to_string().len()
    );
    println!(
        "| SQS messages | 1 job message + {} part messages in {batch_calls} SendMessageBatch calls |",
        parts.len()
    );
    println!(
        "| part message bytes | {part_bytes} in all, {} max, {} mean |",
        sizes.iter().max().unwrap(),
        part_bytes / parts.len()
    );
    println!(
        "| result | images_ok {}, parts {}, store errors {} |",
        result["images_ok"],
        result["parts"],
        result["errors"].as_array().map_or(0, Vec::len)
    );
    println!("| image requests served | {} |", server.requests());
    println!("| /api/status | {} |", status["status"]);

    assert_eq!(job["status"], "completed", "{:?}", job["error"]);
    assert_eq!(result["images_ok"].as_u64(), Some(images as u64), "{result}");
    assert_eq!(result["parts"].as_u64(), Some(parts.len() as u64), "{result}");
    assert_eq!(stored["images"].as_u64(), Some(images as u64));
    assert_eq!(status["status"], "completed");
    assert!(server.requests() >= images as u64);
    eprintln!("exact: {images} images in {} parts", parts.len());
}
