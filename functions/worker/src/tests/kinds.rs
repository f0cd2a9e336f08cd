//! Seed 001's kinds (email, notification) through `Worker` with the real `Processors` over the
//! in-memory mailer and publisher: the job completes with its result, a refused call fails it at
//! once, a throttled one is retried and fails after the last delivery.

use shared::job::JobStatus;
use shared::store::memory::{Fault, MemoryMailer, MemoryObjects, MemoryPublisher};

use super::*;
use crate::archive::Archiver;
use crate::email::Emailer;
use crate::handler::Processors;
use crate::notification::Notifier;
use crate::report::Reporter;

struct Fakes {
    mailer: Arc<MemoryMailer>,
    publisher: Arc<MemoryPublisher>,
    objects: Arc<MemoryObjects>,
}

fn processors(store: Arc<MemoryJobStore>) -> (Arc<Processors>, Fakes) {
    let objects = Arc::new(MemoryObjects::new());
    let mailer = Arc::new(MemoryMailer::new("jobs@example.com"));
    let publisher = Arc::new(MemoryPublisher::new("arn:aws:sns:us-east-1:000000000000:notifications"));
    let processors = Arc::new(Processors {
        archive: Archiver::new(Arc::new(MemoryObjects::new())),
        email: Emailer::new(mailer.clone()),
        notify: Notifier::new(publisher.clone()),
        report: Reporter {
            store,
            objects: objects.clone(),
            bucket: "b".into(),
            link_ttl: StdDuration::from_secs(600),
            max_jobs: 10,
        },
    });
    (
        processors,
        Fakes {
            mailer,
            publisher,
            objects,
        },
    )
}

impl Harness {
    async fn submit_kind(&self, kind: &str, payload: Value, priority: u8) -> Job {
        let new = NewJob {
            kind: kind.into(),
            payload,
            priority: Some(priority),
            scheduled_for: None,
        };
        self.jobs.submit(&OPS, new, None).await.unwrap().0
    }
}

#[tokio::test]
async fn seed_001s_email_example_is_sent_once_and_completes_with_seed_001s_result() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    let worker = h.worker(processors, Duration::seconds(60));
    let job = h
        .submit_kind(
            "email",
            json!({"to": "user@example.com", "subject": "Welcome!", "body": "Thanks for signing up."}),
            5,
        )
        .await;
    let o = h.sqs.poll(Band::High, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    let sent = fakes.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to.as_str(), sent[0].job_id), ("user@example.com", job.id));
    let result = done.result.unwrap();
    assert_eq!(result["status"], "sent");
    assert_eq!(result["message_id"], sent[0].message_id.as_str());
    assert!(result["timestamp"].is_string());
    // A duplicate delivery of the finished job sends nothing more.
    worker.handle_record(delivery(job.id, 2)).await.unwrap();
    assert_eq!(fakes.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_refused_mail_fails_the_job_at_once() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    fakes.mailer.fail(Some(Fault::Denied));
    let job = h.submit_kind("email", json!({"to": "user@example.com"}), 3).await;
    let o = h
        .sqs
        .poll(Band::Normal, &h.worker(processors, Duration::seconds(60)))
        .await;
    assert_eq!((o.delivered, o.deleted), (1, 1), "acknowledged: no retry");
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(
        failed.error.as_deref(),
        Some("sending to user@example.com: SendEmail failed (AccessDenied)")
    );
}

#[tokio::test]
async fn a_throttled_mail_is_retried_and_sent_on_a_later_delivery() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    let worker = h.worker(processors, Duration::seconds(60));
    fakes.mailer.fail(Some(Fault::Throttled));
    let job = h.submit_kind("email", json!({"to": "user@example.com"}), 3).await;
    let o = h.sqs.poll(Band::Normal, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 0), "kept for another delivery");
    assert_eq!(h.job(job.id).await.status, JobStatus::Queued);
    fakes.mailer.fail(None);
    let o = h.sqs.poll(Band::Normal, &worker).await;
    assert_eq!((o.delivered, o.deleted), (1, 1));
    let done = h.job(job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 2));
    assert_eq!(fakes.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_notification_throttled_on_every_delivery_fails_after_the_last_and_is_dead_lettered() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    let worker = h.worker(processors, Duration::seconds(60));
    fakes.publisher.fail(Some(Fault::Throttled));
    let job = h
        .submit_kind(
            "notification",
            json!({"user_id": "u-1", "channel": "sms", "message": "hi"}),
            2,
        )
        .await;
    for _ in 0..MAX_RECEIVES {
        h.sqs.poll(Band::Normal, &worker).await;
    }
    let failed = h.job(job.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 3));
    assert_eq!(
        failed.error.as_deref(),
        Some("publishing the notification: Publish failed (ThrottlingException)")
    );
    assert_eq!(h.sqs.dead_letters(Band::Normal).len(), 1);
    assert!(fakes.publisher.published().is_empty());
}

