//! What each function may do on AWS, read from `template.yaml`: every function's `Policies`
//! evaluated (intrinsics included) and compared with the table below, action by action and
//! resource by resource. A new SDK call in a function's code needs its line here, and a grant
//! nobody uses fails this test. No templates or parameters of an emulator are involved.
//!
//! Resources are written symbolically: a table or queue by its logical id (`JobsTable`,
//! `JobsTable/index/*`), objects as `UploadsBucket/<key pattern>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use local_bridge::template::{EvalError, Resolver, Template, evaluate};
use serde_json::Value;

/// (function, action, resource) for every grant of the template's `Policies`, with the
/// `StoreMasterKey` parameter set to [`STORE_MASTER_KEY`].
const EXPECTED: &[(&str, &str, &str)] = &[
    // The api: jobs (create, change, discard, list, count), log entries, submit/retry, queue
    // depths, uploads, the payloads of big image jobs, image submissions over 6 MB (the only objects it
    // reads).
    ("ApiFunction", "dynamodb:GetItem", "JobsTable"),
    ("ApiFunction", "dynamodb:PutItem", "JobsTable"),
    ("ApiFunction", "dynamodb:UpdateItem", "JobsTable"),
    ("ApiFunction", "dynamodb:DeleteItem", "JobsTable"),
    ("ApiFunction", "dynamodb:BatchGetItem", "JobsTable"),
    ("ApiFunction", "dynamodb:Query", "JobsTable"),
    ("ApiFunction", "dynamodb:Query", "JobsTable/index/*"),
    ("ApiFunction", "dynamodb:Query", "LogEntriesTable"),
    ("ApiFunction", "dynamodb:Query", "LogEntriesTable/index/*"),
    ("ApiFunction", "sqs:SendMessage", "HighQueue"),
    ("ApiFunction", "sqs:SendMessage", "NormalQueue"),
    ("ApiFunction", "sqs:SendMessage", "IngestContinueQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "HighQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "NormalQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "IngestContinueQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:GetQueueAttributes", "IngestContinueDeadLetterQueue"),
    // Dead letters (GET /queues/{name}/messages peeks, POST .../redrive moves one or all).
    ("ApiFunction", "sqs:ReceiveMessage", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:DeleteMessage", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:ChangeMessageVisibility", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:StartMessageMoveTask", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:ListMessageMoveTasks", "HighDeadLetterQueue"),
    ("ApiFunction", "sqs:ReceiveMessage", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:DeleteMessage", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:ChangeMessageVisibility", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:StartMessageMoveTask", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:ListMessageMoveTasks", "NormalDeadLetterQueue"),
    ("ApiFunction", "sqs:ReceiveMessage", "IngestContinueDeadLetterQueue"),
    ("ApiFunction", "sqs:DeleteMessage", "IngestContinueDeadLetterQueue"),
    (
        "ApiFunction",
        "sqs:ChangeMessageVisibility",
        "IngestContinueDeadLetterQueue",
    ),
    (
        "ApiFunction",
        "sqs:StartMessageMoveTask",
        "IngestContinueDeadLetterQueue",
    ),
    (
        "ApiFunction",
        "sqs:ListMessageMoveTasks",
        "IngestContinueDeadLetterQueue",
    ),
    ("ApiFunction", "s3:PutObject", "UploadsBucket/uploads/*"),
    // GET /uploads: one ListObjectsV2 page under the caller's uploads/<owner>/.
    ("ApiFunction", "s3:ListBucket", "UploadsBucket?prefix=uploads/*"),
    ("ApiFunction", "s3:PutObject", "UploadsBucket/payloads/*"),
    ("ApiFunction", "s3:DeleteObject", "UploadsBucket/payloads/*"),
    ("ApiFunction", "s3:PutObject", "UploadsBucket/submissions/*"),
    ("ApiFunction", "s3:GetObject", "UploadsBucket/submissions/*"),
    ("ApiFunction", "s3:DeleteObject", "UploadsBucket/submissions/*"),
    // The metrics view: CloudWatch reads that take no resource ("*", see ANY_RESOURCE).
    ("ApiFunction", "cloudwatch:GetMetricData", "*"),
    ("ApiFunction", "cloudwatch:DescribeAlarms", "*"),
    // Pausing a queue: its event source mapping listed (no resource level) and updated (Enabled).
    ("ApiFunction", "lambda:ListEventSourceMappings", "*"),
    ("ApiFunction", "lambda:UpdateEventSourceMapping", "EventSourceMapping/*"),
    // The ingest: its jobs, entries written in batches, continuations, the uploaded files.
    ("IngestFunction", "dynamodb:GetItem", "JobsTable"),
    ("IngestFunction", "dynamodb:PutItem", "JobsTable"),
    ("IngestFunction", "dynamodb:UpdateItem", "JobsTable"),
    ("IngestFunction", "dynamodb:BatchWriteItem", "LogEntriesTable"),
    ("IngestFunction", "sqs:SendMessage", "IngestContinueQueue"),
    ("IngestFunction", "s3:GetObject", "UploadsBucket/uploads/*"),
    // The worker: its jobs and image parts, part messages, archive copies, the store master,
    // reports (listed by status, written and linked under reports/), mail as the stack's sender
    // (the EmailFrom parameter's default), notifications.
    ("WorkerFunction", "dynamodb:GetItem", "JobsTable"),
    ("WorkerFunction", "dynamodb:PutItem", "JobsTable"),
    ("WorkerFunction", "dynamodb:UpdateItem", "JobsTable"),
    ("WorkerFunction", "dynamodb:Query", "JobsTable"),
    ("WorkerFunction", "sqs:SendMessage", "HighQueue"),
    ("WorkerFunction", "sqs:SendMessage", "NormalQueue"),
    ("WorkerFunction", "s3:GetObject", "UploadsBucket/uploads/*"),
    ("WorkerFunction", "s3:GetObject", "UploadsBucket/archive/*"),
    ("WorkerFunction", "s3:PutObject", "UploadsBucket/archive/*"),
    ("WorkerFunction", "s3:GetObject", "UploadsBucket/payloads/*"),
    ("WorkerFunction", "s3:GetObject", "UploadsBucket/config/stores.csv"),
    ("WorkerFunction", "dynamodb:Query", "JobsTable/index/*"),
    ("WorkerFunction", "s3:PutObject", "UploadsBucket/reports/*"),
    ("WorkerFunction", "s3:GetObject", "UploadsBucket/reports/*"),
    ("WorkerFunction", "ses:SendEmail", "SesIdentity/jobs@example.com"),
    ("WorkerFunction", "sns:Publish", "NotificationsTopic"),
    // The sweeper: stale jobs from the status index, requeued or failed.
    ("SweeperFunction", "dynamodb:GetItem", "JobsTable"),
    ("SweeperFunction", "dynamodb:PutItem", "JobsTable"),
    ("SweeperFunction", "dynamodb:UpdateItem", "JobsTable"),
    ("SweeperFunction", "dynamodb:Scan", "JobsTable"),
    ("SweeperFunction", "dynamodb:Query", "JobsTable/index/*"),
    ("SweeperFunction", "sqs:SendMessage", "HighQueue"),
    ("SweeperFunction", "sqs:SendMessage", "NormalQueue"),
    ("SweeperFunction", "sqs:SendMessage", "IngestContinueQueue"),
    // Live updates: the WebSocket routes keep the connections and read the job a subscription
    // names; the stream fan-out finds subscribers, forgets gone connections and posts to them.
    ("LiveFunction", "dynamodb:GetItem", "ConnectionsTable"),
    ("LiveFunction", "dynamodb:PutItem", "ConnectionsTable"),
    ("LiveFunction", "dynamodb:UpdateItem", "ConnectionsTable"),
    ("LiveFunction", "dynamodb:DeleteItem", "ConnectionsTable"),
    ("LiveFunction", "dynamodb:GetItem", "JobsTable"),
    ("NotifyFunction", "dynamodb:Query", "ConnectionsTable"),
    ("NotifyFunction", "dynamodb:GetItem", "ConnectionsTable"),
    ("NotifyFunction", "dynamodb:DeleteItem", "ConnectionsTable"),
    (
        "NotifyFunction",
        "execute-api:ManageConnections",
        "LiveApi/live/POST/@connections/*",
    ),
];

/// The queues SAM lets each function receive from (its SQS event sources): SAM attaches
/// `AWSLambdaSQSQueueExecutionRole` for them, an AWS managed policy on `Resource: "*"` that the
/// template cannot narrow (see the comment above the functions in `template.yaml`).
const RECEIVES: &[(&str, &str)] = &[
    ("IngestFunction", "IngestContinueQueue"),
    ("IngestFunction", "IngestFailedEventsQueue"),
    ("WorkerFunction", "HighQueue"),
    ("WorkerFunction", "NormalQueue"),
    ("SweeperFunction", "HighDeadLetterQueue"),
    ("SweeperFunction", "NormalDeadLetterQueue"),
    ("SweeperFunction", "IngestContinueDeadLetterQueue"),
];

/// The only actions granted on `Resource: "*"`: read-only CloudWatch calls that AWS authorizes
/// on no narrower resource (GetMetricData has no resource-level permissions).
const ANY_RESOURCE: &[&str] = &[
    "cloudwatch:GetMetricData",
    "cloudwatch:DescribeAlarms",
    "lambda:ListEventSourceMappings",
];

const STORE_MASTER_KEY: &str = "config/stores.csv";
const STACK: &str = "stack";
const ACCOUNT: &str = "123456789012";

fn template() -> Template {
    Template::load(&local_bridge::testing::template_path()).unwrap()
}

/// Resolves `Ref` and `Fn::GetAtt` to symbols: a resource's logical id for its `Ref` and `Arn`
/// (`Resource.Attribute` for any other attribute), parameters to `params` or their defaults.
struct Symbols<'a> {
    template: &'a Template,
    params: HashMap<String, String>,
}

