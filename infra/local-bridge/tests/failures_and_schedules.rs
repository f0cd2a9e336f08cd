//! What happens when a function fails, overruns or never answers, asynchronous invocations'
//! destinations, and `Schedule` events: against the real emulators, with in-process functions.
//!
//! The template is the project's with what the lead adds for the sweeper (a failed-events queue
//! as the ingest function's OnFailure destination, a `SweeperFunction` with a `Schedule` event and
//! an SQS event on a dead-letter queue), so these tests do not wait for template.yaml to have them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_bridge::gateway::Gateway;
use local_bridge::invoke::{Bounded, InProcess, InvokeError, Invoker};
use local_bridge::s3_source::S3Relay;
use local_bridge::schedule::Scheduler;
use local_bridge::sqs_source::SqsPoller;
use local_bridge::template::{Resource, Template};
use local_bridge::testing::{TestStack, template_path};
use serde_json::{Value, json};

type Calls = Arc<Mutex<Vec<Value>>>;

/// The project's template plus the sweeper's resources and the ingest function's EventInvokeConfig.
fn template_with_sweeper() -> Template {
    let mut t = Template::load(&template_path()).expect("template.yaml");
    t.resources.entry("IngestFailedEventsQueue".into()).or_insert(Resource {
        kind: "AWS::SQS::Queue".into(),
        properties: json!({}),
        metadata: Value::Null,
        condition: None,
    });
    let ingest = t.resources.get_mut("IngestFunction").expect("IngestFunction");
    ingest.properties["EventInvokeConfig"] = json!({
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestFailedEventsQueue", "Arn"]}},
        },
    });
    t.resources.entry("SweeperFunction".into()).or_insert(Resource {
        kind: "AWS::Serverless::Function".into(),
        properties: json!({
            "Timeout": 30,
            "Events": {
                "Sweep": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}},
                "HighDeadLetters": {
                    "Type": "SQS",
                    "Properties": {"Queue": {"Fn::GetAtt": ["HighDeadLetterQueue", "Arn"]}, "BatchSize": 10},
                },
            },
        }),
        metadata: json!({"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "sweeper"}}),
        condition: None,
    });
    t
}

/// A function that records its events and answers after `delay` with `respond(event)`.
fn function(delay: Duration, respond: fn(&Value) -> Result<Value, InvokeError>) -> (Arc<dyn Invoker>, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let invoker = InProcess(move |_name: String, event: Value| {
        seen.lock().unwrap().push(event.clone());
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            respond(&event)
        }) as _
    });
    (Arc::new(invoker), calls)
}

/// `inner` bounded by `timeout` for every function, without grace.
fn bounded(inner: Arc<dyn Invoker>, t: &TestStack, timeout: Duration) -> Arc<dyn Invoker> {
    let timeouts: HashMap<String, Duration> = t.stack.timeouts().into_keys().map(|k| (k, timeout)).collect();
    Arc::new(Bounded::new(inner, timeouts, Duration::ZERO))
}

async fn receive_all(t: &TestStack, queue_logical_id: &str) -> Vec<Value> {
    let out = t
        .clients
        .sqs
        .receive_message()
        .queue_url(t.stack.reference(queue_logical_id).unwrap())
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    out.messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).unwrap())
        .collect()
}

#[tokio::test]
async fn schedules_and_event_invoke_config_provision() {
    let t = TestStack::from_template(&template_with_sweeper(), None).await;
    let [sweep] = t.stack.schedules.as_slice() else {
        panic!("one schedule: {:?}", t.stack.schedules);
    };
    assert_eq!(sweep.function, "sweeper");
    assert_eq!(sweep.period, Duration::from_secs(60));
    assert!(
        sweep
            .rule_arn
            .starts_with("arn:aws:events:us-east-1:000000000000:rule/")
    );
    assert!(t.stack.sqs_sources.iter().any(|s| s.function == "sweeper"));
    for route in &t.stack.s3_routes {
        assert_eq!(route.async_config.attempts(), 3);
        let dest = route.async_config.on_failure.as_ref().expect("OnFailure destination");
        assert_eq!(dest.queue_url, t.stack.reference("IngestFailedEventsQueue").unwrap());
    }
    assert_eq!(t.stack.timeouts()["ingest"], Duration::from_secs(300));
    assert_eq!(t.stack.timeouts()["api"], Duration::from_secs(29));
}

