//! The template's alarms in LocalStack's CloudWatch, and trace headers through the SQS event
//! source, against the real emulators.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use local_bridge::invoke::{InProcess, Invoker};
use local_bridge::sqs_source::SqsPoller;
use local_bridge::testing::TestStack;
use serde_json::{Value, json};

/// Locally every alarm evaluates every this many seconds (`LOCAL_ALARM_PERIOD_SECONDS`).
const PERIOD: u32 = 10;

const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

async fn alarm_state(t: &TestStack, logical_id: &str) -> (StateValue, String) {
    let name = t.stack.reference(logical_id).unwrap();
    let out = t
        .clients
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap();
    let alarm = out.metric_alarms().first().unwrap_or_else(|| panic!("no alarm {name}"));
    (
        alarm.state_value().cloned().unwrap(),
        alarm.state_reason().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_message_in_a_dead_letter_queue_puts_its_alarm_into_alarm() {
    let t = TestStack::with_alarms(PERIOD).await;
    // Every alarm of the template exists, named after the stack, notifying the stack's topic.
    let alarms = t
        .clients
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{}-", t.stack.name))
        .send()
        .await
        .unwrap();
    let expected = t
        .stack
        .resources
        .values()
        .filter(|p| p.kind == "AWS::CloudWatch::Alarm")
        .count();
    assert!(expected >= 20, "{expected} alarms in the template");
    assert_eq!(alarms.metric_alarms().len(), expected);
    let topic = t.stack.reference("AlarmTopic").unwrap();
    for alarm in alarms.metric_alarms() {
        assert_eq!(alarm.alarm_actions(), [topic.to_string()], "{:?}", alarm.alarm_name());
        assert_eq!(alarm.ok_actions(), [topic.to_string()]);
        assert!(alarm.period().is_none() || alarm.period() == Some(PERIOD as i32));
    }
    let dashboard = t
        .clients
        .cloudwatch
        .get_dashboard()
        .dashboard_name(t.stack.reference("OpsDashboard").unwrap())
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(dashboard.dashboard_body().unwrap()).unwrap();
    assert!(
        body.to_string()
            .contains(&format!("{}-HighDeadLetterQueue", t.stack.name)),
        "the dashboard names the local queues"
    );

    // GIVEN the high dead-letter queue's alarm, evaluated (not in ALARM: the queue is empty)
    let dlq = t.stack.reference("HighDeadLetterQueue").unwrap().to_string();
    // WHEN a message lands in the queue
    t.clients
        .sqs
        .send_message()
        .queue_url(&dlq)
        .message_body("{\"job_id\":\"dead\"}")
        .send()
        .await
        .unwrap();
    let sent = Instant::now();
    // THEN its alarm goes into ALARM once LocalStack has published the queue's depth (every
    // SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL seconds) and evaluated the alarm (every period):
    // at most one publication, two evaluations and some slack.
    let interval: u64 = std::env::var("SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let bound = Duration::from_secs(interval + 2 * u64::from(PERIOD) + 15);
    loop {
        let (state, reason) = alarm_state(&t, "HighDeadLetterQueueAlarm").await;
        if state == StateValue::Alarm {
            eprintln!("ALARM after {:?}: {reason}", sent.elapsed());
            break;
        }
        assert!(
            sent.elapsed() < bound,
            "still {state:?} after {:?} (bound {bound:?}): {reason}",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The other dead-letter queues stay quiet.
    let (normal, _) = alarm_state(&t, "NormalDeadLetterQueueAlarm").await;
    assert_ne!(normal, StateValue::Alarm);
}

type Calls = Arc<Mutex<Vec<Value>>>;

fn failing_function() -> (Arc<dyn Invoker>, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let invoker = InProcess(move |_name: String, event: Value| {
        seen.lock().unwrap().push(event.clone());
        let failures: Vec<Value> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        Box::pin(async move { Ok(json!({ "batchItemFailures": failures })) }) as _
    });
    (Arc::new(invoker), calls)
}

#[tokio::test]
async fn the_sqs_event_source_hands_the_aws_trace_header_over_and_keeps_it_on_redrive() {
    let t = TestStack::new(Some(1)).await;
    let queue = t.stack.reference("NormalQueue").unwrap().to_string();
    let trace = MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(TRACE)
        .build()
        .unwrap();
    t.clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body("traced")
        .message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, trace)
        .send()
        .await
        .unwrap();
    let (invoker, calls) = failing_function();
    let source = t
        .stack
        .sqs_sources
        .iter()
        .find(|s| s.queue_url == queue)
        .unwrap()
        .clone();
    let poller = SqsPoller {
        sqs: t.clients.sqs.clone(),
        source,
        invoker,
        wait_secs: 1,
    };
    // Dead-lettered after 3 deliveries (by the bridge, or by LocalStack's own redrive policy on
    // the 4th receive: either way SQS's redrive, which must keep the trace).
    for _ in 0..20 {
        let moved = poller.poll_once().await.unwrap().moved_to_dead_letter_queue;
        if moved > 0 || calls.lock().unwrap().len() >= 3 && queue_empty(&t, &queue).await {
            break;
        }
    }
    let traces: Vec<Value> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["Records"][0]["attributes"]["AWSTraceHeader"].clone())
        .collect();
    assert_eq!(traces, vec![json!(TRACE); 3], "every delivery carries the trace");
    let dead = t
        .clients
        .sqs
        .receive_message()
        .queue_url(t.stack.reference("NormalDeadLetterQueue").unwrap())
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let m = &dead.messages()[0];
    assert_eq!(m.body(), Some("traced"));
    assert_eq!(
        m.attributes()
            .unwrap()
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader)
            .map(String::as_str),
        Some(TRACE),
        "the redrive keeps the trace"
    );
}

async fn queue_empty(t: &TestStack, url: &str) -> bool {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = t
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    out.attributes().map(|a| a.values().all(|v| v == "0")).unwrap_or(true)
}