impl Resolver for Symbols<'_> {
    fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::StackName" => Some(STACK.into()),
            "AWS::AccountId" => Some(ACCOUNT.into()),
            "AWS::Region" => Some("us-east-1".into()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ if self.params.contains_key(name) => self.params.get(name).cloned(),
            _ => self.template.resources.contains_key(name).then(|| name.to_string()),
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Option<String> {
        let known = self.template.resources.contains_key(resource);
        known.then(|| match attribute {
            "Arn" => resource.to_string(),
            other => format!("{resource}.{other}"),
        })
    }
}

impl Symbols<'_> {
    fn new<'a>(template: &'a Template, store_master_key: &str) -> Symbols<'a> {
        let mut params = template.parameter_defaults();
        params.insert("StoreMasterKey".into(), store_master_key.into());
        Symbols { template, params }
    }

    fn eval(&self, what: &str, v: &Value) -> Value {
        evaluate(v, self).unwrap_or_else(|e: EvalError| panic!("{what}: {e}"))
    }

    /// The uploads bucket's name, as the template names it.
    fn bucket(&self) -> String {
        let bucket = &self.template.resources["UploadsBucket"];
        let name = self.eval("UploadsBucket.BucketName", &bucket.properties["BucketName"]);
        name.as_str().unwrap().to_string()
    }

    /// A resource ARN in the table's notation; an SES identity of this account and region is
    /// `SesIdentity/<address or domain>`.
    fn symbol(&self, resource: &str) -> String {
        let bucket_arn = format!("arn:aws:s3:::{}", self.bucket());
        let identity_arn = format!("arn:aws:ses:us-east-1:{ACCOUNT}:identity/");
        // The WebSocket API's connections: `LiveApi/<stage>/<method>/@connections/*`.
        let execute_api = format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:");
        if let Some(route) = resource.strip_prefix(&execute_api) {
            return route.to_string();
        }
        // This account's and region's event source mappings: `EventSourceMapping/<uuid or *>`.
        let mappings = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:");
        if let Some(uuid) = resource.strip_prefix(&mappings) {
            return format!("EventSourceMapping/{uuid}");
        }
        if let Some(identity) = resource.strip_prefix(&identity_arn) {
            return format!("SesIdentity/{identity}");
        }
        match resource.strip_prefix(&bucket_arn) {
            Some(rest) => format!("UploadsBucket{rest}"),
            None => resource.to_string(),
        }
    }
}

