//! Test support: a freshly provisioned copy of `template.yaml` under a unique stack name, so tests
//! against the emulators can run in parallel without sharing a table, queue or bucket.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::alarms::AlarmMode;
use crate::provision::{Clients, Options, Stack, provision};
use crate::template::Template;

/// The workspace root: the nearest directory holding `template.yaml` above the crate whose test
/// runs. Read at run time (cargo sets `CARGO_MANIFEST_DIR` for tests): a test binary reused from
/// a build in another checkout carries that checkout's compile-time path.
pub fn workspace_root() -> PathBuf {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
    dir.ancestors()
        .find(|d| d.join("template.yaml").is_file())
        .unwrap_or_else(|| panic!("no template.yaml above {}", dir.display()))
        .to_path_buf()
}

/// The running local stack's state directory (`JOBS_STATE_DIR`, else `<workspace>/.local`).
pub fn state_dir() -> PathBuf {
    std::env::var("JOBS_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".local"))
}

/// A variable of the running stack's function environment (`functions.env`, written by
/// `infra/up`), e.g. `JOBS_TABLE` or `STATUS_SHARDS`.
pub fn stack_var(name: &str) -> String {
    let text = std::fs::read_to_string(state_dir().join("functions.env"))
        .expect("the local stack is not up: run infra/up (infra/test does it for you)");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} missing from functions.env"))
}

/// The workspace's `template.yaml`.
pub fn template_path() -> PathBuf {
    workspace_root().join("template.yaml")
}

/// The parameters `infra/up` gives the template, with an issuer nobody serves (tests that need
/// one start their own [`crate::issuer::Issuer`] and pass its URL as `AuthIssuer`).
pub fn test_parameters() -> HashMap<String, String> {
    local_parameters("http://127.0.0.1:9/no-issuer")
}

/// The template parameters of the local stack for an issuer at `issuer_url`: the local issuer
/// stands in for Cognito (so the template's Cognito resources are left out), the audience is the
/// local clients, and the dashboard signs in at the issuer.
pub fn local_parameters(issuer_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("AuthIssuer".to_string(), issuer_url.to_string()),
        (
            "AuthAudience".to_string(),
            format!(
                "{},{}",
                crate::auth::DASHBOARD_CLIENT_ID,
                crate::auth::MACHINE_CLIENT_ID
            ),
        ),
        ("AuthClientId".to_string(), crate::auth::DASHBOARD_CLIENT_ID.to_string()),
        ("AuthOAuthUrl".to_string(), issuer_url.to_string()),
    ])
}

/// A provisioned, isolated stack.
pub struct TestStack {
    pub stack: Stack,
    pub clients: Clients,
    pub env: BTreeMap<String, String>,
}

impl TestStack {
    /// Provisions the template as `t<random>`. Needs the emulators (`infra/up`, or `infra/test`
    /// which starts them) and their endpoints in `AWS_ENDPOINT_URL_*`.
    pub async fn new(visibility_timeout: Option<u32>) -> TestStack {
        let template = Template::load(&template_path()).expect("template.yaml");
        TestStack::from_template(&template, visibility_timeout).await
    }

    /// Provisions `template` (e.g. the project's with a resource added) as `t<random>`, with
    /// [`test_parameters`].
    pub async fn from_template(template: &Template, visibility_timeout: Option<u32>) -> TestStack {
        TestStack::with_parameters(template, visibility_timeout, test_parameters()).await
    }

    /// Provisions `template` with these parameter values.
    pub async fn with_parameters(
        template: &Template,
        visibility_timeout: Option<u32>,
        parameters: HashMap<String, String>,
    ) -> TestStack {
        TestStack::provisioned(template, visibility_timeout, parameters, AlarmMode::Skip).await
    }

    /// The project's template with its alarms and dashboard created in CloudWatch, every alarm
    /// evaluated every `alarm_period` seconds (other test stacks leave them out).
    pub async fn with_alarms(alarm_period: u32) -> TestStack {
        let template = Template::load(&template_path()).expect("template.yaml");
        TestStack::provisioned(
            &template,
            None,
            test_parameters(),
            AlarmMode::Create {
                period: Some(alarm_period),
            },
        )
        .await
    }

    async fn provisioned(
        template: &Template,
        visibility_timeout: Option<u32>,
        parameters: HashMap<String, String>,
        alarms: AlarmMode,
    ) -> TestStack {
        for var in [
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_SNS",
            "AWS_ENDPOINT_URL_SES",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
        ] {
            assert!(
                std::env::var_os(var).is_some(),
                "{var} is not set: integration tests run against the local emulators; use infra/test \
                 (or `source infra/env.sh` after infra/up)"
            );
        }
        let clients = Clients::from_env().await;
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let stack = provision(
            template,
            &clients,
            &Options {
                stack_name: name,
                visibility_timeout,
                parameters,
                alarms,
            },
        )
        .await
        .expect("provisioning a test stack (are the emulators up?)");
        let env = stack.merged_env().expect("function environment");
        TestStack { stack, clients, env }
    }

    /// A function environment variable, e.g. `JOBS_TABLE`.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the functions' environment"))
    }
}

impl TestStack {
    /// Subscribes a new queue of this stack to the topic `topic` (a logical id, e.g.
    /// `NotificationsTopic`) with raw delivery (the message body as published, its attributes
    /// as SQS message attributes), as a delivery service would. Returns the queue's URL.
    pub async fn subscribe_queue(&self, topic: &str) -> String {
        let topic_arn = self
            .stack
            .reference(topic)
            .unwrap_or_else(|| panic!("{topic} is not a resource of the stack"))
            .to_string();
        let name = format!("{}-{topic}-subscriber", self.stack.name);
        let url = self
            .clients
            .sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("creating the subscriber queue")
            .queue_url
            .expect("queue URL");
        let arn = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the subscriber queue's ARN")
            .attributes
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("QueueArn");
        self.clients
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("subscribing the queue");
        url
    }
}

/// A mail LocalStack's SES accepted, as its `GET /_aws/ses` lists it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub destination: serde_json::Value,
    pub subject: Option<String>,
    pub body: serde_json::Value,
}

/// The mails LocalStack's SES accepted from `source` (its `GET /_aws/ses?email=`), at the
/// endpoint in `AWS_ENDPOINT_URL_SES`.
pub async fn sent_emails(source: &str) -> Vec<SentEmail> {
    #[derive(serde::Deserialize)]
    struct Listing {
        messages: Vec<SentEmail>,
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SES").expect("AWS_ENDPOINT_URL_SES (source infra/env.sh)");
    let query: String = source
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/_aws/ses?email={query}", endpoint.trim_end_matches('/'));
    let listing: Listing = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("GET /_aws/ses")
        .error_for_status()
        .expect("GET /_aws/ses")
        .json()
        .await
        .expect("the sent mails");
    listing.messages
}
