//! Provisioning a stack again after its template changed, against the emulator: a table that
//! gained indexes gets them, one at a time as DynamoDB requires, whatever data it holds.
//!
//! On a DynamoDB Local of its own, in memory (`dynamodb-local`, which `infra/tools.sh` puts on
//! PATH): DynamoDB Local builds a new index in time that grows with everything its database holds,
//! not with the table's size. On the stack's, with the ~250 tables a test run leaves before they
//! are dropped, one index over 50 items took ~130 s (this test 268 s of every CI run); on a
//! developer's stack with a few more runs' data, 500 s. On an empty one: under a second.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus};
use local_bridge::alarms::AlarmMode;
use local_bridge::provision::{Clients, Options, provision};
use local_bridge::template::Template;

/// A DynamoDB Local of the test's own, in memory, stopped when dropped.
struct OwnDynamoDb {
    child: Child,
    client: aws_sdk_dynamodb::Client,
}

impl OwnDynamoDb {
    /// Starts one on a free port and waits (at most 60 s) until it answers `ListTables`.
    async fn start() -> OwnDynamoDb {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("dynamodb-local")
            .args(["-inMemory", "-disableTelemetry", "-port", &port.to_string()])
            .env(
                "DYNAMODB_LOCAL_JAVA_OPTS",
                "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            )
            // It writes dynamodb-local-metadata.json where it runs: not into the source tree.
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dynamodb-local is not on PATH: run through infra/test (infra/tools.sh installs it)");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region("us-east-1")
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .load()
            .await;
        let own = OwnDynamoDb {
            child,
            client: aws_sdk_dynamodb::Client::new(&config),
        };
        let start = Instant::now();
        while own.client.list_tables().send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "DynamoDB Local on port {port} did not answer ListTables within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        own
    }
}

impl Drop for OwnDynamoDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn table_template(indexes: &[&str]) -> Template {
    let mut attributes = vec!["{AttributeName: pk, AttributeType: S}".to_string()];
    let mut gsis = Vec::new();
    for name in indexes {
        attributes.push(format!("{{AttributeName: {name}_pk, AttributeType: S}}"));
        gsis.push(format!(
            "{{IndexName: {name}, KeySchema: [{{AttributeName: {name}_pk, KeyType: HASH}}], Projection: {{ProjectionType: ALL}}}}"
        ));
    }
    let gsis = if gsis.is_empty() {
        String::new()
    } else {
        format!("\n      GlobalSecondaryIndexes: [{}]", gsis.join(", "))
    };
    Template::parse(&format!(
        "AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Jobs:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{}]
      KeySchema: [{{AttributeName: pk, KeyType: HASH}}]{gsis}
",
        attributes.join(", ")
    ))
    .expect("the test template")
}

#[tokio::test]
async fn a_table_that_gained_two_indexes_gets_both_one_at_a_time() {
    let own = OwnDynamoDb::start().await;
    let mut clients = Clients::from_env().await;
    clients.dynamodb = own.client.clone();
    let options = Options {
        stack_name: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        visibility_timeout: None,
        parameters: HashMap::new(),
        alarms: AlarmMode::Skip,
    };
    let stack = provision(&table_template(&[]), &clients, &options)
        .await
        .expect("first provision");
    let table = stack.reference("Jobs").expect("the table's name").to_string();
    // Items the new indexes must be built from.
    for i in 0..50 {
        clients
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("job{i}")))
            .item("by_a_pk", AttributeValue::S("x".into()))
            .item("by_b_pk", AttributeValue::S("y".into()))
            .send()
            .await
            .unwrap();
    }
    // The template gained two indexes: DynamoDB creates one per table at a time and refuses a
    // second while the first builds (LimitExceededException), so provisioning waits between them.
    provision(&table_template(&["by_a", "by_b"]), &clients, &options)
        .await
        .expect("provisioning the template that gained two indexes");
    let described = clients
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let mut indexes: Vec<(String, Option<IndexStatus>)> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .map(|g| (g.index_name().unwrap().to_string(), g.index_status().cloned()))
        .collect();
    indexes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        indexes,
        vec![
            ("by_a".to_string(), Some(IndexStatus::Active)),
            ("by_b".to_string(), Some(IndexStatus::Active))
        ]
    );
    let found = clients
        .dynamodb
        .query()
        .table_name(&table)
        .index_name("by_b")
        .key_condition_expression("by_b_pk = :v")
        .expression_attribute_values(":v", AttributeValue::S("y".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(found.count(), 50, "the second index holds the items written before it");
    // And a third provision with nothing new is a no-op.
    provision(&table_template(&["by_a", "by_b"]), &clients, &options)
        .await
        .expect("provisioning again");
    clients.dynamodb.delete_table().table_name(&table).send().await.unwrap();
}