fn functions(t: &Template) -> BTreeMap<&str, &Value> {
    t.resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::Serverless::Function")
        .map(|(id, r)| (id.as_str(), &r.properties))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

/// One `Allow` statement, evaluated: its actions and its resources (raw ARNs).
#[derive(Debug)]
struct Statement {
    function: String,
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
    /// `s3:ListBucket`'s one condition: `StringLike` `s3:prefix` (listing under a named prefix).
    list_prefix: Option<String>,
}

/// The only condition a statement may carry: `s3:ListBucket` alone, limited to keys under a named
/// prefix (`{"StringLike": {"s3:prefix": "uploads/*"}}`); its prefix, checked.
fn list_prefix(at: &str, st: &Value) -> Option<String> {
    let condition = st.get("Condition")?;
    assert_eq!(
        strings(&st["Action"]),
        ["s3:ListBucket"],
        "{at}: a Condition on anything but s3:ListBucket"
    );
    let prefix = condition
        .pointer("/StringLike/s3:prefix")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{at}: only StringLike s3:prefix: {condition}"));
    assert_eq!(condition.as_object().unwrap().len(), 1, "{at}: {condition}");
    assert_eq!(
        condition["StringLike"].as_object().unwrap().len(),
        1,
        "{at}: {condition}"
    );
    assert!(
        prefix.ends_with("/*") && prefix.len() > 2 && prefix.matches('*').count() == 1,
        "{at}: {prefix} is more than one key prefix"
    );
    Some(prefix.to_string())
}

/// Every statement of every function's `Policies`; anything but plain `Statement` lists (SAM
/// policy templates such as `S3CrudPolicy`, managed policy names) fails here.
fn statements(t: &Template, s: &Symbols) -> Vec<Statement> {
    let mut out = Vec::new();
    for (function, props) in functions(t) {
        assert!(
            props.get("Role").is_none(),
            "{function} has a Role of its own: check this test against it"
        );
        let policies = props.get("Policies").cloned().unwrap_or(Value::Array(vec![]));
        let policies = s.eval(&format!("{function}.Policies"), &policies);
        for (i, policy) in policies.as_array().expect("Policies is a list").iter().enumerate() {
            let list = policy.get("Statement").and_then(Value::as_array).unwrap_or_else(|| {
                panic!("{function}.Policies[{i}] is not a Statement list (a SAM policy template or a managed policy?): {policy}")
            });
            assert_eq!(
                policy.as_object().unwrap().len(),
                1,
                "{function}.Policies[{i}]: only Statement"
            );
            for st in list {
                let sid = st["Sid"].as_str().unwrap_or("(no Sid)").to_string();
                let keys: BTreeSet<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
                let allowed: BTreeSet<&str> = ["Sid", "Effect", "Action", "Resource", "Condition"].into();
                assert!(
                    keys.is_subset(&allowed),
                    "{function} {sid}: only Sid, Effect, Action, Resource and ListBucket's prefix Condition (no NotAction or NotResource): {keys:?}"
                );
                let list_prefix = list_prefix(&format!("{function} {sid}"), st);
                assert_eq!(st["Effect"], "Allow", "{function} {sid}");
                out.push(Statement {
                    function: function.to_string(),
                    sid,
                    actions: strings(&st["Action"]),
                    resources: strings(&st["Resource"]),
                    list_prefix,
                });
            }
        }
    }
    out
}

#[test]
fn every_function_is_allowed_exactly_the_calls_its_code_makes() {
    let t = template();
    let s = Symbols::new(&t, STORE_MASTER_KEY);
    let mut granted = BTreeSet::new();
    for st in statements(&t, &s) {
        for action in &st.actions {
            for resource in &st.resources {
                let symbol = match &st.list_prefix {
                    Some(prefix) => format!("{}?prefix={prefix}", s.symbol(resource)),
                    None => s.symbol(resource),
                };
                granted.insert((st.function.clone(), action.clone(), symbol));
            }
        }
    }
    let expected: BTreeSet<(String, String, String)> = EXPECTED
        .iter()
        .map(|(f, a, r)| (f.to_string(), a.to_string(), r.to_string()))
        .collect();
    let extra: Vec<_> = granted.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&granted).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "template.yaml grants more than the table: {extra:#?}\nand less: {missing:#?}"
    );
    let with_policies: BTreeSet<&str> = EXPECTED.iter().map(|(f, ..)| *f).collect();
    let all: BTreeSet<&str> = functions(&t).into_keys().collect();
    assert_eq!(with_policies, all, "every function has its lines in the table");
}

