//! Retail Pulse image jobs through the running stack: `/api/submit/` -> SQS -> worker (fan-out,
//! parts) -> `/api/status`, with images from a local server, and `cargo lambda invoke` of the
//! api and worker with the event files in `events/`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{api_url, body, get_json, invoke, root, stack_var};
use serde_json::{Value, json};
use shared::job::{ImagePayload, Job, JobSpec, Visit};
use shared::store::{DynamoJobStore, JobStore};
use test_images::{ImageFormat, ImageServer, encode};

/// Polls `GET /api/status?jobid=` until it is no longer `ongoing`.
async fn wait_status(job_id: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let status = get_json(&format!("/api/status?jobid={job_id}")).await;
        if status["status"] != "ongoing" {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "job {job_id} still ongoing after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn submit(body: Value) -> (u16, Value) {
    e2e::post_json("/api/submit/", &body).await
}

/// Perimeters by URL from `GET /jobs/{id}/images`.
async fn perimeters(job_id: &str) -> BTreeMap<String, u64> {
    let images = get_json(&format!("/jobs/{job_id}/images")).await;
    images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["url"].as_str().unwrap().to_owned(), i["perimeter"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_retail_pulse_submission_is_measured_and_its_status_follows_the_seed_contract() {
    let server = ImageServer::start([
        ("a.jpg".to_string(), encode(ImageFormat::Jpeg, 1200, 800)),
        ("b.webp".to_string(), encode(ImageFormat::WebP, 300, 200)),
        ("c.png".to_string(), encode(ImageFormat::Png, 50, 40)),
    ])
    .await;
    let (status, created) = submit(json!({
        "count": 2,
        "visits": [
            {"store_id": "S00339218", "image_url": [server.url("/img/a.jpg"), server.url("/img/b.webp")], "visit_time": "t1"},
            {"store_id": "S01408764", "image_url": [server.url("/norange/c.png")], "visit_time": "t2"}
        ]
    }))
    .await;
    assert_eq!(status, 201, "{created}");
    let job_id = created["job_id"].as_str().unwrap().to_string();
    let done = wait_status(&job_id, Duration::from_secs(120)).await;
    assert_eq!(done, json!({"status": "completed", "job_id": job_id}));
    let p = perimeters(&job_id).await;
    assert_eq!(p[&server.url("/img/a.jpg")], 4000);
    assert_eq!(p[&server.url("/img/b.webp")], 1000);
    assert_eq!(p[&server.url("/norange/c.png")], 180);
    let job = get_json(&format!("/jobs/{job_id}")).await;
    assert_eq!(
        (job["kind"].as_str(), job["result"]["images_ok"].as_u64()),
        (Some("image"), Some(3))
    );

    // An unknown store and a 404 fail the job with each store's error; the rest is kept.
    let (status, created) = submit(json!({
        "count": 3,
        "visits": [
            {"store_id": "S00339218", "image_url": [server.url("/img/c.png")], "visit_time": "t"},
            {"store_id": "S00000000", "image_url": [server.url("/img/c.png")], "visit_time": "t"},
            {"store_id": "S01408764", "image_url": [server.url("/img/gone.jpg")], "visit_time": "t"}
        ]
    }))
    .await;
    assert_eq!(status, 201);
    let failed_id = created["job_id"].as_str().unwrap().to_string();
    let failed = wait_status(&failed_id, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "failed");
    let mut errors = failed["error"].as_array().unwrap().clone();
    errors.sort_by_key(|e| e["store_id"].as_str().unwrap().to_owned());
    assert_eq!(
        Value::Array(errors),
        json!([
            {"store_id": "S00000000", "error": "unknown store_id S00000000"},
            {"store_id": "S01408764", "error": "HTTP 404 Not Found"}
        ])
    );
    assert_eq!(perimeters(&failed_id).await[&server.url("/img/c.png")], 180);

    // count != visits.length, and an unknown id.
    let (status, refused) =
        submit(json!({"count": 2, "visits": [{"store_id": "S00339218", "image_url": [server.url("/img/c.png")], "visit_time": "t"}]}))
            .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "count: is 2 but visits has 1 entries");
    let resp = e2e::http()
        .get(format!("{}/api/status?jobid=nope", api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Job ID not found"})
    );
}

#[tokio::test]
async fn the_api_submit_event_is_measured_from_the_sample_images() {
    // The event names the sample images on the default stack's port (8090): point it at this stack's.
    let images = std::env::var("IMAGES_URL").unwrap_or_else(|_| "http://127.0.0.1:8090".into());
    let event = std::fs::read_to_string(root().join("events/api/submit-retail-job.json"))
        .unwrap()
        .replace("http://127.0.0.1:8090", &images);
    let dir = root().join(".local/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("submit-retail-job-{}.json", std::process::id()));
    std::fs::write(&file, event).unwrap();
    let path = file.to_string_lossy().into_owned();
    let r = tokio::task::spawn_blocking(move || invoke("api", &path)).await.unwrap();
    std::fs::remove_file(&file).ok();
    assert_eq!(r["statusCode"], 201, "{r}");
    let job_id = body(&r)["job_id"].as_str().unwrap().to_string();
    let done = wait_status(&job_id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let p = perimeters(&job_id).await;
    // The sample files' real sizes (events/samples/images/make.py writes them).
    for (url, perimeter) in p {
        let file = root()
            .join("events/samples/images")
            .join(url.rsplit('/').next().unwrap());
        let (w, h) = test_images::dimensions(&std::fs::read(file).unwrap());
        assert_eq!(perimeter, 2 * u64::from(w + h), "{url}");
    }
}

/// The job that `events/worker/sqs-image-job.json` names.
const EVENT_JOB_ID: &str = "01a20000-0000-7000-8000-0000000000b5";

#[tokio::test]
async fn the_worker_event_fans_an_image_job_out_and_the_stack_finishes_it() {
    // Write the job the event names (without a message: the invoke delivers it), replacing an
    // earlier run's.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&config), stack_var("JOBS_TABLE"));
    let id = EVENT_JOB_ID.parse().unwrap();
    if let Some(old) = store.get(id).await.unwrap() {
        store.discard(&old, None).await.unwrap();
    }
    let images = std::env::var("IMAGES_URL").unwrap_or_else(|_| "http://127.0.0.1:8090".into());
    let payload = ImagePayload {
        count: 1,
        visits: vec![Visit {
            store_id: "S00339198".into(),
            image_url: ["shelf-aisle.png", "storefront.gif", "checkout.bmp", "produce.jpg"]
                .iter()
                .map(|f| format!("{images}/{f}"))
                .collect(),
            visit_time: "2026-11-23T08:00:00Z".into(),
        }],
        stored: None,
    };
    let mut job = Job::new(JobSpec::Image(payload), 3, None, shared::clock::now()).unwrap();
    job.id = id;
    store.create(&job, None, &[]).await.unwrap();

    let r = tokio::task::spawn_blocking(|| invoke("worker", "events/worker/sqs-image-job.json"))
        .await
        .unwrap();
    assert_eq!(r, json!({"batchItemFailures": []}));
    let running = get_json(&format!("/jobs/{EVENT_JOB_ID}")).await;
    assert_ne!(running["status"], "pending", "{running}");
    let done = wait_status(EVENT_JOB_ID, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let p = perimeters(EVENT_JOB_ID).await;
    assert_eq!(p.len(), 4);
    assert_eq!(p[&format!("{images}/shelf-aisle.png")], 2 * (320 + 200));
}
