//! Creates a template's resources in the emulators and resolves what the functions need.
//!
//! Supported resource types: `AWS::DynamoDB::Table`, `AWS::SQS::Queue`, `AWS::S3::Bucket`,
//! `AWS::Serverless::Function` (events `HttpApi`, `SQS`, `S3`, `Schedule` with `rate(...)`;
//! `EventInvokeConfig` with SQS destinations), `AWS::Serverless::HttpApi` (see [`crate::http_api`]),
//! the WebSocket API's `AWS::ApiGatewayV2::*` resources (see [`crate::websocket_api`]), and
//! `DynamoDB` stream events (tables get the stream their `StreamSpecification` asks for; see
//! [`crate::stream_source`]), `AWS::CloudWatch::Alarm` and `AWS::CloudWatch::Dashboard` (in
//! LocalStack's CloudWatch, see [`crate::alarms`]). `AWS::Lambda::Permission` is accepted: locally
//! anything may invoke.
//! Anything else fails loudly: the local stack must not silently differ from the template.
//! Parameters take their defaults or the overrides given ([`Options::parameters`]); a resource
//! whose `Condition` is false is skipped, as CloudFormation skips it. Cognito resources are not
//! emulated: the local stack passes `AuthIssuer` (the bridge's own issuer, [`crate::auth`]), which
//! turns them off.
//! Creation is idempotent, so provisioning twice is harmless.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::http_api::HttpApi;
use crate::stream_source::StreamSource;
use crate::template::{EvalError, Resolver, Template, evaluate};
use crate::websocket_api::WebSocketApi;

/// Region and account the local stack pretends to be.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// The emulator clients resources are created with.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub ses: aws_sdk_ses::Client,
    /// DynamoDB Streams, at the DynamoDB endpoint (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// CloudWatch (`AWS_ENDPOINT_URL_CLOUDWATCH`): alarms and dashboards; metric data from the functions' EMF lines.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// Clients for the endpoints in the environment (`AWS_ENDPOINT_URL_*`), path-style S3.
    pub async fn from_env() -> Clients {
        // Bounded, so that a hung emulator shows as an error instead of a silent wait. Above the
        // 20 s of an SQS long poll.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .operation_timeout(std::time::Duration::from_secs(60))
            .build();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(REGION)
            .timeout_config(timeouts)
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sns: aws_sdk_sns::Client::new(&config),
            ses: aws_sdk_ses::Client::new(&config),
            streams: streams_client(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        }
    }
}

/// The Streams API is served where DynamoDB is (moto, DynamoDB Local): its endpoint is
/// `AWS_ENDPOINT_URL_DYNAMODBSTREAMS` if set, else `AWS_ENDPOINT_URL_DYNAMODB`.
fn streams_client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut b = aws_sdk_dynamodbstreams::config::Builder::from(config);
    let own = std::env::var("AWS_ENDPOINT_URL_DYNAMODBSTREAMS")
        .ok()
        .filter(|v| !v.is_empty());
    if let Some(url) = own.or_else(|| {
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .ok()
            .filter(|v| !v.is_empty())
    }) {
        b = b.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(b.build())
}

/// How to provision.
#[derive(Debug, Clone)]
pub struct Options {
    /// `AWS::StackName`; also the prefix of every generated name, so stacks do not collide.
    pub stack_name: String,
    /// Overrides every queue's visibility timeout (tests that watch redrive use 1-2 s).
    pub visibility_timeout: Option<u32>,
    /// Template parameter values instead of their defaults (`sam deploy --parameter-overrides`).
    pub parameters: HashMap<String, String>,
    /// Whether alarms and dashboards are created in CloudWatch, and with which period.
    pub alarms: crate::alarms::AlarmMode,
}

/// A created resource: what `Ref` and `Fn::GetAtt` give.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub kind: String,
    pub reference: String,
    pub attributes: HashMap<String, String>,
}

/// A function as the local stack runs it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The binary name, which is what `cargo lambda watch` serves.
    pub name: String,
    pub env: BTreeMap<String, String>,
    pub timeout_secs: u64,
    /// How Lambda treats its asynchronous invocations (S3 notifications, schedules).
    pub async_config: AsyncConfig,
}

impl Function {
    /// `arn:aws:lambda:...:function:NAME`.
    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name)
    }
}

/// A function's `EventInvokeConfig`: retries of asynchronous invocations and where their records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    /// Retries after the first attempt (0-2; Lambda's default is 2).
    pub maximum_retry_attempts: u32,
    pub on_success: Option<Destination>,
    pub on_failure: Option<Destination>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig {
            maximum_retry_attempts: 2,
            on_success: None,
            on_failure: None,
        }
    }
}

impl AsyncConfig {
    /// Attempts in all: the first one and the retries.
    pub fn attempts(&self) -> u32 {
        1 + self.maximum_retry_attempts
    }
}

/// A destination queue of asynchronous invocation records (only SQS locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub queue_arn: String,
    pub queue_url: String,
}