#[test]
fn no_statement_grants_wildcard_actions_whole_buckets_or_every_resource() {
    let t = template();
    let s = Symbols::new(&t, STORE_MASTER_KEY);
    let statements = statements(&t, &s);
    assert!(!statements.is_empty());
    for st in &statements {
        let at = format!("{} {}", st.function, st.sid);
        for action in &st.actions {
            assert!(
                !action.contains('*') && !action.contains('?'),
                "{at}: wildcard action {action}"
            );
            let (service, name) = action.split_once(':').unwrap_or_else(|| panic!("{at}: {action}"));
            assert!(
                [
                    "dynamodb",
                    "sqs",
                    "s3",
                    "sns",
                    "ses",
                    "execute-api",
                    "cloudwatch",
                    "lambda"
                ]
                .contains(&service),
                "{at}: {action}"
            );
            // The one Scan: the sweeper's re-keying pass after a shard count changed (a piece a
            // minute, `DynamoJobStore::keep_keys_current`), never a listing.
            if at != "SweeperFunction RekeyJobs" {
                assert_ne!(name, "Scan", "{at}: listings come from indexes, never a Scan");
            }
        }
        for resource in &st.resources {
            let symbol = s.symbol(resource);
            if symbol == "*" && st.actions.iter().all(|a| ANY_RESOURCE.contains(&a.as_str())) {
                continue;
            }
            assert!(!symbol.is_empty() && symbol != "*", "{at}: Resource \"*\"");
            assert!(
                !symbol.starts_with("arn:"),
                "{at}: {resource} is none of the stack's resources"
            );
            if let Some(identity) = symbol.strip_prefix("SesIdentity/") {
                // One sender, named: no wildcard identity.
                assert!(
                    !identity.is_empty() && !identity.contains(['*', '?', '$']),
                    "{at}: {resource} is more than one identity"
                );
                assert!(st.actions.iter().all(|a| a.starts_with("ses:")), "{at}");
            } else if let Some(key) = symbol.strip_prefix("UploadsBucket/") {
                // Object keys under a named prefix only: never the whole bucket.
                let prefix = key.split('*').next().unwrap();
                assert!(
                    !key.contains('*') || (key.ends_with("/*") && prefix.len() > 1 && key.matches('*').count() == 1),
                    "{at}: {resource} is more than one key prefix"
                );
                assert!(
                    !key.starts_with('*') && !key.contains('?'),
                    "{at}: bucket-wide {resource}"
                );
            } else if symbol.starts_with("EventSourceMapping/") {
                // Event source mappings: Enabled flipped (pause/resume), nothing else.
                assert!(
                    st.actions.iter().all(|a| a == "lambda:UpdateEventSourceMapping"),
                    "{at}"
                );
            } else if st.actions.iter().any(|a| a.starts_with("execute-api:")) {
                // Posting to the WebSocket API's connections, one stage, POST only.
                assert!(st.actions.iter().all(|a| a == "execute-api:ManageConnections"), "{at}");
                let (api, route) = symbol.split_once('/').unwrap_or((&symbol, ""));
                assert_eq!(t.resources[api].kind, "AWS::ApiGatewayV2::Api", "{at}: {resource}");
                assert_eq!(route, "live/POST/@connections/*", "{at}: {resource}");
            } else if symbol == "UploadsBucket" && st.list_prefix.is_some() {
                // Listing the bucket, under a named prefix only (the Condition, checked above).
                assert!(st.actions.iter().all(|a| a == "s3:ListBucket"), "{at}");
            } else {
                assert_ne!(symbol, "UploadsBucket", "{at}: bucket-level grant {resource}");
                // A table, a queue, or a table's indexes.
                let (name, rest) = symbol.split_once('/').unwrap_or((&symbol, ""));
                assert!(t.resources.contains_key(name), "{at}: {resource}");
                assert!(rest.is_empty() || rest == "index/*", "{at}: {resource}");
            }
            if st.actions.iter().any(|a| a.starts_with("s3:")) {
                assert!(
                    symbol.starts_with("UploadsBucket/") || (symbol == "UploadsBucket" && st.list_prefix.is_some()),
                    "{at}: S3 actions on {resource}"
                );
            }
        }
    }
}