#[tokio::test]
async fn an_s3_event_whose_function_overruns_is_tried_3_times_then_recorded_in_the_on_failure_queue() {
    let t = TestStack::from_template(&template_with_sweeper(), None).await;
    // Overruns its (test) Timeout of 300 ms every time.
    let (slow, calls) = function(Duration::from_secs(2), |_| Ok(Value::Null));
    let bucket = t.stack.reference("UploadsBucket").unwrap().to_string();
    t.clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key("uploads/never ends.jsonl")
        .body(b"{}\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let relay = S3Relay {
        sqs: t.clients.sqs.clone(),
        queue_url: t.stack.s3_events_queue_url.clone().unwrap(),
        routes: t.stack.s3_routes.clone(),
        invoker: bounded(slow, &t, Duration::from_millis(300)),
        wait_secs: 1,
        retry_delay: Duration::ZERO,
    };
    let mut records = Vec::new();
    for _ in 0..10 {
        relay.poll_once().await.unwrap();
        records.extend(receive_all(&t, "IngestFailedEventsQueue").await);
        if !records.is_empty() {
            break;
        }
    }
    assert_eq!(calls.lock().unwrap().len(), 3, "1 attempt + MaximumRetryAttempts 2");
    let [record] = records.as_slice() else {
        panic!("one invocation record: {records:?}");
    };
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:ingest:$LATEST"
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responseContext"]["statusCode"], 200);
    assert_eq!(record["responsePayload"]["errorType"], "Sandbox.Timedout");
    assert_eq!(
        record["requestPayload"],
        calls.lock().unwrap()[0],
        "the event as the function got it"
    );
    let key = record["requestPayload"]["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .unwrap();
    assert!(key.starts_with("uploads/never"), "{key}");
    // The notification is gone: nothing more reaches the function.
    relay.poll_once().await.unwrap();
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_sqs_batch_whose_function_overruns_stays_on_the_queue() {
    let t = TestStack::new(Some(1)).await;
    let (slow, calls) = function(Duration::from_secs(2), |_| Ok(json!({"batchItemFailures": []})));
    t.clients
        .sqs
        .send_message()
        .queue_url(t.stack.reference("NormalQueue").unwrap())
        .message_body("slow")
        .send()
        .await
        .unwrap();
    let url = t.stack.reference("NormalQueue").unwrap();
    let source = t.stack.sqs_sources.iter().find(|s| s.queue_url == url).unwrap().clone();
    let poller = SqsPoller {
        sqs: t.clients.sqs.clone(),
        source,
        invoker: bounded(slow, &t, Duration::from_millis(300)),
        wait_secs: 1,
    };
    let started = Instant::now();
    let mut o = poller.poll_once().await.unwrap();
    while o.received == 0 {
        o = poller.poll_once().await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the Timeout, not the function"
    );
    assert_eq!((o.delivered, o.deleted, o.left_for_retry), (1, 0, 1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = poller.poll_once().await.unwrap();
    assert_eq!(again.delivered, 1, "redelivered after the visibility timeout");
    assert_eq!(calls.lock().unwrap().len(), 2);
}

async fn gateway(invoker: Arc<dyn Invoker>, t: &TestStack, integration_timeout: Duration) -> String {
    let gw =
        Arc::new(Gateway::new(t.stack.http_api.clone(), invoker, "test").with_integration_timeout(integration_timeout));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(stop); // serves until the test ends
    tokio::spawn(gw.serve(listener, stopped));
    format!("http://{addr}")
}

#[tokio::test]
async fn the_http_api_answers_503_when_the_integration_times_out_and_500_when_the_function_fails() {
    let t = TestStack::new(None).await;
    let http = reqwest::Client::new();

    // No answer within the integration timeout: 503, as HTTP APIs answer after 30 s.
    let (hanging, _) = function(Duration::from_secs(3600), |_| Ok(Value::Null));
    let url = gateway(hanging, &t, Duration::from_millis(500)).await;
    let started = Instant::now();
    let resp = http.get(format!("{url}/health")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "Service Unavailable"})
    );

    // The function's own Timeout comes first (or its process died): a function error, 500.
    let (slow, _) = function(Duration::from_secs(3600), |_| Ok(Value::Null));
    let url = gateway(
        bounded(slow, &t, Duration::from_millis(300)),
        &t,
        Duration::from_secs(5),
    )
    .await;
    let resp = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "Internal Server Error"})
    );

    let (failing, _) = function(Duration::ZERO, |_| {
        Err(InvokeError::Function {
            error_type: "Panic".into(),
            message: "boom".into(),
        })
    });
    let url = gateway(failing, &t, Duration::from_secs(5)).await;
    let resp = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
}