/// A `Schedule` event: an EventBridge rule that invokes the function at a fixed rate.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `FunctionLogicalId-EventId`.
    pub id: String,
    pub function: String,
    pub rule_arn: String,
    /// From `rate(...)`.
    pub period: Duration,
    /// The event's `Input` (sent instead of the Scheduled Event), if any.
    pub input: Option<Value>,
    /// The function's asynchronous invocation settings (EventBridge invokes asynchronously).
    pub async_config: AsyncConfig,
}

/// An SQS event source mapping.
#[derive(Debug, Clone)]
pub struct SqsSource {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub batching_window_secs: u64,
    pub report_batch_item_failures: bool,
    /// From the queue's `RedrivePolicy`.
    pub max_receive_count: Option<u32>,
    pub dead_letter_queue_url: Option<String>,
}

/// An S3 notification routed to a function; `id` is the notification's configuration id.
#[derive(Debug, Clone)]
pub struct S3Route {
    pub id: String,
    pub bucket: String,
    pub function: String,
    pub function_arn: String,
    pub async_config: AsyncConfig,
}

/// Everything the bridge needs to run a provisioned template.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub resources: BTreeMap<String, Physical>,
    pub functions: BTreeMap<String, Function>,
    pub sqs_sources: Vec<SqsSource>,
    /// Internal queue that buckets notify; the bridge relays its messages to the functions.
    pub s3_events_queue_url: Option<String>,
    pub s3_routes: Vec<S3Route>,
    /// Routes, authorizers, throttling and CORS of the HTTP API.
    pub http_api: HttpApi,
    pub schedules: Vec<Schedule>,
    /// DynamoDB stream event source mappings.
    pub stream_sources: Vec<StreamSource>,
    /// The WebSocket API, when the template has one.
    pub websocket_api: Option<WebSocketApi>,
}

impl Stack {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.values().find(|f| f.name == name)
    }

    /// The union of the functions' environments (cargo lambda watch takes one env file).
    /// Two functions giving one variable different values is an error.
    pub fn merged_env(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut merged: BTreeMap<String, String> = BTreeMap::new();
        for f in self.functions.values() {
            for (k, v) in &f.env {
                if let Some(old) = merged.insert(k.clone(), v.clone())
                    && &old != v
                {
                    bail!(
                        "environment variable {k} differs between functions ({old:?} vs {v:?}); the local stack runs them with one environment"
                    );
                }
            }
        }
        Ok(merged)
    }

    /// `Ref` of a logical id.
    pub fn reference(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id).map(|p| p.reference.as_str())
    }

    /// Each function's `Timeout`, by function name.
    pub fn timeouts(&self) -> HashMap<String, Duration> {
        self.functions
            .values()
            .map(|f| (f.name.clone(), Duration::from_secs(f.timeout_secs)))
            .collect()
    }
}

struct Names<'a> {
    stack: &'a str,
    params: &'a HashMap<String, Value>,
    created: &'a BTreeMap<String, Physical>,
    conditions: &'a HashMap<String, bool>,
}

/// `AWS::StackName`, `AWS::Region`, ...: what the local stack pretends to be.
pub fn pseudo_parameter(stack: &str, name: &str) -> Option<String> {
    match name {
        "AWS::StackName" => Some(stack.to_string()),
        "AWS::StackId" => Some(format!(
            "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/00000000-0000-0000-0000-000000000000"
        )),
        "AWS::Region" => Some(REGION.into()),
        "AWS::AccountId" => Some(ACCOUNT.into()),
        "AWS::URLSuffix" => Some("amazonaws.com".into()),
        "AWS::Partition" => Some("aws".into()),
        _ => None,
    }
}

impl Resolver for Names<'_> {
    fn reference(&self, name: &str) -> Option<String> {
        self.reference_value(name).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    fn reference_value(&self, name: &str) -> Option<Value> {
        pseudo_parameter(self.stack, name)
            .map(Value::String)
            .or_else(|| self.params.get(name).cloned())
            .or_else(|| self.created.get(name).map(|p| Value::String(p.reference.clone())))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Option<String> {
        self.created
            .get(resource)
            .and_then(|p| p.attributes.get(attribute).cloned())
    }

    fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }
}

/// The parameters' values and the conditions' values, for `options`.
pub fn parameters_and_conditions(
    template: &Template,
    options: &Options,
) -> anyhow::Result<(HashMap<String, Value>, HashMap<String, bool>)> {
    let params = template.parameter_values(&options.parameters)?;
    let empty = BTreeMap::new();
    let no_conditions = HashMap::new();
    let names = Names {
        stack: &options.stack_name,
        params: &params,
        created: &empty,
        conditions: &no_conditions,
    };
    let conditions = template
        .evaluate_conditions(&names)
        .map_err(|e| anyhow!("Conditions: {e}"))?;
    Ok((params, conditions))
}

