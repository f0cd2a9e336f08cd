//! The event sources and the HTTP API against the real emulators, with in-process functions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_bridge::gateway::Gateway;
use local_bridge::invoke::{InProcess, InvokeError, Invoker};
use local_bridge::s3_source::S3Relay;
use local_bridge::sqs_source::SqsPoller;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};

type Calls = Arc<Mutex<Vec<Value>>>;

/// A function that records its events and answers with `respond(event)`.
fn function(respond: fn(&Value) -> Result<Value, InvokeError>) -> (Arc<dyn Invoker>, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let invoker = InProcess(move |_name: String, event: Value| {
        seen.lock().unwrap().push(event.clone());
        let out = respond(&event);
        Box::pin(async move { out }) as _
    });
    (Arc::new(invoker), calls)
}

fn ids(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messageId"].as_str().unwrap().to_string())
        .collect()
}

fn poller(t: &TestStack, queue_logical_id: &str, invoker: Arc<dyn Invoker>) -> SqsPoller {
    let url = t.stack.reference(queue_logical_id).unwrap();
    let source = t
        .stack
        .sqs_sources
        .iter()
        .find(|s| s.queue_url == url)
        .expect("an event source on the queue")
        .clone();
    SqsPoller {
        sqs: t.clients.sqs.clone(),
        source,
        invoker,
        wait_secs: 1,
    }
}

async fn send(t: &TestStack, queue_logical_id: &str, body: &str) -> String {
    let out = t
        .clients
        .sqs
        .send_message()
        .queue_url(t.stack.reference(queue_logical_id).unwrap())
        .message_body(body)
        .send()
        .await
        .unwrap();
    out.message_id.unwrap()
}