fn scheduler(t: &TestStack, invoker: Arc<dyn Invoker>, period: Duration) -> Arc<Scheduler> {
    Arc::new(Scheduler {
        schedule: t.stack.schedules[0].clone(),
        invoker,
        sqs: t.clients.sqs.clone(),
        period,
        retry_delay: Duration::ZERO,
    })
}

#[tokio::test]
async fn a_schedule_fires_the_scheduled_event_at_its_local_period() {
    let t = TestStack::from_template(&template_with_sweeper(), None).await;
    let (sweeper, calls) = function(Duration::ZERO, |_| Ok(Value::Null));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(scheduler(&t, sweeper, Duration::from_millis(300)).run(stopped));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    stop.send(true).unwrap();
    run.await.unwrap();
    let calls = calls.lock().unwrap();
    assert!(
        (2..=4).contains(&calls.len()),
        "at 300, 600 and 900 ms: {}",
        calls.len()
    );
    let e = &calls[0];
    assert_eq!(e["detail-type"], "Scheduled Event");
    assert_eq!(e["source"], "aws.events");
    assert_eq!(e["resources"], json!([t.stack.schedules[0].rule_arn]));
    assert_eq!(e["detail"], json!({}));
    assert_ne!(calls[0]["id"], calls[1]["id"], "one event per tick");
}

#[tokio::test]
async fn a_tick_is_skipped_while_the_previous_run_is_still_going() {
    let t = TestStack::from_template(&template_with_sweeper(), None).await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (r, m, c) = (running.clone(), most.clone(), calls.clone());
    let slow = InProcess(move |_name: String, _event: Value| {
        let (r, m, c) = (r.clone(), m.clone(), c.clone());
        Box::pin(async move {
            c.fetch_add(1, Ordering::SeqCst);
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(700)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(Value::Null)
        }) as _
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(scheduler(&t, Arc::new(slow), Duration::from_millis(200)).run(stopped));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    stop.send(true).unwrap();
    run.await.unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two runs at once");
    // Runs start at 200 ms and 1000 ms (the ticks at 400-800 ms are skipped), 1600 ms maybe.
    let n = calls.load(Ordering::SeqCst);
    assert!((2..=3).contains(&n), "{n} runs in 1.7 s at 700 ms each");
}

#[tokio::test]
async fn a_failing_scheduled_run_is_retried_then_recorded_in_the_on_failure_destination() {
    let mut template = template_with_sweeper();
    template.resources.get_mut("SweeperFunction").unwrap().properties["EventInvokeConfig"] = json!({
        "MaximumRetryAttempts": 1,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestFailedEventsQueue", "Arn"]}},
        },
    });
    let t = TestStack::from_template(&template, None).await;
    let (failing, calls) = function(Duration::ZERO, |_| {
        Err(InvokeError::Function {
            error_type: "SweepFailed".into(),
            message: "table gone".into(),
        })
    });
    let err = scheduler(&t, failing, Duration::from_secs(60))
        .fire()
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Function { .. }));
    assert_eq!(calls.lock().unwrap().len(), 2, "1 attempt + MaximumRetryAttempts 1");
    let records = receive_all(&t, "IngestFailedEventsQueue").await;
    let [record] = records.as_slice() else {
        panic!("one invocation record: {records:?}");
    };
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(record["requestPayload"]["detail-type"], "Scheduled Event");
    assert_eq!(
        record["responsePayload"],
        json!({"errorType": "SweepFailed", "errorMessage": "table gone"})
    );
}