/// Provisions every resource of `template` and returns the resolved stack: the resources in
/// dependency order, then each function with its event sources, then the S3 notifications.
pub async fn provision(template: &Template, clients: &Clients, options: &Options) -> anyhow::Result<Stack> {
    let (params, conditions) = parameters_and_conditions(template, options)?;
    let (created, evaluated) = create_resources(template, &params, &conditions, clients, options).await?;
    let names = Names {
        stack: &options.stack_name,
        params: &params,
        created: &created,
        conditions: &conditions,
    };
    let globals = template.globals.get("Function").cloned().unwrap_or(Value::Null);
    let globals = evaluate(&globals, &names).map_err(|e| anyhow!("Globals: {e}"))?;

    let mut stack = Stack {
        name: options.stack_name.clone(),
        resources: created.clone(),
        functions: BTreeMap::new(),
        sqs_sources: Vec::new(),
        s3_events_queue_url: None,
        s3_routes: Vec::new(),
        http_api: crate::http_api::from_template(template, &names, &conditions)?,
        schedules: Vec::new(),
        stream_sources: Vec::new(),
        websocket_api: crate::websocket_api::from_template(template, &created, &evaluated)?,
    };
    let mut s3_configs: BTreeMap<String, Vec<QueueConfiguration>> = BTreeMap::new();
    for (id, res) in &template.resources {
        if res.kind != "AWS::Serverless::Function" || !template.active(res, &conditions)? {
            continue;
        }
        let function = function(id, &evaluated[id], &res.metadata, &globals, &created)?;
        let events = res.properties.get("Events").and_then(Value::as_object);
        for (event_id, event) in events.into_iter().flatten() {
            let source = EventSource {
                function: &function,
                id,
                event_id,
                event,
            };
            source
                .connect(&mut stack, &mut s3_configs, &names, clients, options)
                .await?;
        }
        stack.functions.insert(id.clone(), function);
    }
    route_s3_notifications(&mut stack, s3_configs, clients, options).await?;
    Ok(stack)
}

/// Creates every active resource, in dependency order: each pass creates what can be evaluated
/// with what exists so far. Returns the physical resources and their evaluated properties.
async fn create_resources(
    template: &Template,
    params: &HashMap<String, Value>,
    conditions: &HashMap<String, bool>,
    clients: &Clients,
    options: &Options,
) -> anyhow::Result<(BTreeMap<String, Physical>, BTreeMap<String, Value>)> {
    let mut created: BTreeMap<String, Physical> = BTreeMap::new();
    let mut evaluated: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let mut progress = false;
        let mut waiting = Vec::new();
        for (id, res) in &template.resources {
            if created.contains_key(id) || !template.active(res, conditions)? {
                continue;
            }
            let names = Names {
                stack: &options.stack_name,
                params,
                created: &created,
                conditions,
            };
            let props = match evaluate(&strip_events(&res.properties), &names) {
                Ok(p) => p,
                Err(EvalError::Pending(what)) => {
                    waiting.push(format!("{id} (needs {what})"));
                    continue;
                }
                Err(e) => bail!("resource {id}: {e}"),
            };
            let physical = create(id, &res.kind, &props, &res.metadata, clients, options)
                .await
                .with_context(|| format!("creating {id} ({})", res.kind))?;
            created.insert(id.clone(), physical);
            evaluated.insert(id.clone(), props);
            progress = true;
        }
        if waiting.is_empty() {
            return Ok((created, evaluated));
        }
        if !progress {
            bail!("cannot resolve: {}", waiting.join(", "));
        }
    }
}

/// One entry of a function's `Events`.
struct EventSource<'a> {
    function: &'a Function,
    id: &'a str,
    event_id: &'a str,
    event: &'a Value,
}

impl EventSource<'_> {
    /// Wires the event into the stack: an SQS poller, an S3 route (its bucket's notification
    /// configuration is collected in `s3_configs`), or a schedule. HTTP API events are the
    /// gateway's ([`crate::http_api`]).
    async fn connect(
        &self,
        stack: &mut Stack,
        s3_configs: &mut BTreeMap<String, Vec<QueueConfiguration>>,
        names: &Names<'_>,
        clients: &Clients,
        options: &Options,
    ) -> anyhow::Result<()> {
        let (id, event_id, function) = (self.id, self.event_id, self.function);
        let kind = self.event.get("Type").and_then(Value::as_str).unwrap_or_default();
        if kind == "HttpApi" {
            return Ok(());
        }
        let raw = self.event.get("Properties").cloned().unwrap_or(Value::Null);
        let props = evaluate(&raw, names).map_err(|e| anyhow!("{id}.Events.{event_id}: {e}"))?;
        match kind {
            "SQS" => stack
                .sqs_sources
                .push(sqs_source(function, &props, names.created, clients).await?),
            "S3" => {
                let bucket_id = raw
                    .get("Bucket")
                    .and_then(|b| b.get("Ref"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        anyhow!("{id}.Events.{event_id}: Bucket must be !Ref of a bucket in the template")
                    })?;
                let bucket = names.created[bucket_id].reference.clone();
                let config_id = format!("{id}-{event_id}");
                s3_configs
                    .entry(bucket.clone())
                    .or_default()
                    .push(queue_configuration(&config_id, &props)?);
                stack.s3_routes.push(S3Route {
                    id: config_id,
                    bucket,
                    function: function.name.clone(),
                    function_arn: function.arn(),
                    async_config: function.async_config.clone(),
                });
            }
            "DynamoDB" => stack.stream_sources.push(
                crate::stream_source::from_event(function, &props, names.created)
                    .with_context(|| format!("{id}.Events.{event_id}"))?,
            ),
            "Schedule" => {
                if let Some(s) = schedule(&options.stack_name, function, event_id, &props)
                    .with_context(|| format!("{id}.Events.{event_id}"))?
                {
                    stack.schedules.push(s);
                }
            }
            other => bail!("{id}.Events.{event_id}: event type {other} is not supported by the local stack"),
        }
        Ok(())
    }
}

