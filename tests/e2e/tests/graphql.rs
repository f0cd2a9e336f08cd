//! GraphQL through the running stack: the gateway's JWT authorizer in front of `POST /graphql`,
//! a job created by `createJob` run by the worker from SQS, read back by `job(id)` as completed.

use std::time::{Duration, Instant};

use e2e::{api_url, http_as, s3, stack_var};
use serde_json::{Value, json};

async fn graphql(client: &reqwest::Client, query: &str, variables: Value) -> (u16, Value) {
    let resp = client
        .post(format!("{}/graphql", api_url()))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const JOB: &str = "query($id: ID!) { job(id: $id) { id status kind attempts result timeline { status } } }";

#[tokio::test]
async fn a_job_created_through_graphql_is_run_by_the_worker_and_read_back_completed() {
    let owner = format!("gql-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bucket = stack_var("UPLOADS_BUCKET");
    let key = format!("uploads/{owner}/{}.bin", uuid::Uuid::new_v4());
    s3().await
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(vec![7u8; 2000].into())
        .send()
        .await
        .unwrap();

    // No token: API Gateway's own 401, before the function (and GraphQL) runs.
    let anonymous = reqwest::Client::new();
    let (status, body) = graphql(&anonymous, "{ stats { total } }", json!({})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Unauthorized")),
        "{body}"
    );

    let client = http_as(&owner, false);
    let create = "mutation($input: NewJobInput!) { createJob(input: $input) { created job { id status kind owner } } }";
    let input = json!({"kind": "archive", "priority": 4, "payload": {"asset_id": owner, "source": format!("s3://{bucket}/{key}")}});
    let (status, answer) = graphql(&client, create, json!({"input": input})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("errors").is_none(), "{answer}");
    let job = &answer["data"]["createJob"]["job"];
    assert_eq!(
        (job["kind"].as_str(), job["owner"].as_str()),
        (Some("ARCHIVE"), Some(owner.as_str()))
    );
    let id = job["id"].as_str().unwrap().to_string();

    // The worker takes it from SQS; GraphQL reads it back.
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let (status, answer) = graphql(&client, JOB, json!({"id": id})).await;
        assert_eq!(status, 200, "{answer}");
        let job = answer["data"]["job"].clone();
        if job["status"] == "COMPLETED" || job["status"] == "FAILED" {
            break job;
        }
        assert!(Instant::now() < deadline, "not finished in 120 s: {job}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempts"], 1);
    assert!(done["result"].is_object(), "{done}");
    let steps: Vec<&str> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps.last(), Some(&"COMPLETED"), "{steps:?}");

    // The same job in the caller's connection and counts; another user sees neither.
    let (_, answer) = graphql(
        &client,
        "{ jobs(filter: {status: [COMPLETED]}, first: 10) { edges { node { id } } } stats { total byStatus } }",
        json!({}),
    )
    .await;
    assert_eq!(
        answer["data"]["jobs"]["edges"][0]["node"]["id"],
        id.as_str(),
        "{answer}"
    );
    assert_eq!(answer["data"]["stats"]["byStatus"]["completed"], 1, "{answer}");
    let other = http_as(&format!("{owner}-other"), false);
    let (status, answer) = graphql(&other, JOB, json!({"id": id})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "NOT_FOUND", "{answer}");
    assert!(answer["data"]["job"].is_null());
    let (_, answer) = graphql(
        &other,
        "mutation($id: ID!) { retryJob(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "NOT_FOUND", "{answer}");

    // A completed job cannot be cancelled: CONFLICT.
    let (_, answer) = graphql(
        &client,
        "mutation($id: ID!) { cancelJob(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "CONFLICT", "{answer}");
}