async fn depth(t: &TestStack, queue_logical_id: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = t
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(t.stack.reference(queue_logical_id).unwrap())
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn the_template_wires_both_queues_to_the_worker_with_partial_batch_failures() {
    let t = TestStack::new(None).await;
    let worker: Vec<_> = t.stack.sqs_sources.iter().filter(|s| s.function == "worker").collect();
    assert_eq!(worker.len(), 2);
    let ingest: Vec<_> = t.stack.sqs_sources.iter().filter(|s| s.function == "ingest").collect();
    assert_eq!(
        ingest.len(),
        2,
        "the ingest continuation queue and its failed S3 events"
    );
    assert!(ingest.iter().all(|s| s.batch_size == 1));
    // (Sources on the dead-letter queues, for the sweeper, have no redrive policy of their own.)
    for s in worker.iter().chain(&ingest) {
        assert!(s.report_batch_item_failures);
        assert_eq!(s.max_receive_count, Some(3));
        assert!(s.dead_letter_queue_url.is_some());
    }
    assert!(t.stack.s3_routes.iter().all(|r| r.function == "ingest"));
    assert!(
        t.stack
            .http_api
            .routes
            .iter()
            .any(|r| r.path == "/{proxy+}" && r.function == "api")
    );
    assert_eq!(t.var("JOBS_TABLE"), t.stack.reference("JobsTable").unwrap());
}

#[tokio::test]
async fn a_succeeded_message_is_deleted() {
    let t = TestStack::new(Some(1)).await;
    let (invoker, calls) = function(|_| Ok(json!({"batchItemFailures": []})));
    send(&t, "NormalQueue", "ok").await;
    let outcome = poller(&t, "NormalQueue", invoker).poll_once().await.unwrap();
    assert_eq!((outcome.delivered, outcome.deleted), (1, 1));
    assert_eq!(calls.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(depth(&t, "NormalQueue").await, 0);
}

#[tokio::test]
async fn a_reported_failure_is_retried_and_lands_in_the_dead_letter_queue_after_3_receives() {
    let t = TestStack::new(Some(1)).await;
    let (invoker, calls) = function(|event| {
        let failures: Vec<Value> = ids(event).into_iter().map(|id| json!({"itemIdentifier": id})).collect();
        Ok(json!({ "batchItemFailures": failures }))
    });
    let id = send(&t, "HighQueue", "always fails").await;
    let p = poller(&t, "HighQueue", invoker);
    let mut moved = 0;
    for _ in 0..20 {
        let o = p.poll_once().await.unwrap();
        moved += o.moved_to_dead_letter_queue;
        if moved > 0 || depth(&t, "HighQueue").await == 0 {
            break;
        }
    }
    let deliveries: Vec<Vec<String>> = calls.lock().unwrap().iter().map(ids).collect();
    assert_eq!(deliveries, vec![vec![id.clone()]; 3], "delivered exactly 3 times");
    let receive_counts: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            e["Records"][0]["attributes"]["ApproximateReceiveCount"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(receive_counts, ["1", "2", "3"]);
    assert_eq!(depth(&t, "HighQueue").await, 0);
    let dlq = t
        .clients
        .sqs
        .receive_message()
        .queue_url(t.stack.reference("HighDeadLetterQueue").unwrap())
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = dlq
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| m.body().unwrap_or_default().to_string())
        .collect();
    assert_eq!(bodies, ["always fails"]);
}

#[tokio::test]
async fn only_the_reported_records_stay_on_the_queue() {
    let t = TestStack::new(Some(1)).await;
    let (invoker, calls) = function(|event| {
        let failed: Vec<Value> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["body"] == "b")
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        Ok(json!({ "batchItemFailures": failed }))
    });
    for body in ["a", "b", "c"] {
        send(&t, "NormalQueue", body).await;
    }
    let p = poller(&t, "NormalQueue", invoker);
    let mut delivered = 0;
    while delivered < 3 {
        delivered += p.poll_once().await.unwrap().delivered;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = p.poll_once().await.unwrap();
    assert_eq!(again.delivered, 1);
    let last = calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["Records"][0]["body"], "b");
}

#[tokio::test]
async fn a_function_error_or_an_invalid_response_keeps_the_whole_batch() {
    let t = TestStack::new(Some(1)).await;
    send(&t, "NormalQueue", "x").await;
    let (crashing, _) = function(|_| {
        Err(InvokeError::Function {
            error_type: "Panic".into(),
            message: "boom".into(),
        })
    });
    let o = poller(&t, "NormalQueue", crashing).poll_once().await.unwrap();
    assert_eq!((o.delivered, o.deleted, o.left_for_retry), (1, 0, 1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (empty_id, _) = function(|_| Ok(json!({"batchItemFailures": [{"itemIdentifier": ""}]})));
    let o = poller(&t, "NormalQueue", empty_id).poll_once().await.unwrap();
    assert_eq!((o.delivered, o.deleted, o.left_for_retry), (1, 0, 1));
}

/// A function that cannot be reached at all (its runtime restarting) never saw the batch: it is
/// back within seconds, not after the queue's visibility timeout (360 s in the template).
#[tokio::test]
async fn a_batch_the_function_never_received_comes_back_within_seconds() {
    let t = TestStack::new(None).await;
    let id = send(&t, "NormalQueue", "x").await;
    let (unreachable, _) = function(|_| Err(InvokeError::Transport("connection refused".into())));
    assert!(poller(&t, "NormalQueue", unreachable).poll_once().await.is_err());
    let (ok, calls) = function(|_| Ok(json!({})));
    let started = std::time::Instant::now();
    let poller = poller(&t, "NormalQueue", ok);
    while calls.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the batch did not come back within 30 s"
        );
        poller.poll_once().await.unwrap();
    }
    assert_eq!(ids(&calls.lock().unwrap()[0]), vec![id]);
}

#[tokio::test]
async fn a_jsonl_dropped_in_the_bucket_reaches_the_ingest_function_once_and_other_files_do_not() {
    let t = TestStack::new(None).await;
    let (invoker, calls) = function(|_| Ok(Value::Null));
    let bucket = t.stack.reference("UploadsBucket").unwrap().to_string();
    for key in ["uploads/my file.jsonl", "uploads/notes.txt"] {
        t.clients
            .s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(b"{}\n".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let relay = S3Relay {
        sqs: t.clients.sqs.clone(),
        queue_url: t.stack.s3_events_queue_url.clone().unwrap(),
        routes: t.stack.s3_routes.clone(),
        invoker,
        wait_secs: 1,
        retry_delay: Duration::from_secs(1),
    };
    for _ in 0..5 {
        relay.poll_once().await.unwrap();
        if !calls.lock().unwrap().is_empty() {
            break;
        }
    }
    relay.poll_once().await.unwrap();
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let record = &calls[0]["Records"][0];
    assert_eq!(record["s3"]["bucket"]["name"], bucket.as_str());
    let key = record["s3"]["object"]["key"].as_str().unwrap();
    assert!(
        key == "uploads/my+file.jsonl" || key == "uploads/my%20file.jsonl",
        "{key}"
    );
    assert!(record["eventName"].as_str().unwrap().starts_with("ObjectCreated:"));
}

#[tokio::test]
async fn the_http_api_sends_payload_v2_events_and_serves_the_response() {
    // No authorization here (tests/gateway_auth.rs has it), CORS for one origin.
    let mut parameters = local_bridge::testing::test_parameters();
    parameters.insert("AuthMode".into(), "off".into());
    parameters.insert("CorsAllowOrigins".into(), "http://example.test".into());
    let template = local_bridge::template::Template::load(&local_bridge::testing::template_path()).unwrap();
    let t = TestStack::with_parameters(&template, None, parameters).await;
    let (invoker, calls) = function(|event| {
        Ok(json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-route": event["routeKey"]},
            "body": json!({"query": event["queryStringParameters"], "body": event["body"]}).to_string(),
        }))
    });
    let gw = Arc::new(Gateway::new(t.stack.http_api.clone(), invoker, "test"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(gw.serve(listener, stopped));

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{addr}/jobs?status=failed&status=queued"))
        .body("{\"a\":1}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-route"], "ANY /{proxy+}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["query"]["status"], "failed,queued");
    assert_eq!(body["body"], "{\"a\":1}");
    let event = calls.lock().unwrap()[0].clone();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawQueryString"], "status=failed&status=queued");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["pathParameters"]["proxy"], "jobs");

    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("http://{addr}/jobs"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://example.test"
    );
    assert_eq!(calls.lock().unwrap().len(), 1, "preflight is answered by the gateway");
}