/// S3 sends bucket notifications to one queue the bridge polls (LocalStack cannot invoke
/// functions it does not run): create it and point every bucket with S3 events at it.
async fn route_s3_notifications(
    stack: &mut Stack,
    s3_configs: BTreeMap<String, Vec<QueueConfiguration>>,
    clients: &Clients,
    options: &Options,
) -> anyhow::Result<()> {
    if s3_configs.is_empty() {
        return Ok(());
    }
    let queue_name = format!("{}-s3-notifications", options.stack_name);
    // A notification stays hidden while its function may still run (its Timeout), so that it
    // is not taken again in the meantime; retries set their own delay.
    let longest = stack
        .s3_routes
        .iter()
        .filter_map(|r| stack.function(&r.function))
        .map(|f| f.timeout_secs)
        .max()
        .unwrap_or(30);
    let visibility = Options {
        visibility_timeout: None,
        ..options.clone()
    };
    let url = create_queue(
        &queue_name,
        &serde_json::json!({ "VisibilityTimeout": longest + 60 }),
        clients,
        &visibility,
    )
    .await
    .context("creating the S3 notification queue")?;
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}");
    for (bucket, configs) in s3_configs {
        let configs = configs.into_iter().map(|mut c| {
            c.queue_arn = arn.clone();
            c
        });
        clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(configs.collect()))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("configuring notifications of bucket {bucket}"))?;
    }
    stack.s3_events_queue_url = Some(url);
    Ok(())
}

/// Function events are read raw later (they refer to functions and buckets), not evaluated here.
fn strip_events(props: &Value) -> Value {
    let mut p = props.clone();
    if let Some(m) = p.as_object_mut() {
        m.remove("Events");
    }
    p
}

fn generated_name(options: &Options, id: &str) -> String {
    format!("{}-{id}", options.stack_name)
}

