//! Image jobs through the worker, in-process, against a local image server (`test-images`):
//! real files of each format, and routes that 404, ignore `Range`, hang, redirect to private
//! addresses or answer HTML. The fetcher's guard lets 127.0.0.1 through on any port
//! ([`short_fetches`]), as `IMAGE_ALLOW_HOSTS`/`IMAGE_ALLOW_PORTS` do for the local stack.

use std::collections::BTreeMap;

use shared::images::{ImageResult, PartResult};
use shared::job::{IMAGES_PER_PART, JobStatus};
use shared::store::PartStore;
use test_images::{FORMATS, ImageFormat, ImageServer, encode, extension, jpeg_with_exif};

use super::*;
use crate::handler::RecordError;
use crate::image::fetch::{CONTIGUOUS_FIRST_WINDOW, FIRST_WINDOW};

const STORE_A: &str = "S00339218";
const STORE_B: &str = "S01408764";

impl Harness {
    /// Submits an image job through the service, as `POST /jobs` or `/api/submit/` do.
    async fn submit_images(&self, visits: Vec<(&str, Vec<String>)>) -> Job {
        let visits: Vec<Value> = visits
            .into_iter()
            .map(|(store, urls)| json!({"store_id": store, "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"}))
            .collect();
        let new = NewJob {
            kind: "image".into(),
            payload: json!({"count": visits.len(), "visits": visits}),
            priority: Some(2),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }

    /// Runs the normal queue's event source until `id` is finished; returns the invocations made.
    async fn drain_until_finished(&self, worker: Arc<Worker>, id: JobId) -> (Job, usize) {
        let mut invocations = 0;
        for _ in 0..200 {
            if self.sqs.poll(Band::Normal, &worker).await.delivered > 0 {
                invocations += 1;
            }
            let job = self.job(id).await;
            if job.status.is_finished() {
                return (job, invocations);
            }
        }
        panic!("job {id} did not finish: {:?}", self.job(id).await);
    }

    /// The per-image results of run `run` of the job, by URL, and its parts.
    async fn results(&self, job: &Job, run: &str) -> (BTreeMap<String, ImageResult>, Vec<PartResult>) {
        let parts = self.parts.list(job.id, run).await.unwrap();
        let images = parts
            .iter()
            .flat_map(|p| p.images.iter().cloned())
            .map(|i| (i.url.clone(), i))
            .collect();
        (images, parts)
    }
}

/// The run key a finished job had while it ran (`started_at`).
fn run_of(job: &Job) -> String {
    job.started_at.unwrap().unix_timestamp_nanos().to_string()
}

#[tokio::test]
async fn images_of_every_format_small_and_large_are_measured_from_their_headers() {
    let mut files = Vec::new();
    for format in FORMATS {
        let ext = extension(format);
        files.push((format!("small.{ext}"), encode(format, 64, 48)));
        // Large enough that reading it whole would show; GIF quantizing is slow, so it stays smaller.
        let (w, h) = if format == ImageFormat::Gif {
            (700, 500)
        } else {
            (1600, 1200)
        };
        files.push((format!("large.{ext}"), encode(format, w, h)));
    }
    files.push(("exif.jpg".into(), jpeg_with_exif(1200, 900, 60_000)));
    let server = ImageServer::start(files).await;
    let mut urls: Vec<String> = FORMATS
        .iter()
        .flat_map(|f| {
            let ext = extension(*f);
            [
                server.url(&format!("/img/small.{ext}")),
                server.url(&format!("/img/large.{ext}")),
            ]
        })
        .collect();
    urls.push(server.url("/img/exif.jpg"));
    urls.push(server.url("/norange/large.jpg"));
    urls.push(server.url("/from0/exif.jpg"));

    let h = harness();
    let job = h
        .submit_images(vec![(STORE_A, urls[..7].to_vec()), (STORE_B, urls[7..].to_vec())])
        .await;
    let (done, _) = h
        .drain_until_finished(h.worker(Scripted::new(0, ok), Duration::seconds(60)), job.id)
        .await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    assert_eq!(done.result.as_ref().unwrap()["images_ok"], 15);
    assert_eq!(done.result.as_ref().unwrap()["errors"], json!([]));
    assert_eq!(done.progress.percent, 100);

    let (images, _) = h.results(&done, &run_of(&done)).await;
    assert_eq!(images.len(), 15);
    for (url, image) in &images {
        let name = url.rsplit('/').next().unwrap();
        let (w, h) = match name {
            n if n.starts_with("small") => (64, 48),
            "large.gif" => (700, 500),
            "exif.jpg" => (1200, 900),
            _ => (1600, 1200),
        };
        assert_eq!((image.width, image.height), (w, h), "{url}");
        assert_eq!(image.perimeter, 2 * (u64::from(w) + u64::from(h)), "{url}");
        let size = server.size(name) as u64;
        if name.starts_with("large") {
            // A small share of the file: one small window by Range (a TIFF: plus its directory's
            // first entries); read as a stream, what arrived until the header was complete.
            let most = if url.contains("/img/") {
                2 * FIRST_WINDOW
            } else {
                CONTIGUOUS_FIRST_WINDOW
            };
            assert!(
                image.bytes_read <= most && image.bytes_read * 10 <= size,
                "{url}: read {} of {size} bytes",
                image.bytes_read
            );
        }
        assert!(image.bytes_read <= size, "{url}");
    }
    // The JPEG whose EXIF block outgrows the first window: the block skipped by its length, the
    // second request starting after it.
    assert!(images[&server.url("/img/exif.jpg")].bytes_read <= 2 * FIRST_WINDOW);
    assert_eq!(images[&server.url("/img/large.jpg")].store_id, STORE_A);
    assert_eq!(images[&server.url("/norange/large.jpg")].store_id, STORE_B);
    // A server answering the second window from byte 0 is read as a stream, stopping early.
    let from0 = &images[&server.url("/from0/exif.jpg")];
    assert_eq!((from0.width, from0.height), (1200, 900));
    assert!(from0.bytes_read < server.size("exif.jpg") as u64 + FIRST_WINDOW);
}

#[tokio::test]
async fn every_failure_becomes_its_stores_error_and_the_results_that_worked_are_kept() {
    let server = ImageServer::start([("ok.png".to_string(), encode(ImageFormat::Png, 30, 20))]).await;
    let redirect_to = |target: &str| server.url(&format!("/redirect?to={target}"));
    let h = harness();
    let job = h
        .submit_images(vec![
            (
                "S01302075",
                vec![server.url("/img/ok.png"), server.url("/flaky/ok.png")],
            ),
            (
                "S01306137",
                vec![server.url("/img/ok.png"), server.url("/img/missing.png")],
            ),
            ("S00339198", vec![server.url("/slow/ok.png")]),
            ("S00339204", vec![redirect_to("http://10.0.0.1/ok.png")]),
            (
                "S00339215",
                vec![redirect_to("http://169.254.169.254/latest/meta-data/")],
            ),
            ("S00839486", vec![server.url("/html")]),
            ("S99999999", vec![server.url("/img/ok.png")]),
            ("S01400836", vec![redirect_to(&server.url("/img/ok.png"))]),
            ("S00835303", vec!["http://[::1]:1/ok.png".to_string()]),
        ])
        .await;
    let (done, _) = h
        .drain_until_finished(h.worker(Scripted::new(0, ok), Duration::seconds(60)), job.id)
        .await;
    assert_eq!(done.status, JobStatus::Failed);
    let result = done.result.clone().unwrap();
    let errors: BTreeMap<String, String> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["store_id"].as_str().unwrap().to_owned(),
                e["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |store: &str, needle: &str| {
        let error = errors
            .get(store)
            .unwrap_or_else(|| panic!("no error for {store}: {errors:?}"));
        assert!(error.contains(needle), "{store}: {error:?} lacks {needle:?}");
    };
    expect("S01306137", "HTTP 404");
    expect("S00339198", "timed out (after 2 attempts)");
    // A redirect's target is the server's word: refused without quoting it.
    expect("S00339204", "a redirect to an address that is not public");
    expect("S00339215", "a redirect to an address that is not public");
    expect("S00839486", "not an image");
    expect("S99999999", "unknown store_id S99999999");
    expect("S00835303", "::1 is not a public address");
    assert_eq!(errors.len(), 7, "{errors:?}");
    // A 503 is retried; a redirect to an allowed address is followed.
    assert!(!errors.contains_key("S01302075") && !errors.contains_key("S01400836"));
    assert_eq!(result["images_ok"], 4);
    assert_eq!(result["images_failed"], 7);
    let error = done.error.clone().unwrap();
    assert!(error.starts_with("7 stores failed: "), "{error}");

    let (images, _) = h.results(&done, &run_of(&done)).await;
    assert_eq!(images.len(), 3, "results by URL: two stores share /img/ok.png");
    assert_eq!(images[&server.url("/flaky/ok.png")].perimeter, 100);
}

#[tokio::test]
async fn a_duplicate_part_delivery_is_recorded_once() {
    let server = ImageServer::start([("a.gif".to_string(), encode(ImageFormat::Gif, 10, 10))]).await;
    let h = harness();
    let urls: Vec<String> = (0..IMAGES_PER_PART + 5)
        .map(|i| server.url(&format!("/img/a.gif?n={i}")))
        .collect();
    let job = h.submit_images(vec![(STORE_A, urls)]).await;
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));

    // The job's message fans out two parts (they wait on the queue; delivered by hand here).
    worker.handle_record(delivery(job.id, 1)).await.unwrap();
    let running = h.job(job.id).await;
    assert_eq!((running.status, running.attempts), (JobStatus::Processing, 1));
    assert_eq!(running.progress.stage, "0/2 parts");
    assert_eq!(
        h.sqs.depth(Band::Normal),
        3,
        "the job's own message (handled by hand here) + 2 parts"
    );
    // Its duplicate sends them again: harmless.
    worker.handle_record(delivery(job.id, 2)).await.unwrap();
    assert_eq!(h.sqs.depth(Band::Normal), 5);

    let (a, b) = tokio::join!(
        worker.handle_record(part_delivery(job.id, 0, 1)),
        worker.handle_record(part_delivery(job.id, 0, 1))
    );
    a.unwrap();
    b.unwrap();
    let half = h.job(job.id).await;
    assert_eq!((half.status, half.progress.percent), (JobStatus::Processing, 50));
    worker.handle_record(part_delivery(job.id, 1, 1)).await.unwrap();
    let requests = server.requests();
    worker.handle_record(part_delivery(job.id, 1, 2)).await.unwrap();
    worker.handle_record(part_delivery(job.id, 0, 3)).await.unwrap();
    assert_eq!(server.requests(), requests, "deliveries after the end fetch nothing");
    assert_eq!(
        h.parts.records.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "part 0 twice, part 1 once; none after the end"
    );

    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed);
    let run = run_of(&done);
    assert_eq!(h.parts.done(job.id, &run).await.unwrap(), 2);
    let (images, parts) = h.results(&done, &run).await;
    assert_eq!(
        parts.iter().map(|p| p.images.len()).sum::<usize>(),
        IMAGES_PER_PART + 5,
        "not doubled"
    );
    assert_eq!(images.len(), IMAGES_PER_PART + 5);
    assert_eq!(done.result.unwrap()["images_ok"], IMAGES_PER_PART + 5);
}

