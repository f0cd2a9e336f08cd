//! Seed 001's kinds end to end through the running stack: HTTP -> api -> SQS -> worker -> SES,
//! SNS or S3 (LocalStack), each job ending with its result.

use std::time::Duration;

use e2e::{post_json, stack_var, wait_finished};
use serde_json::json;

#[tokio::test]
async fn one_job_of_each_new_kind_ends_completed_with_its_result() {
    let to = format!("e2e-{}@example.com", uuid::Uuid::new_v4().simple());
    // Seed 001's own spelling (`type`).
    let (status, mail) = post_json(
        "/jobs",
        &json!({"type": "email", "priority": 5, "payload": {"to": to, "subject": "Welcome!", "body": "Thanks for signing up."}}),
    )
    .await;
    assert_eq!(status, 201, "{mail}");
    let (status, note) = post_json(
        "/jobs",
        &json!({"kind": "notification", "payload": {"user_id": "e2e", "channel": "email", "message": "hello"}}),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let today = {
        let d = time::OffsetDateTime::now_utc().date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let (status, report) = post_json(
        "/jobs",
        &json!({"kind": "report", "payload": {"report_type": "e2e", "format": "json", "date_range": {"start": today, "end": today}}}),
    )
    .await;
    assert_eq!(status, 201, "{report}");

    let mail = wait_finished(mail["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(mail["status"], "completed", "{mail}");
    assert_eq!(mail["result"]["status"], "sent");
    let from = stack_var("EMAIL_FROM");
    let sent = local_bridge::testing::sent_emails(&from).await;
    let ours: Vec<_> = sent
        .iter()
        .filter(|m| m.destination["ToAddresses"] == json!([to]))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].id, mail["result"]["message_id"].as_str().unwrap());

    let note = wait_finished(note["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(note["status"], "completed", "{note}");
    assert_eq!(note["result"]["topic"], stack_var("NOTIFICATIONS_TOPIC_ARN"));

    let report = wait_finished(report["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(report["status"], "completed", "{report}");
    let url = report["result"]["download_url"].as_str().unwrap();
    let document: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(document["report_type"], "e2e");
    assert_eq!(document["jobs"], report["result"]["jobs"]);
}