async fn create(
    id: &str,
    kind: &str,
    props: &Value,
    metadata: &Value,
    clients: &Clients,
    options: &Options,
) -> anyhow::Result<Physical> {
    let mut physical = Physical {
        kind: kind.to_string(),
        ..Default::default()
    };
    match kind {
        "AWS::DynamoDB::Table" => {
            let name = str_prop(props, "TableName").unwrap_or_else(|| generated_name(options, id));
            create_table(&name, props, clients).await?;
            physical.attributes.insert(
                "Arn".into(),
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
            );
            if let Some(arn) = ensure_stream(&name, props, clients).await? {
                physical.attributes.insert("StreamArn".into(), arn);
            }
            physical.reference = name;
        }
        "AWS::SQS::Queue" => {
            let name = str_prop(props, "QueueName").unwrap_or_else(|| generated_name(options, id));
            let url = create_queue(&name, props, clients, options).await?;
            physical
                .attributes
                .insert("Arn".into(), format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"));
            physical.attributes.insert("QueueName".into(), name.clone());
            physical.attributes.insert("QueueUrl".into(), url.clone());
            physical.reference = url;
        }
        "AWS::S3::Bucket" => {
            let name = str_prop(props, "BucketName").unwrap_or_else(|| generated_name(options, id).to_lowercase());
            create_bucket(&name, props, clients).await?;
            physical.attributes.insert("Arn".into(), format!("arn:aws:s3:::{name}"));
            physical
                .attributes
                .insert("DomainName".into(), format!("{name}.s3.amazonaws.com"));
            physical.reference = name;
        }
        "AWS::Serverless::Function" => {
            let name = binary_name(id, metadata);
            physical.attributes.insert(
                "Arn".into(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
            );
            physical.reference = name;
        }
        "AWS::SNS::Topic" => {
            let name = str_prop(props, "TopicName").unwrap_or_else(|| generated_name(options, id));
            let out = clients
                .sns
                .create_topic()
                .name(&name)
                .send()
                .await
                .with_context(|| format!("creating topic {name}"))?;
            let arn = out
                .topic_arn
                .ok_or_else(|| anyhow!("CreateTopic {name} answered without an ARN"))?;
            physical.attributes.insert("TopicArn".into(), arn.clone());
            physical.attributes.insert("TopicName".into(), name);
            physical.reference = arn;
        }
        "AWS::SES::EmailIdentity" => {
            let identity =
                str_prop(props, "EmailIdentity").ok_or_else(|| anyhow!("{id}: EmailIdentity is required"))?;
            verify_identity(&identity, clients).await?;
            physical.reference = identity;
        }
        "AWS::Serverless::HttpApi" => physical.reference = format!("{}-http-api", options.stack_name),
        // The WebSocket API is served by the bridge from these (crate::websocket_api); nothing
        // to create in an emulator. An API's id is what its URLs and ARNs carry.
        "AWS::ApiGatewayV2::Api" => physical.reference = format!("{}-{}", options.stack_name, id.to_lowercase()),
        "AWS::ApiGatewayV2::Integration"
        | "AWS::ApiGatewayV2::Route"
        | "AWS::ApiGatewayV2::RouteResponse"
        | "AWS::ApiGatewayV2::Deployment" => physical.reference = id.to_string(),
        "AWS::ApiGatewayV2::Stage" => {
            physical.reference = str_prop(props, "StageName").ok_or_else(|| anyhow!("{id}: StageName is required"))?
        }
        // Locally any caller may invoke any function.
        "AWS::Lambda::Permission" => physical.reference = id.to_string(),
        "AWS::CloudWatch::Alarm" => {
            let name = str_prop(props, "AlarmName").unwrap_or_else(|| generated_name(options, id));
            if let crate::alarms::AlarmMode::Create { period } = options.alarms {
                crate::alarms::put_alarm(&clients.cloudwatch, &name, props, period).await?;
            }
            physical
                .attributes
                .insert("Arn".into(), crate::alarms::alarm_arn(&name));
            physical.reference = name;
        }
        "AWS::CloudWatch::Dashboard" => {
            let name = str_prop(props, "DashboardName").unwrap_or_else(|| generated_name(options, id));
            if let crate::alarms::AlarmMode::Create { .. } = options.alarms {
                crate::alarms::put_dashboard(&clients.cloudwatch, &name, props).await?;
            }
            physical.reference = name;
        }
        cognito if cognito.starts_with("AWS::Cognito::") => bail!(
            "{cognito} is not emulated by the local stack: give the template an AuthIssuer (infra/up passes the \
             bridge's own issuer, which stands in for Cognito) so that the Cognito resources are left out"
        ),
        other => {
            bail!("resource type {other} is not supported by the local stack (infra/local-bridge/src/provision.rs)")
        }
    }
    Ok(physical)
}

/// Verifies an SES identity at once, as the emulator allows (on AWS, the owner clicks a link or
/// publishes DKIM records): an address, or a domain when there is no `@`.
async fn verify_identity(identity: &str, clients: &Clients) -> anyhow::Result<()> {
    if identity.contains('@') {
        clients
            .ses
            .verify_email_identity()
            .email_address(identity)
            .send()
            .await
            .with_context(|| format!("verifying the sender {identity}"))?;
    } else {
        clients
            .ses
            .verify_domain_identity()
            .domain(identity)
            .send()
            .await
            .with_context(|| format!("verifying the domain {identity}"))?;
    }
    Ok(())
}

pub(crate) fn binary_name(id: &str, metadata: &Value) -> String {
    metadata
        .pointer("/BuildProperties/Binary")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| id.to_string())
}

fn str_prop(props: &Value, name: &str) -> Option<String> {
    props.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How long an index the template gained may take to build. DynamoDB Local's time grows with
/// everything its database holds, not with the table: under a second on an empty one, ~130 s with
/// the ~250 tables a test run leaves before they are dropped, 500 s seen on a developer's stack.
const INDEX_BUILD_BOUND: Duration = Duration::from_secs(600);

/// Waits, at most [`INDEX_BUILD_BOUND`], until every index of table `name` is `ACTIVE`: DynamoDB
/// (AWS's and DynamoDB Local alike) creates one index per table at a time and refuses the next
/// with `LimitExceededException` while one builds.
async fn wait_indexes_active(name: &str, clients: &Clients) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    loop {
        let table = clients.dynamodb.describe_table().table_name(name).send().await?;
        let building: Vec<String> = table
            .table()
            .map(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .filter(|g| g.index_status() != Some(&aws_sdk_dynamodb::types::IndexStatus::Active))
                    .filter_map(|g| g.index_name().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if building.is_empty() {
            return Ok(());
        }
        if start.elapsed() > INDEX_BUILD_BOUND {
            bail!(
                "table {name}: index {} not ACTIVE after {} s",
                building.join(", "),
                INDEX_BUILD_BOUND.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn add_missing_indexes(
    name: &str,
    attributes: Vec<AttributeDefinition>,
    indexes: Vec<GlobalSecondaryIndex>,
    clients: &Clients,
) -> anyhow::Result<()> {
    // One left building by an earlier run first.
    wait_indexes_active(name, clients).await?;
    let table = clients.dynamodb.describe_table().table_name(name).send().await?;
    let existing: Vec<String> = table
        .table()
        .map(|t| {
            t.global_secondary_indexes()
                .iter()
                .filter_map(|g| g.index_name().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for index in indexes
        .into_iter()
        .filter(|i| !existing.iter().any(|e| e == i.index_name()))
    {
        tracing::info!(
            table = name,
            index = index.index_name(),
            "adding an index the template gained"
        );
        let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
            .index_name(index.index_name())
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()?;
        clients
            .dynamodb
            .update_table()
            .table_name(name)
            .set_attribute_definitions(Some(attributes.clone()))
            .global_secondary_index_updates(
                aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                    .create(create)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
        wait_indexes_active(name, clients).await?;
    }
    Ok(())
}

async fn create_table(name: &str, props: &Value, clients: &Clients) -> anyhow::Result<()> {
    let key_schema = |v: &Value| -> anyhow::Result<Vec<KeySchemaElement>> {
        v.as_array()
            .ok_or_else(|| anyhow!("KeySchema must be a list"))?
            .iter()
            .map(|k| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(scalar(&k["AttributeName"]))
                    .key_type(KeyType::from(scalar(&k["KeyType"]).as_str()))
                    .build()?)
            })
            .collect()
    };
    let mut req = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for a in props["AttributeDefinitions"].as_array().into_iter().flatten() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(scalar(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(scalar(&a["AttributeType"]).as_str()))
                .build()?,
        );
    }
    req = req.set_key_schema(Some(key_schema(&props["KeySchema"])?));
    let mut indexes = Vec::new();
    for g in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let projection = &g["Projection"];
        let mut p = Projection::builder().projection_type(ProjectionType::from(
            projection
                .get("ProjectionType")
                .map(scalar)
                .unwrap_or("ALL".into())
                .as_str(),
        ));
        for attr in projection
            .get("NonKeyAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            p = p.non_key_attributes(scalar(attr));
        }
        let index = GlobalSecondaryIndex::builder()
            .index_name(scalar(&g["IndexName"]))
            .set_key_schema(Some(key_schema(&g["KeySchema"])?))
            .projection(p.build())
            .build()?;
        indexes.push(index.clone());
        req = req.global_secondary_indexes(index);
    }
    let attributes = req.get_attribute_definitions().clone().unwrap_or_default();
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {
            // A table an earlier run made: add the indexes the template has gained since, as a
            // CloudFormation stack update would.
            return add_missing_indexes(name, attributes, indexes, clients).await;
        }
        Err(e) => {
            return Err(anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()));
        }
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification")
        && ttl.get("Enabled").map(scalar).as_deref() == Some("true")
    {
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(scalar(&ttl["AttributeName"]))
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    }
    Ok(())
}

/// Turns on the stream a table's `StreamSpecification` asks for (a table an earlier run made
/// without one gets it, as a stack update would) and returns its ARN.
async fn ensure_stream(name: &str, props: &Value, clients: &Clients) -> anyhow::Result<Option<String>> {
    let Some(view) = props.pointer("/StreamSpecification/StreamViewType").map(scalar) else {
        return Ok(None);
    };
    let describe = || async {
        clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))
    };
    let table = describe()
        .await?
        .table
        .unwrap_or_else(|| aws_sdk_dynamodb::types::TableDescription::builder().build());
    let current = table.stream_specification().filter(|s| s.stream_enabled());
    if current.and_then(|s| s.stream_view_type()).map(|v| v.as_str()) != Some(view.as_str()) {
        if current.is_some() {
            bail!(
                "table {name} has a stream of another view type than {view}: delete the table (infra/down) to change it"
            );
        }
        clients
            .dynamodb
            .update_table()
            .table_name(name)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    }
    let arn = describe()
        .await?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| anyhow!("table {name}: the emulator made no stream (LatestStreamArn)"))?;
    Ok(Some(arn))
}

async fn create_queue(name: &str, props: &Value, clients: &Clients, options: &Options) -> anyhow::Result<String> {
    let mut attrs: HashMap<QueueAttributeName, String> = HashMap::new();
    for (prop, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
        ("FifoQueue", QueueAttributeName::FifoQueue),
        (
            "ContentBasedDeduplication",
            QueueAttributeName::ContentBasedDeduplication,
        ),
    ] {
        if let Some(v) = props.get(prop) {
            attrs.insert(attr, scalar(v));
        }
    }
    if let Some(v) = options.visibility_timeout {
        attrs.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    if let Some(r) = props.get("RedrivePolicy") {
        let policy = serde_json::json!({
            "deadLetterTargetArn": scalar(&r["deadLetterTargetArn"]),
            "maxReceiveCount": scalar(&r["maxReceiveCount"]).parse::<u32>().context("maxReceiveCount")?,
        });
        attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let out = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attrs.clone()))
        .send()
        .await;
    match out {
        Ok(o) => o.queue_url.ok_or_else(|| anyhow!("CreateQueue returned no URL")),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_name_exists()) => {
            // Exists with other attributes (e.g. an edited template): bring it in line.
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await?
                .queue_url
                .unwrap_or_default();
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attrs))
                .send()
                .await?;
            Ok(url)
        }
        Err(e) => Err(anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())),
    }
}

