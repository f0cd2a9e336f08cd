//! Lambda's event source mapping API as the bridge serves it, called with the SDK the api uses,
//! and a disabled mapping honoured as Lambda does: nothing is received, messages wait in the
//! queue; enabled again, they are delivered. Against the real emulators (SQS).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_bridge::event_source_mappings::Mappings;
use local_bridge::invoke::{InProcess, Invoker};
use local_bridge::sqs_source::SqsPoller;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};

async fn lambda_api(mappings: Arc<Mappings>) -> (aws_sdk_lambda::Client, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(mappings.serve(listener, stopped));
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(url)
        .build();
    (aws_sdk_lambda::Client::from_conf(config), stop)
}

async fn visible(t: &TestStack, queue_logical_id: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = t
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(t.stack.reference(queue_logical_id).unwrap())
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    out.attributes
        .unwrap_or_default()
        .get(&A::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_sdk_lists_and_updates_the_stacks_mappings_and_a_disabled_one_receives_nothing_until_enabled() {
    let t = TestStack::new(Some(30)).await;
    let mappings = Mappings::new(&t.stack.name, &t.stack.sqs_sources, None);
    let (lambda, _stop) = lambda_api(mappings.clone()).await;

    // Every SQS event source of the template is a mapping; the normal queue's is the worker's.
    let all = lambda.list_event_source_mappings().send().await.unwrap();
    assert_eq!(all.event_source_mappings().len(), t.stack.sqs_sources.len());
    let normal = t.stack.reference("NormalQueue").unwrap().to_string();
    let source = t
        .stack
        .sqs_sources
        .iter()
        .find(|s| s.queue_url == normal)
        .unwrap()
        .clone();
    let listed = lambda
        .list_event_source_mappings()
        .event_source_arn(&source.queue_arn)
        .function_name("worker")
        .send()
        .await
        .unwrap();
    let [m] = listed.event_source_mappings() else {
        panic!("one mapping: {listed:?}")
    };
    assert_eq!(m.state(), Some("Enabled"));
    assert_eq!(m.batch_size(), Some(10));
    assert!(m.function_arn().unwrap().ends_with(":function:worker"));
    assert!(m.last_modified().is_some());
    let uuid = m.uuid().unwrap().to_string();
    let missing = lambda.get_event_source_mapping().uuid("nope").send().await.unwrap_err();
    assert!(missing.into_service_error().is_resource_not_found_exception());

    // A worker that records what it gets.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let invoker: Arc<dyn Invoker> = Arc::new(InProcess(move |_name: String, event: Value| {
        for r in event["Records"].as_array().unwrap() {
            seen.lock().unwrap().push(r["body"].as_str().unwrap().to_string());
        }
        Box::pin(async move { Ok(json!({"batchItemFailures": []})) }) as _
    }));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = SqsPoller {
        sqs: t.clients.sqs.clone(),
        source: source.clone(),
        invoker,
        wait_secs: 1,
    };
    let running = tokio::spawn(poller.run_while_enabled(stopped, Some(mappings.of(&source).unwrap().enabled())));

    // Disabled: a message sent now waits in the queue.
    let out = lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(false)
        .send()
        .await
        .unwrap();
    assert_eq!(out.state(), Some("Disabling"));
    let got_state = lambda.get_event_source_mapping().uuid(&uuid).send().await.unwrap();
    assert_eq!(got_state.state(), Some("Disabled"));
    // A long poll in flight when it was disabled gives back what it receives; let it end (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    t.clients
        .sqs
        .send_message()
        .queue_url(&normal)
        .message_body("waits")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(got.lock().unwrap().is_empty(), "delivered while disabled: {got:?}");
    assert_eq!(visible(&t, "NormalQueue").await, 1, "the message waits in the queue");

    // Enabled again: delivered within seconds, and gone from the queue.
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(true)
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not delivered 15 s after enabling"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(*got.lock().unwrap(), ["waits"]);
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(visible(&t, "NormalQueue").await, 0);
}
