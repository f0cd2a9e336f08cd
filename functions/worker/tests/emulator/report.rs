//! Report jobs against the emulators: the period's jobs read through the status listings
//! (DynamoDB), CSV and JSON written to S3 under reports/, and the presigned link downloads them.

use serde_json::{Value, json};
use shared::job::JobStatus;
use time::Duration;

use super::harness;

#[tokio::test]
async fn a_report_writes_both_files_and_its_presigned_link_downloads_them() {
    let h = harness(30).await;
    let from = h.t.var("EMAIL_FROM").to_string();
    let worker = h.worker(h.processors(&from).await, Duration::seconds(60));
    for n in 0..3 {
        h.submit_kind("email", json!({"to": format!("r{n}@example.com")}), 5)
            .await;
    }
    h.poller("HighQueue", worker.clone()).poll_once().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let day = format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day());
    let report = h
        .submit_kind(
            "report",
            json!({"report_type": "daily", "date_range": {"start": day, "end": day}}),
            5,
        )
        .await;
    h.poller("HighQueue", worker).poll_once().await.unwrap();
    let done = h.job(report.id).await;
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let result = done.result.unwrap();
    assert_eq!(
        (result["jobs"].as_u64(), result["rows"].as_u64()),
        (Some(3), Some(1)),
        "{result}"
    );

    // Both objects exist at their keys.
    let bucket = h.t.var("UPLOADS_BUCKET");
    let json_key = result["files"]["json"].as_str().unwrap();
    let object =
        h.t.clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(json_key)
            .send()
            .await
            .unwrap();
    assert_eq!(object.content_type(), Some("application/json"));
    let document: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(document["rows"][0]["status"], "completed");
    assert_eq!(document["rows"][0]["kind"], "email");
    assert_eq!(document["rows"][0]["count"], 3);

    // The link (to the CSV, the default format) downloads it without credentials.
    let url = result["download_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("completed,email,3,"), "{csv}");
    // (LocalStack does not check presigned signatures by default: a tampered link is not refused
    // here, so this test cannot show that it would be on AWS.)
}