async fn create_bucket(name: &str, props: &Value, clients: &Clients) -> anyhow::Result<()> {
    match clients.s3.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => {
            return Err(anyhow!(aws_sdk_s3::error::DisplayErrorContext(e).to_string()));
        }
    }
    if let Some(rules) = props.pointer("/CorsConfiguration/CorsRules").and_then(Value::as_array) {
        let list = |r: &Value, k: &str| -> Vec<String> {
            r.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(scalar).collect())
                .unwrap_or_default()
        };
        let rules = rules
            .iter()
            .map(|r| {
                Ok(CorsRule::builder()
                    .set_allowed_methods(Some(list(r, "AllowedMethods")))
                    .set_allowed_origins(Some(list(r, "AllowedOrigins")))
                    .set_allowed_headers(Some(list(r, "AllowedHeaders")))
                    .set_expose_headers(Some(list(r, "ExposedHeaders")))
                    .set_max_age_seconds(r.get("MaxAge").and_then(|m| scalar(m).parse().ok()))
                    .build()?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        clients
            .s3
            .put_bucket_cors()
            .bucket(name)
            .cors_configuration(CorsConfiguration::builder().set_cors_rules(Some(rules)).build()?)
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
    }
    Ok(())
}

fn function(
    id: &str,
    props: &Value,
    metadata: &Value,
    globals: &Value,
    created: &BTreeMap<String, Physical>,
) -> anyhow::Result<Function> {
    let mut env = BTreeMap::new();
    for source in [globals, props] {
        if let Some(vars) = source.pointer("/Environment/Variables").and_then(Value::as_object) {
            for (k, v) in vars {
                env.insert(k.clone(), scalar(v));
            }
        }
    }
    // Lambda tells the function its LoggingConfig (AWS_LAMBDA_LOG_FORMAT, and with JSON the
    // application log level as AWS_LAMBDA_LOG_LEVEL).
    if let Some(logging) = props.get("LoggingConfig").or_else(|| globals.get("LoggingConfig")) {
        let format = logging.get("LogFormat").map(scalar).unwrap_or_else(|| "Text".into());
        if format == "JSON"
            && let Some(level) = logging.get("ApplicationLogLevel").map(scalar)
        {
            env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level);
        }
        env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format);
    }
    let timeout = props
        .get("Timeout")
        .or_else(|| globals.get("Timeout"))
        .map(scalar)
        .unwrap_or("3".into());
    Ok(Function {
        logical_id: id.to_string(),
        name: binary_name(id, metadata),
        env,
        timeout_secs: timeout.parse().with_context(|| format!("{id}.Timeout"))?,
        async_config: async_config(
            props
                .get("EventInvokeConfig")
                .or_else(|| globals.get("EventInvokeConfig")),
            created,
        )
        .with_context(|| format!("{id}.EventInvokeConfig"))?,
    })
}