#[tokio::test]
async fn a_1000_image_job_is_shared_by_several_worker_invocations() {
    let server = ImageServer::start([
        ("p.png".to_string(), encode(ImageFormat::Png, 120, 80)),
        ("j.jpg".to_string(), encode(ImageFormat::Jpeg, 90, 60)),
    ])
    .await;
    let h = harness();
    let visits: Vec<(&str, Vec<String>)> = (0..40)
        .map(|v| {
            let store = if v % 2 == 0 { STORE_A } else { STORE_B };
            let urls = (0..25)
                .map(|i| {
                    let file = if i % 2 == 0 { "p.png" } else { "j.jpg" };
                    server.url(&format!("/img/{file}?visit={v}&image={i}"))
                })
                .collect();
            (store, urls)
        })
        .collect();
    let job = h.submit_images(visits).await;
    let (done, invocations) = h
        .drain_until_finished(h.worker(Scripted::new(0, ok), Duration::seconds(60)), job.id)
        .await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    // 1 fan-out message + 40 parts, at most 10 records per invocation.
    assert!(invocations >= 5, "{invocations} invocations");
    let result = done.result.clone().unwrap();
    assert_eq!(
        (result["images_ok"].as_u64(), result["parts"].as_u64()),
        (Some(1000), Some(40))
    );
    let (images, _) = h.results(&done, &run_of(&done)).await;
    assert_eq!(images.len(), 1000);
    assert!(images.values().all(|i| i.perimeter == 400 || i.perimeter == 300));
    assert_eq!(h.sqs.depth(Band::Normal), 0);
}