#[tokio::test]
async fn a_notification_is_published_once_with_its_attributes() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    let job = h
        .submit_kind(
            "notification",
            json!({"user_id": "u-1", "channel": "push", "message": "Your order shipped"}),
            4,
        )
        .await;
    h.sqs
        .poll(Band::High, &h.worker(processors, Duration::seconds(60)))
        .await;
    let done = h.job(job.id).await;
    assert_eq!(done.status, JobStatus::Completed);
    let published = fakes.publisher.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1.job_id, job.id);
    assert_eq!(
        done.result,
        Some(json!({
            "message_id": published[0].0,
            "topic": "arn:aws:sns:us-east-1:000000000000:notifications",
            "channel": "push",
            "user_id": "u-1",
        }))
    );
}

fn today() -> String {
    let now = shared::clock::now().date();
    format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day())
}

#[tokio::test]
async fn a_report_counts_the_periods_jobs_and_writes_csv_and_json_with_a_link() {
    let h = harness();
    let (processors, fakes) = processors(h.store.clone());
    let worker = h.worker(processors, Duration::seconds(60));
    let alice = Caller::user("alice");
    let bob = Caller::user("bob");
    let submit = |caller: &'static Caller, kind: &str, payload: Value| {
        let new = NewJob {
            kind: kind.into(),
            payload,
            priority: Some(3),
            scheduled_for: None,
        };
        let jobs = &h.jobs;
        async move { jobs.submit(caller, new, None).await.unwrap().0 }
    };
    let alice: &'static Caller = Box::leak(Box::new(alice));
    let bob: &'static Caller = Box::leak(Box::new(bob));
    submit(alice, "email", json!({"to": "a@example.com"})).await;
    submit(alice, "email", json!({"to": "b@example.com"})).await;
    fakes.mailer.fail(Some(Fault::Denied));
    h.sqs.poll(Band::Normal, &worker).await; // both fail for good
    fakes.mailer.fail(None);
    submit(alice, "email", json!({"to": "c@example.com"})).await;
    submit(
        alice,
        "notification",
        json!({"user_id": "u", "channel": "sms", "message": "m"}),
    )
    .await;
    h.sqs.poll(Band::Normal, &worker).await; // both complete
    submit(bob, "email", json!({"to": "d@example.com"})).await; // not alice's

    let day = today();
    let report = submit(
        alice,
        "report",
        json!({"report_type": "daily", "format": "json", "date_range": {"start": day, "end": day}}),
    )
    .await;
    h.sqs.poll(Band::Normal, &worker).await;
    let done = h.job(report.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let result = done.result.unwrap();
    assert_eq!(
        (result["jobs"].as_u64(), result["rows"].as_u64()),
        (Some(4), Some(3)),
        "{result}"
    );
    assert_eq!(result["scope"], "own");
    let prefix = format!("reports/alice/{}", report.id);
    assert_eq!(result["files"]["csv"], format!("{prefix}/report.csv"));
    assert!(
        result["download_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("memory://b/{prefix}/report.json?expires=")),
        "{result}"
    );
    let csv = String::from_utf8(fakes.objects.get("b", &format!("{prefix}/report.csv")).unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("status,kind,count,turnaround_ms_min,"), "{csv}");
    assert!(lines[1].starts_with("completed,email,1,"), "{csv}");
    assert!(lines[2].starts_with("completed,notification,1,"), "{csv}");
    assert!(lines[3].starts_with("failed,email,2,"), "{csv}");
    let json: Value =
        serde_json::from_slice(&fakes.objects.get("b", &format!("{prefix}/report.json")).unwrap()).unwrap();
    assert_eq!(json["rows"][2]["count"], 2);
    assert_eq!(json["rows"][2]["kind"], "email");
    assert!(json["rows"][1]["run_ms"]["max"].is_i64(), "{json}");
    // Seed 001's other format: a printable table of the same rows.
    assert_eq!(result["files"]["pdf"], format!("{prefix}/report.pdf"));
    let pdf = fakes.objects.get("b", &format!("{prefix}/report.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("(Report: daily) '"), "{text}");
    assert!(text.contains("(failed     email              2  "), "{text}");
    if let Ok(path) = std::env::var("REPORT_PDF_OUT") {
        std::fs::write(path, &pdf).unwrap(); // to open it with a PDF reader
    }
}

#[tokio::test]
async fn a_report_over_too_many_jobs_fails_for_good_and_everyones_jobs_are_for_admins() {
    let h = harness();
    let (processors, _) = processors(h.store.clone());
    for n in 0..11 {
        h.submit_kind("email", json!({"to": format!("u{n}@example.com")}), 5)
            .await;
    }
    let day = today();
    let payload = json!({"report_type": "daily", "scope": "all", "date_range": {"start": day, "end": day}});
    let err = h
        .jobs
        .submit(
            &Caller::user("alice"),
            NewJob {
                kind: "report".into(),
                payload: payload.clone(),
                priority: Some(3),
                scheduled_for: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, shared::Error::Forbidden(m) if m.starts_with("payload.scope:")),
        "{err:?}"
    );
    let report = h.submit_kind("report", payload, 3).await; // an admin's
    h.sqs
        .poll(Band::Normal, &h.worker(processors, Duration::seconds(60)))
        .await;
    let failed = h.job(report.id).await;
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(
        failed.error.as_deref(),
        Some("more than 10 jobs in the period; narrow date_range")
    );
}