/// A function's `EventInvokeConfig` (SAM shape); Lambda's defaults when absent.
fn async_config(config: Option<&Value>, created: &BTreeMap<String, Physical>) -> anyhow::Result<AsyncConfig> {
    let mut out = AsyncConfig::default();
    let Some(config) = config else {
        return Ok(out);
    };
    if let Some(n) = config.get("MaximumRetryAttempts") {
        out.maximum_retry_attempts = scalar(n).parse().context("MaximumRetryAttempts")?;
        if out.maximum_retry_attempts > 2 {
            bail!("MaximumRetryAttempts must be 0, 1 or 2");
        }
    }
    let destination = |key: &str| -> anyhow::Result<Option<Destination>> {
        let Some(d) = config.pointer(&format!("/DestinationConfig/{key}")) else {
            return Ok(None);
        };
        let kind = d.get("Type").map(scalar).unwrap_or_default();
        if kind != "SQS" {
            bail!("{key}: destination type {kind:?} is not supported by the local stack (only SQS)");
        }
        let arn = d
            .get("Destination")
            .map(scalar)
            .ok_or_else(|| anyhow!("{key}: an SQS destination needs Destination (a queue ARN of the template)"))?;
        let queue = created
            .values()
            .find(|p| p.kind == "AWS::SQS::Queue" && p.attributes.get("Arn") == Some(&arn))
            .ok_or_else(|| anyhow!("{key}: {arn} is not a queue of the template"))?;
        Ok(Some(Destination {
            queue_arn: arn,
            queue_url: queue.reference.clone(),
        }))
    };
    out.on_success = destination("OnSuccess")?;
    out.on_failure = destination("OnFailure")?;
    Ok(out)
}

/// A `Schedule` event; `None` when it is disabled (`Enabled: false` or `State: DISABLED`).
fn schedule(stack: &str, function: &Function, event_id: &str, props: &Value) -> anyhow::Result<Option<Schedule>> {
    let disabled = props.get("Enabled").map(scalar).as_deref() == Some("false")
        || props.get("State").map(scalar).as_deref() == Some("DISABLED");
    let expression = props
        .get("Schedule")
        .map(scalar)
        .ok_or_else(|| anyhow!("a Schedule event needs Schedule"))?;
    let period = parse_rate(&expression)?;
    if disabled {
        return Ok(None);
    }
    let input = match props.get("Input") {
        None => None,
        Some(Value::String(text)) => Some(serde_json::from_str(text).context("Input must be JSON text")?),
        Some(other) => bail!("Input must be JSON text, not {other}"),
    };
    let name = props
        .get("Name")
        .map(scalar)
        .unwrap_or_else(|| format!("{stack}-{}{event_id}", function.logical_id));
    Ok(Some(Schedule {
        id: format!("{}-{event_id}", function.logical_id),
        function: function.name.clone(),
        rule_arn: format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"),
        period,
        input,
        async_config: function.async_config.clone(),
    }))
}

