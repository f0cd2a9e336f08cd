//! The DynamoDB stream event source against the emulator's stream (DynamoDB Streams API at
//! `AWS_ENDPOINT_URL_DYNAMODB`), with an in-process function: provisioning from the template's
//! `StreamSpecification` and `DynamoDB` event, bisect on error, partial batch failures, the retry
//! limit and the on-failure destination.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use local_bridge::invoke::{InProcess, InvokeError, Invoker};
use local_bridge::stream_source::{StreamPoller, StreamSource};
use local_bridge::testing::TestStack;
use serde_json::{Value, json};

type Calls = Arc<Mutex<Vec<Vec<String>>>>;

/// The pk of each record of an event.
fn keys(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_string())
        .collect()
}

fn sequence_of(event: &Value, pk: &str) -> String {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == pk)
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string())
        .unwrap()
}

/// A notify function in process: fails (a function error) on any batch holding a `BAD` item, and
/// reports the `PARTIAL` item as a batch item failure.
fn function() -> (Arc<dyn Invoker>, Calls, Arc<Mutex<Vec<Value>>>) {
    let calls: Calls = Arc::default();
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (seen, all) = (calls.clone(), events.clone());
    let invoker = InProcess(move |_name: String, event: Value| {
        let ks = keys(&event);
        seen.lock().unwrap().push(ks.clone());
        all.lock().unwrap().push(event.clone());
        Box::pin(async move {
            if ks.iter().any(|k| k.contains("BAD")) {
                return Err(InvokeError::Function {
                    error_type: "Panic".into(),
                    message: "bad record".into(),
                });
            }
            let failures: Vec<Value> = ks
                .iter()
                .filter(|k| k.contains("PARTIAL"))
                .map(|k| json!({"itemIdentifier": sequence_of(&event, k)}))
                .collect();
            Ok(json!({"batchItemFailures": failures}))
        }) as _
    });
    (Arc::new(invoker), calls, events)
}

async fn put(t: &TestStack, pks: &[&str]) {
    for pk in pks {
        t.clients
            .dynamodb
            .put_item()
            .table_name(t.var("JOBS_TABLE"))
            .item("pk", AttributeValue::S(pk.to_string()))
            .item("sk", AttributeValue::S("X".into()))
            .send()
            .await
            .unwrap();
    }
}

/// Runs the template's notify mapping (read from the stream's start) until `done`.
async fn run(t: &TestStack, invoker: Arc<dyn Invoker>, done: impl Fn() -> bool) -> StreamSource {
    let [source] = t.stack.stream_sources.as_slice() else {
        panic!("one stream source: {:?}", t.stack.stream_sources)
    };
    let source = StreamSource {
        trim_horizon: true,
        maximum_retry_attempts: Some(1),
        ..source.clone()
    };
    let stop = start(t, &source, invoker);
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stream source did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.await;
    source
}

