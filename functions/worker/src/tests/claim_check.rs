//! Image jobs of real size with the claim check: the payload in (memory) S3, loaded once by the
//! fan-out, each part message carrying its own images; a changed payload fails the job for good.

use shared::job::{JobSpec, JobStatus};
use shared::payloads::MemoryPayloads;
use shared::store::PartStore;
use test_images::{ImageFormat, ImageServer, encode};

use super::*;

const STORES: [&str; 2] = ["S00339218", "S01408764"];

/// The harness's service and worker, both with `payloads`.
fn with_payloads(h: &mut Harness, payloads: &Arc<MemoryPayloads>) -> Arc<Worker> {
    h.jobs = h.jobs.clone().with_payloads(payloads.clone());
    Arc::new(Worker {
        store: h.store.clone(),
        queue: h.queue.clone(),
        runner: Scripted::new(0, ok),
        images: Arc::new(
            ImageJobs::new(
                h.store.clone(),
                h.parts.clone(),
                h.queue.clone(),
                Fetcher::new(short_fetches()).unwrap(),
            )
            .with_payloads(payloads.clone()),
        ),
        lease: Duration::seconds(60),
        max_receives: MAX_RECEIVES,
    })
}

/// `visits` visits of `per_visit` distinct URLs each on `server`.
fn payload(server: &ImageServer, visits: usize, per_visit: usize) -> Value {
    let visits: Vec<Value> = (0..visits)
        .map(|v| {
            let urls: Vec<String> = (0..per_visit)
                .map(|i| server.url(&format!("/img/a.png?v={v}&i={i}")))
                .collect();
            json!({"store_id": STORES[v % 2], "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"})
        })
        .collect();
    json!({"count": visits.len(), "visits": visits})
}

async fn submit(h: &Harness, payload: Value) -> Job {
    let new = NewJob {
        kind: "image".into(),
        payload,
        priority: Some(2),
        scheduled_for: None,
    };
    h.jobs.submit(&OPS, new, None).await.unwrap().0
}

async fn drain(h: &Harness, worker: &Arc<Worker>, id: JobId) -> Job {
    for _ in 0..500 {
        h.sqs.poll(Band::Normal, worker).await;
        let job = h.job(id).await;
        if job.status.is_finished() {
            return job;
        }
    }
    panic!("job {id} did not finish: {:?}", h.job(id).await.status);
}

#[tokio::test]
async fn a_20000_image_job_is_stored_in_s3_loaded_once_and_counted_exactly() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 40, 30))]).await;
    let payloads = Arc::new(MemoryPayloads::new());
    let mut h = harness();
    let worker = with_payloads(&mut h, &payloads);
    let job = submit(&h, payload(&server, 2_000, 10)).await;

    // The item holds the reference, not the visits; the object holds exactly them.
    let JobSpec::Image(p) = &h.job(job.id).await.spec else {
        panic!("not an image job")
    };
    let stored = p.stored.clone().expect("stored in S3");
    assert!(p.visits.is_empty());
    assert_eq!((p.count, stored.visits, stored.images), (2_000, 2_000, 20_000));
    assert_eq!(p.part_count(), 800);
    assert_eq!(stored.key, format!("payloads/ops/{}.json", job.id));
    let object = payloads.object(&stored.key).unwrap();
    assert_eq!(object.len() as u64, stored.bytes);
    assert_eq!(shared::payloads::sha256(&object), stored.sha256);
    let item = serde_json::to_vec(&h.job(job.id).await).unwrap().len();
    assert!(item < 4 * 1024, "the job item is {item} bytes");

    let done = drain(&h, &worker, job.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let result = done.result.clone().unwrap();
    assert_eq!(
        (result["images_ok"].as_u64(), result["parts"].as_u64()),
        (Some(20_000), Some(800)),
        "{result}"
    );
    let parts = h.parts.list(job.id, &done.last_run_key().unwrap()).await.unwrap();
    assert_eq!(parts.len(), 800);
    let urls: std::collections::BTreeSet<&str> = parts.iter().flat_map(|p| &p.images).map(|i| i.url.as_str()).collect();
    assert_eq!(urls.len(), 20_000, "every image measured once");
    assert_eq!(server.requests(), 20_000);
    // The fan-out read the payload once; no part read it.
    assert_eq!(payloads.gets(), 1);
    assert_eq!(h.sqs.depth(Band::Normal), 0);
}