#[test]
fn the_store_master_grant_names_the_configured_key_and_nothing_when_it_is_empty() {
    let t = template();
    let grant = |key: &str| {
        let s = Symbols::new(&t, key);
        let st = statements(&t, &s)
            .into_iter()
            .find(|st| st.function == "WorkerFunction" && st.sid == "StoreMaster")
            .expect("the worker's StoreMaster statement");
        assert_eq!(st.actions, ["s3:GetObject"]);
        st.resources.iter().map(|r| s.symbol(r)).collect::<Vec<_>>()
    };
    assert_eq!(grant("config/stores.csv"), ["UploadsBucket/config/stores.csv"]);
    // Empty (the sample built into the worker): the empty key, which no object can have.
    assert_eq!(grant(""), ["UploadsBucket/"]);
    // The worker reads the same parameter, and the bucket the policies name is the functions' own.
    let s = Symbols::new(&t, "config/stores.csv");
    let worker = &t.resources["WorkerFunction"].properties;
    let env = s.eval("WorkerFunction environment", &worker["Environment"]["Variables"]);
    assert_eq!(env["STORE_MASTER_KEY"], "config/stores.csv");
    let globals = s.eval("Globals", &t.globals["Function"]["Environment"]["Variables"]);
    assert_eq!(globals["UPLOADS_BUCKET"], s.bucket().as_str());
}