/// Starts polling `source`'s stream; the returned future stops it (waiting at most 5 s).
fn start(t: &TestStack, source: &StreamSource, invoker: Arc<dyn Invoker>) -> impl Future<Output = ()> + use<> {
    let poller = StreamPoller {
        streams: t.clients.streams.clone(),
        sqs: t.clients.sqs.clone(),
        source: source.clone(),
        invoker,
        idle: Duration::from_millis(100),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(poller.run(stopped));
    async move {
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}

async fn failed_batches(t: &TestStack) -> Vec<Value> {
    let out = t
        .clients
        .sqs
        .receive_message()
        .queue_url(t.stack.reference("LiveFailedChangesQueue").unwrap())
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn the_template_mapping_is_provisioned_from_the_stream_specification() {
    let t = TestStack::new(None).await;
    let [s] = t.stack.stream_sources.as_slice() else {
        panic!()
    };
    assert_eq!(s.function, "notify");
    assert_eq!(s.batch_size, 25);
    assert!(s.bisect_on_error && s.report_batch_item_failures && !s.trim_horizon);
    assert_eq!(s.maximum_retry_attempts, Some(3));
    assert!(
        s.on_failure
            .as_ref()
            .unwrap()
            .queue_arn
            .ends_with("LiveFailedChangesQueue")
    );
    let table = t
        .clients
        .dynamodb
        .describe_table()
        .table_name(t.var("JOBS_TABLE"))
        .send()
        .await
        .unwrap();
    let table = table.table.unwrap();
    assert_eq!(table.latest_stream_arn.as_deref(), Some(s.stream_arn.as_str()));
    assert_eq!(
        table.stream_specification.unwrap().stream_view_type.unwrap().as_str(),
        "NEW_AND_OLD_IMAGES"
    );
}

#[tokio::test]
async fn a_function_error_bisects_the_batch_and_the_bad_record_goes_to_the_destination() {
    // GIVEN four changes, the second of which always fails the function
    let t = TestStack::new(None).await;
    put(&t, &["ok1", "BAD", "ok2", "ok3"]).await;
    let (invoker, calls, events) = function();
    // WHEN the source reads them (one batch of four)
    let seen = calls.clone();
    run(&t, invoker, move || {
        let c = seen.lock().unwrap();
        c.iter().filter(|b| b.contains(&"ok2".to_string())).count() >= 2
            && c.last().unwrap().contains(&"ok3".to_string())
    })
    .await;
    // THEN the batch is split until the bad record is alone, retried once, then given up on
    let batches = calls.lock().unwrap().clone();
    assert_eq!(
        batches,
        vec![
            vec!["ok1", "BAD", "ok2", "ok3"],
            vec!["ok1", "BAD"],
            vec!["ok1"],
            vec!["BAD"],
            vec!["BAD"],
            vec!["ok2", "ok3"],
        ],
        "bisect (a split is no retry), MaximumRetryAttempts 1"
    );
    let bad_sequence = sequence_of(&events.lock().unwrap()[0], "BAD");
    let failed = failed_batches(&t).await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let info = &failed[0]["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], bad_sequence.as_str());
    assert_eq!(info["endSequenceNumber"], bad_sequence.as_str());
    assert_eq!(failed[0]["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(failed[0]["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(failed[0]["responseContext"]["functionError"], "Unhandled");
    // The events have Lambda's DynamodbEvent shape.
    let event: aws_lambda_events::dynamodb::Event = serde_json::from_value(events.lock().unwrap()[0].clone()).unwrap();
    assert_eq!(event.records[0].event_name, "INSERT");
    assert!(
        event.records[0]
            .event_source_arn
            .as_deref()
            .unwrap()
            .contains("/stream/")
    );
}

#[tokio::test]
async fn a_partial_failure_retries_from_the_failed_record_only() {
    let t = TestStack::new(None).await;
    put(&t, &["p1", "PARTIAL", "p3"]).await;
    let (invoker, calls, _) = function();
    let seen = calls.clone();
    run(&t, invoker, move || seen.lock().unwrap().len() >= 2).await;
    // Let the give-up land.
    let failed = failed_batches(&t).await;
    let batches = calls.lock().unwrap().clone();
    assert_eq!(
        batches,
        vec![vec!["p1", "PARTIAL", "p3"], vec!["PARTIAL", "p3"]],
        "p1 is done after the first call; the retry starts at the failed record"
    );
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["DDBStreamBatchInfo"]["batchSize"], 2);
    assert!(failed[0]["responseContext"].get("functionError").is_none());
}

#[tokio::test]
async fn latest_delivers_every_change_after_the_start_and_none_before() {
    // GIVEN changes made before the mapping starts at LATEST (the template's StartingPosition)
    let t = TestStack::new(None).await;
    put(&t, &["before1", "before2", "before3"]).await;
    let [source] = t.stack.stream_sources.as_slice() else {
        panic!("one stream source: {:?}", t.stack.stream_sources)
    };
    assert!(!source.trim_horizon, "the template's notify mapping starts at LATEST");
    let (invoker, calls, _) = function();
    let stop = start(&t, source, invoker);
    // WHEN changes keep coming after it started (when it has found the shard's end is its own
    // business: a change is written every 200 ms until one arrives, and 5 more after that)
    let delivered = || calls.lock().unwrap().concat();
    let started = Instant::now();
    let mut written = Vec::new();
    let mut first_seen_at = None;
    while first_seen_at.is_none_or(|n| written.len() < n + 5) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no change reached the function within 30 s; delivered: {:?}",
            delivered()
        );
        let pk = format!("after{}", written.len());
        put(&t, &[&pk]).await;
        written.push(pk);
        if first_seen_at.is_none() && !delivered().is_empty() {
            first_seen_at = Some(written.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while !delivered().contains(written.last().unwrap()) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.await;
    // THEN nothing from before the start, and from the first change delivered on, every one in order
    let got = delivered();
    assert!(got.iter().all(|k| k.starts_with("after")), "{got:?}");
    let first = written.iter().position(|w| w == &got[0]).unwrap();
    assert_eq!(got, written[first..].to_vec(), "no gap and no repeat after the first");
}