#[tokio::test]
async fn a_payload_changed_in_s3_fails_the_job_for_good_without_fetching() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 4, 4))]).await;
    let payloads = Arc::new(MemoryPayloads::new());
    let mut h = harness();
    let worker = with_payloads(&mut h, &payloads);
    let job = submit(&h, payload(&server, 100, 10)).await;
    let JobSpec::Image(p) = &h.job(job.id).await.spec else {
        panic!("not an image job")
    };
    let key = p.stored.as_ref().expect("stored in S3").key.clone();
    let mut bytes = payloads.object(&key).unwrap();
    bytes.extend_from_slice(b" ");
    payloads.overwrite(&key, bytes);

    let done = drain(&h, &worker, job.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(
        done.error.as_deref().unwrap().contains("payload changed"),
        "{:?}",
        done.error
    );
    assert_eq!(server.requests(), 0);
    assert_eq!(done.attempts, 1, "not retried");
}

#[tokio::test]
async fn a_part_message_without_images_reads_its_part_from_the_stored_payload() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 4, 4))]).await;
    let payloads = Arc::new(MemoryPayloads::new());
    let mut h = harness();
    let worker = with_payloads(&mut h, &payloads);
    let job = submit(&h, payload(&server, 100, 10)).await;
    // Start the run (the fan-out sends parts that carry images; an old one did not).
    worker.handle_record(delivery(job.id, 1)).await.unwrap();
    assert_eq!(payloads.gets(), 1);
    worker.handle_record(part_delivery(job.id, 7, 1)).await.unwrap();
    assert_eq!(payloads.gets(), 2, "the old message loaded the payload");
    let run = h.job(job.id).await.run_key().unwrap();
    let parts = h.parts.list(job.id, &run).await.unwrap();
    assert_eq!(parts.len(), 1);
    let urls: Vec<&str> = parts[0].images.iter().map(|i| i.url.as_str()).collect();
    // Part 7 holds images 175..200: visit 17, images 5..10, then visit 18 and 19.
    assert_eq!(urls.len(), 25);
    assert!(urls[0].ends_with("v=17&i=5"), "{}", urls[0]);
    assert!(urls[24].ends_with("v=19&i=9"), "{}", urls[24]);
}

#[tokio::test]
async fn a_small_payload_stays_inline_and_a_client_sent_reference_is_refused() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 4, 4))]).await;
    let payloads = Arc::new(MemoryPayloads::new());
    let mut h = harness();
    with_payloads(&mut h, &payloads);
    let job = submit(&h, payload(&server, 2, 2)).await;
    let JobSpec::Image(p) = &job.spec else { panic!() };
    assert!(p.stored.is_none() && p.visits.len() == 2);
    assert!(payloads.is_empty());

    let mut forged = payload(&server, 1, 1);
    forged["stored"] = json!({"bucket": "memory-payloads", "key": "payloads/bob/x.json", "bytes": 1,
                              "sha256": "00", "etag": "\"00\"", "visits": 1, "images": 1});
    let new = NewJob {
        kind: "image".into(),
        payload: forged,
        priority: None,
        scheduled_for: None,
    };
    let err = h.jobs.submit(&OPS, new, None).await.unwrap_err().to_string();
    assert!(err.starts_with("payload.stored:"), "{err}");
}

#[tokio::test]
async fn the_payload_object_of_a_job_not_created_is_removed() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 4, 4))]).await;
    let payloads = Arc::new(MemoryPayloads::new());
    let mut h = harness();
    with_payloads(&mut h, &payloads);
    *h.queue.fail_with.lock().unwrap() = Some("SQS is down".into());
    let new = NewJob {
        kind: "image".into(),
        payload: payload(&server, 100, 10),
        priority: Some(2),
        scheduled_for: None,
    };
    assert!(h.jobs.submit(&OPS, new, None).await.is_err());
    assert!(payloads.is_empty(), "the orphan was deleted");
}
