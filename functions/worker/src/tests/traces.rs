//! One trace id through a job: the message a submission sends carries the submitter's trace
//! (`AWSTraceHeader`), the worker handles the record in that trace, every log line of the job's
//! handling carries `trace_id` and `job_id`, and what the worker sends on (re-delays, the parts of
//! an image job) carries the same trace.

use std::io::Write;

use shared::trace::{TraceHeader, scope};

use super::*;

const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";

/// Log lines captured as the functions write them (`shared::telemetry::json_subscriber`).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn json(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn capture() -> (Lines, tracing::subscriber::DefaultGuard) {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber =
        shared::telemetry::json_subscriber(move || writer.clone(), tracing_subscriber::EnvFilter::new("info"));
    (lines, tracing::subscriber::set_default(subscriber))
}

fn trace() -> TraceHeader {
    TraceHeader::parse(TRACE).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_jobs_log_lines_carry_the_trace_of_the_request_that_submitted_it() {
    let h = harness();
    // GIVEN a job submitted in a request's trace (as the api does)
    let job = scope(Some(trace()), h.submit(4)).await;
    assert_eq!(
        h.queue.traces_of(job.id),
        vec![Some(TRACE.to_string())],
        "its message carries the trace"
    );
    // AND one submitted outside any trace
    let other = h.submit(4).await;
    assert_eq!(h.queue.traces_of(other.id), vec![None]);

    // WHEN the worker takes both from the queue, logging as in Lambda
    let (lines, _guard) = capture();
    let polled = h
        .sqs
        .poll(Band::High, &h.worker(Scripted::new(0, ok), Duration::seconds(60)))
        .await;
    assert_eq!(polled.deleted, 2);

    // THEN every line about the job carries its id and the request's trace id
    let lines = lines.json();
    let of_job: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["job_id"] == job.id.to_string())
        .collect();
    let messages: Vec<&str> = of_job.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(
        messages.contains(&"processing") && messages.contains(&"completed"),
        "{messages:?} in {lines:#?}"
    );
    for line in &of_job {
        assert_eq!(line["span"]["trace_id"], TRACE_ID, "{line}");
        assert_eq!(line["span"]["message_id"], format!("m0-{}", job.id), "{line}");
    }
    // AND the job without a trace has lines of its own, with its id and no trace id
    let untraced: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["job_id"] == other.id.to_string())
        .collect();
    assert!(!untraced.is_empty());
    assert!(
        untraced.iter().all(|l| l["span"].get("trace_id").is_none()),
        "{untraced:?}"
    );
    assert_eq!(h.job(job.id).await.status, shared::job::JobStatus::Completed);
}

#[tokio::test]
async fn what_the_worker_sends_on_carries_the_records_trace() {
    let h = harness();
    let worker = h.worker(Scripted::new(0, ok), Duration::seconds(60));
    // A job scheduled beyond SQS's 15 minutes is parked (no message at creation); a delivery
    // of it that comes early is re-delayed by the worker: the new message goes on in the trace
    // of the record that brought the job.
    let later = NewJob {
        kind: "archive".into(),
        payload: json!({"asset_id": "a", "source": "s3://bucket/key"}),
        priority: Some(3),
        scheduled_for: Some(shared::clock::now() + Duration::minutes(40)),
    };
    let job = h.jobs.submit(&OPS, later, None).await.unwrap().0;
    let mut record = delivery(job.id, 1);
    record
        .attributes
        .insert(shared::trace::SQS_ATTRIBUTE.into(), TRACE.into());
    worker.handle_record(record).await.unwrap();
    assert_eq!(
        h.queue.traces_of(job.id),
        vec![Some(TRACE.to_string())],
        "the re-delay, in the record's trace"
    );

    // An image job's parts are sent in the trace of its first delivery.
    let urls: Vec<Value> = (0..30).map(|i| json!(format!("http://127.0.0.1:9/{i}.jpg"))).collect();
    let new = NewJob {
        kind: "image".into(),
        payload: json!({"count": 1, "visits": [{"store_id": "S00339218", "image_url": urls, "visit_time": "2026-11-23T10:00:00Z"}]}),
        priority: Some(2),
        scheduled_for: None,
    };
    let image = scope(Some(trace()), h.jobs.submit(&OPS, new, None)).await.unwrap().0;
    h.sqs.poll(Band::Normal, &worker).await;
    let traces = h.queue.traces_of(image.id);
    assert!(traces.len() >= 3, "the job's message and its parts: {traces:?}");
    assert!(traces.iter().all(|t| t.as_deref() == Some(TRACE)), "{traces:?}");
}
