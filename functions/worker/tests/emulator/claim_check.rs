//! The claim check against S3 (LocalStack): a big image payload written by the service under
//! `payloads/<owner>/<job_id>.json`, read back with `If-Match` by the fan-out, refused once it
//! changed, and its parts carrying their own images through SQS.

use aws_sdk_s3::primitives::ByteStream;
use shared::job::JobSpec;
use shared::payloads::{Payloads, S3Payloads};
use shared::store::PartStore;
use test_images::{ImageFormat, ImageServer, encode};

use super::*;

fn payload(server: &ImageServer, visits: usize, per_visit: usize) -> Value {
    let visits: Vec<Value> = (0..visits)
        .map(|v| {
            let urls: Vec<String> = (0..per_visit)
                .map(|i| server.url(&format!("/img/a.png?v={v}&i={i}")))
                .collect();
            json!({"store_id": "S00339218", "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"})
        })
        .collect();
    json!({"count": visits.len(), "visits": visits})
}

impl Harness {
    fn payloads(&self) -> Arc<S3Payloads> {
        Arc::new(S3Payloads::new(self.t.clients.s3.clone(), self.t.var("UPLOADS_BUCKET")))
    }

    async fn submit_stored(&mut self, payload: Value) -> (Job, shared::job::StoredVisits) {
        self.jobs = self.jobs.clone().with_payloads(self.payloads());
        let new = NewJob {
            kind: "image".into(),
            payload,
            priority: Some(2),
            scheduled_for: None,
        };
        let job = self.jobs.submit(&OPS, new, None).await.unwrap().0;
        let JobSpec::Image(p) = &self.job(job.id).await.spec else {
            panic!("not an image job")
        };
        (job, p.stored.clone().expect("stored in S3"))
    }

    fn claim_worker(&self) -> Arc<Worker> {
        Arc::new(Worker {
            store: self.store.clone(),
            queue: self.jobs.queue.clone(),
            runner: Scripted::new(0, ok),
            images: Arc::new(self.image_jobs(short_fetches()).with_payloads(self.payloads())),
            lease: Duration::seconds(60),
            max_receives: 3,
        })
    }
}

#[tokio::test]
async fn a_big_payload_goes_to_s3_and_its_job_completes_from_part_messages() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 40, 30))]).await;
    let mut h = harness(30).await;
    let (job, stored) = h.submit_stored(payload(&server, 100, 10)).await;
    assert_eq!(stored.key, format!("payloads/ops/{}.json", job.id));
    assert_eq!((stored.visits, stored.images), (100, 1_000));

    // The object is exactly what the reference says.
    let object =
        h.t.clients
            .s3
            .get_object()
            .bucket(h.t.var("UPLOADS_BUCKET"))
            .key(&stored.key)
            .send()
            .await
            .unwrap();
    assert_eq!(object.e_tag(), Some(stored.etag.as_str()));
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len() as u64, stored.bytes);
    assert_eq!(shared::payloads::sha256(&bytes), stored.sha256);

    let poller = h.poller("NormalQueue", h.claim_worker());
    for _ in 0..100 {
        poller.poll_once().await.unwrap();
        if h.job(job.id).await.status.is_finished() {
            break;
        }
    }
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    assert_eq!(done.result.as_ref().unwrap()["images_ok"], 1_000);
    let parts = shared::store::DynamoPartStore::new(h.t.clients.dynamodb.clone(), h.t.var("JOBS_TABLE"))
        .list(job.id, &done.last_run_key().unwrap())
        .await
        .unwrap();
    assert_eq!(parts.len(), 40);
    assert_eq!(server.requests(), 1_000);
}

#[tokio::test]
async fn a_payload_overwritten_in_s3_fails_the_job_for_good() {
    let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 4, 4))]).await;
    let mut h = harness(30).await;
    let (job, stored) = h.submit_stored(payload(&server, 100, 10)).await;
    // The same visits written again: another ETag in LocalStack only if the bytes differ.
    let mut bytes = serde_json::to_vec(&h.payloads().load(&stored).await.unwrap()).unwrap();
    bytes.push(b'\n');
    h.t.clients
        .s3
        .put_object()
        .bucket(h.t.var("UPLOADS_BUCKET"))
        .key(&stored.key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
    let err = h.payloads().load(&stored).await.unwrap_err();
    assert!(err.to_string().contains("payload changed"), "{err}");

    h.claim_worker().handle_record(delivery(job.id, 1)).await.unwrap();
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(
        done.error.as_deref().unwrap().contains("payload changed"),
        "{:?}",
        done.error
    );
    assert_eq!(server.requests(), 0);
}