/// `rate(N minute|minutes|hour|hours|day|days)` as a period. `cron(...)` is refused: the local
/// stack does not evaluate cron expressions.
pub fn parse_rate(expression: &str) -> anyhow::Result<Duration> {
    let expression = expression.trim();
    if expression.starts_with("cron(") {
        bail!("{expression}: cron schedules are not supported by the local stack; use rate(...)");
    }
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| anyhow!("{expression}: expected rate(N unit)"))?;
    let (n, unit) = inner
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("{expression}: expected rate(N unit)"))?;
    let n: u64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("{expression}: the value must be a positive whole number"))?;
    let unit_secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        other => bail!("{expression}: unknown unit {other:?} (minute(s), hour(s) or day(s))"),
    };
    Ok(Duration::from_secs(n * unit_secs))
}

async fn sqs_source(
    function: &Function,
    props: &Value,
    created: &BTreeMap<String, Physical>,
    clients: &Clients,
) -> anyhow::Result<SqsSource> {
    let arn = props
        .get("Queue")
        .map(scalar)
        .ok_or_else(|| anyhow!("{}: SQS event without Queue", function.logical_id))?;
    let queue = created
        .values()
        .find(|p| p.attributes.get("Arn") == Some(&arn))
        .ok_or_else(|| {
            anyhow!(
                "{}: SQS event on a queue outside the template ({arn})",
                function.logical_id
            )
        })?;
    let url = queue.reference.clone();
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let (mut max_receive_count, mut dlq_url) = (None, None);
    if let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) {
        let policy: Value = serde_json::from_str(policy)?;
        max_receive_count = policy.get("maxReceiveCount").and_then(|v| scalar(v).parse().ok());
        let dlq_arn = policy.get("deadLetterTargetArn").map(scalar).unwrap_or_default();
        dlq_url = created
            .values()
            .find(|p| p.attributes.get("Arn") == Some(&dlq_arn))
            .map(|p| p.reference.clone());
    }
    let types: Vec<String> = props
        .get("FunctionResponseTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(scalar).collect())
        .unwrap_or_default();
    Ok(SqsSource {
        function: function.name.clone(),
        queue_url: url,
        queue_arn: arn,
        batch_size: props.get("BatchSize").map(scalar).unwrap_or("10".into()).parse()?,
        batching_window_secs: props
            .get("MaximumBatchingWindowInSeconds")
            .map(scalar)
            .unwrap_or("0".into())
            .parse()?,
        report_batch_item_failures: types.iter().any(|t| t == "ReportBatchItemFailures"),
        max_receive_count,
        dead_letter_queue_url: dlq_url,
    })
}

fn queue_configuration(id: &str, props: &Value) -> anyhow::Result<QueueConfiguration> {
    let events: Vec<Event> = match props.get("Events") {
        Some(Value::Array(a)) => a.iter().map(|e| Event::from(scalar(e).as_str())).collect(),
        Some(v) => vec![Event::from(scalar(v).as_str())],
        None => bail!("S3 event {id} without Events"),
    };
    let mut rules = Vec::new();
    for r in props
        .pointer("/Filter/S3Key/Rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = scalar(&r["Name"]).to_lowercase();
        rules.push(
            FilterRule::builder()
                .name(FilterRuleName::from(name.as_str()))
                .value(scalar(&r["Value"]))
                .build(),
        );
    }
    let mut config = QueueConfiguration::builder()
        .id(id)
        .queue_arn("pending")
        .set_events(Some(events));
    if !rules.is_empty() {
        config = config.filter(
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                .build(),
        );
    }
    Ok(config.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_cron_is_refused_loudly() {
        assert_eq!(parse_rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_rate("rate(2 hours)").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_rate("rate(1 day)").unwrap(), Duration::from_secs(86_400));
        assert!(parse_rate("rate(0 minutes)").is_err());
        assert!(parse_rate("rate(5 seconds)").is_err());
        let cron = parse_rate("cron(0 12 * * ? *)").unwrap_err().to_string();
        assert!(cron.contains("not supported by the local stack"), "{cron}");
    }

    fn queue(arn: &str, url: &str) -> BTreeMap<String, Physical> {
        BTreeMap::from([(
            "Failed".to_string(),
            Physical {
                kind: "AWS::SQS::Queue".into(),
                reference: url.into(),
                attributes: HashMap::from([("Arn".to_string(), arn.to_string())]),
            },
        )])
    }

    #[test]
    fn event_invoke_config_gives_retries_and_an_sqs_destination() {
        let created = queue("arn:q", "http://q");
        let config = serde_json::json!({
            "MaximumRetryAttempts": 1,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": "arn:q"}},
        });
        let c = async_config(Some(&config), &created).unwrap();
        assert_eq!(c.attempts(), 2);
        assert_eq!(c.on_failure.unwrap().queue_url, "http://q");
        assert!(c.on_success.is_none());
        assert_eq!(async_config(None, &created).unwrap().attempts(), 3);
        let sns = serde_json::json!({"DestinationConfig": {"OnFailure": {"Type": "SNS", "Destination": "arn:t"}}});
        assert!(async_config(Some(&sns), &created).is_err());
    }
}