#[test]
fn the_mail_grant_names_exactly_the_configured_sender() {
    let t = template();
    let grant = |from: &str| {
        let mut s = Symbols::new(&t, STORE_MASTER_KEY);
        s.params.insert("EmailFrom".into(), from.into());
        let st = statements(&t, &s)
            .into_iter()
            .find(|st| st.function == "WorkerFunction" && st.sid == "SendMail")
            .expect("the worker's SendMail statement");
        assert_eq!(st.actions, ["ses:SendEmail"]);
        let resources: Vec<String> = st.resources.iter().map(|r| s.symbol(r)).collect();
        // The worker sends from the same parameter the policy names, and the stack verifies it.
        let worker = &t.resources["WorkerFunction"].properties;
        let env = s.eval("WorkerFunction environment", &worker["Environment"]["Variables"]);
        assert_eq!(env["EMAIL_FROM"], from);
        let identity = s.eval("SenderIdentity", &t.resources["SenderIdentity"].properties);
        assert_eq!(identity["EmailIdentity"], from);
        resources
    };
    assert_eq!(grant("jobs@example.com"), ["SesIdentity/jobs@example.com"]);
    assert_eq!(grant("ops@acme.test"), ["SesIdentity/ops@acme.test"]);
    // Only the worker may send mail or publish notifications.
    let s = Symbols::new(&t, STORE_MASTER_KEY);
    for st in statements(&t, &s) {
        if st
            .actions
            .iter()
            .any(|a| a.starts_with("ses:") || a.starts_with("sns:"))
        {
            assert_eq!(st.function, "WorkerFunction", "{}", st.sid);
        }
    }
}

#[test]
fn functions_receive_only_from_their_own_queues_and_s3_events_only_where_they_may_read() {
    let t = template();
    let s = Symbols::new(&t, STORE_MASTER_KEY);
    let mut receives = BTreeSet::new();
    let mut s3_prefixes: Vec<(String, String)> = Vec::new();
    for (function, props) in functions(&t) {
        let events = props
            .get("Events")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, event) in events {
            let event = s.eval(&format!("{function}.Events.{name}"), &event);
            match event["Type"].as_str().unwrap() {
                "SQS" => {
                    receives.insert((
                        function.to_string(),
                        s.symbol(event["Properties"]["Queue"].as_str().unwrap()),
                    ));
                }
                "S3" => {
                    let rules = event["Properties"]["Filter"]["S3Key"]["Rules"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let prefix = rules
                        .iter()
                        .find(|r| r["Name"] == "prefix")
                        .and_then(|r| r["Value"].as_str())
                        .unwrap_or_else(|| panic!("{function}.Events.{name}: an S3 event without a prefix rule"));
                    s3_prefixes.push((function.to_string(), prefix.to_string()));
                }
                _ => {}
            }
        }
    }
    let expected: BTreeSet<(String, String)> = RECEIVES.iter().map(|(f, q)| (f.to_string(), q.to_string())).collect();
    assert_eq!(receives, expected);
    // An object event reaches a function only under a prefix it may read.
    assert!(!s3_prefixes.is_empty());
    for (function, prefix) in s3_prefixes {
        let readable = EXPECTED.iter().any(|(f, a, r)| {
            *f == function
                && *a == "s3:GetObject"
                && r.strip_prefix("UploadsBucket/")
                    .and_then(|k| k.strip_suffix('*'))
                    .is_some_and(|k| prefix.starts_with(k))
        });
        assert!(readable, "{function} is notified of {prefix}* objects it may not read");
    }
}