#[tokio::test]
async fn a_retried_image_job_counts_its_parts_afresh() {
    let server = ImageServer::start([("a.bmp".to_string(), encode(ImageFormat::Bmp, 8, 4))]).await;
    let h = harness();
    let job = h
        .submit_images(vec![
            (STORE_A, vec![server.url("/img/a.bmp")]),
            ("S404", vec![server.url("/img/a.bmp")]),
        ])
        .await;
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));
    let (failed, _) = h.drain_until_finished(worker.clone(), job.id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.result.as_ref().unwrap()["images_ok"],
        1,
        "the good store's result is kept"
    );

    h.jobs.retry(&OPS, job.id).await.unwrap();
    let (again, _) = h.drain_until_finished(worker, job.id).await;
    assert_eq!((again.status, again.attempts), (JobStatus::Failed, 1));
    assert_ne!(run_of(&again), run_of(&failed));
    assert_eq!(h.parts.done(job.id, &run_of(&again)).await.unwrap(), 1);
    assert_eq!(h.parts.runs(job.id).len(), 2, "each run its own parts");
}

#[tokio::test]
async fn a_part_cut_short_by_the_invocation_deadline_stays_on_the_queue_until_its_last_delivery() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 5, 5))]).await;
    let h = harness();
    let job = h
        .submit_images(vec![(
            STORE_A,
            vec![server.url("/img/a.png"), server.url("/slow/a.png")],
        )])
        .await;
    // A request timeout longer than the time left, so only the deadline stops the slow image.
    let fetch = FetchConfig {
        timeout: StdDuration::from_secs(20),
        ..short_fetches()
    };
    let worker = h.worker_fetching(Scripted::new(0, ok), Duration::seconds(60), fetch);
    worker.handle_record(delivery(job.id, 1)).await.unwrap();
    // The worker keeps 5 s back before the deadline, so this leaves the fast image 1.5 s to be
    // measured (in-process, it takes milliseconds) and cuts the slow one (30 s) short.
    let soon = || tokio::time::Instant::now() + StdDuration::from_millis(6_500);

    let first = crate::image::DEADLINE
        .scope(soon(), worker.handle_record(part_delivery(job.id, 0, 1)))
        .await;
    match first {
        Err(ref e @ RecordError::OutOfTime { part, images }) => {
            assert_eq!((part, images), (0, 1));
            assert_eq!(
                e.to_string(),
                "attempt failed: 1 images of part 0 not measured before the deadline"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.job(job.id).await.status, JobStatus::Processing, "nothing recorded");
    assert_eq!(h.parts.records.load(std::sync::atomic::Ordering::Relaxed), 0);

    crate::image::DEADLINE
        .scope(soon(), worker.handle_record(part_delivery(job.id, 0, MAX_RECEIVES)))
        .await
        .unwrap();
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    let result = done.result.unwrap();
    assert_eq!(result["images_ok"], 1);
    assert_eq!(result["errors"][0]["error"], "not measured: the worker ran out of time");
}

#[tokio::test]
async fn a_part_store_outage_leaves_the_part_on_the_queue_and_its_redelivery_records_it() {
    let server = ImageServer::start([("a.webp".to_string(), encode(ImageFormat::WebP, 7, 3))]).await;
    let h = harness();
    let job = h.submit_images(vec![(STORE_B, vec![server.url("/img/a.webp")])]).await;
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));
    worker.handle_record(delivery(job.id, 1)).await.unwrap();

    // GIVEN the part store failing
    *h.parts.fail_with.lock().unwrap() = Some("DynamoDB is throttling".into());
    // WHEN the part is delivered THEN the record stays on the queue and the job keeps running
    let out = worker.handle_record(part_delivery(job.id, 0, 1)).await;
    assert!(
        matches!(&out, Err(RecordError::Store(shared::Error::Internal(why))) if why == "DynamoDB is throttling"),
        "{out:?}"
    );
    assert_eq!(h.job(job.id).await.status, JobStatus::Processing);

    // AND once the store is back, the redelivery records the part and finishes the job
    *h.parts.fail_with.lock().unwrap() = None;
    worker.handle_record(part_delivery(job.id, 0, 2)).await.unwrap();
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    assert_eq!(done.result.unwrap()["images_ok"], 1);
}

#[tokio::test]
async fn a_part_of_an_earlier_run_or_of_a_job_not_running_is_acknowledged_without_work() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 2, 2))]).await;
    let h = harness();
    let job = h.submit_images(vec![(STORE_A, vec![server.url("/img/a.png")])]).await;
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));

    // Waiting, not started: a part message (of a run a retry replaced) does nothing.
    worker.handle_record(part_delivery(job.id, 0, 1)).await.unwrap();
    assert_eq!(h.job(job.id).await.status, JobStatus::Pending);

    worker.handle_record(delivery(job.id, 1)).await.unwrap();
    let stale = JobMessage {
        job_id: job.id,
        part: Some(0),
        run: Some("1".into()),
        images: None,
    };
    worker.handle_record(record("stale", &stale, 2, 1)).await.unwrap();
    assert_eq!(server.requests(), 0, "nothing fetched");
    assert_eq!(h.parts.records.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(h.job(job.id).await.status, JobStatus::Processing);
}
