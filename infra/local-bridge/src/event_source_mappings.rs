//! The SQS event source mappings as Lambda's API shows them, and their `Enabled` flag: the subset
//! of the Lambda API a console needs to pause and resume a queue the AWS way
//! (`ListEventSourceMappings`, `GetEventSourceMapping`, `UpdateEventSourceMapping` with `Enabled`),
//! served on its own port (`AWS_ENDPOINT_URL_LAMBDA` of the functions). JSON shapes are AWS's
//! (`UUID`, `EventSourceArn`, `FunctionArn`, `State`, `LastModified` in epoch seconds, ...).
//!
//! A disabled mapping stops receiving, as on Lambda: its pollers finish the batch in hand, make
//! what a receive in flight got visible again, and wait; the messages stay in the queue until the
//! mapping is enabled again. Each mapping's UUID is derived from the stack, function and queue,
//! so it stays the same across restarts, and the flags are kept in `STATE_DIR/event-source-mappings.json`
//! (a disabled mapping stays disabled after a bridge restart, as it does on AWS).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::provision::{ACCOUNT, REGION, SqsSource};

/// The API's path prefix (Lambda's API version).
const PREFIX: &str = "/2015-03-31/event-source-mappings";

/// One SQS event source mapping.
pub struct Mapping {
    pub uuid: String,
    pub function: String,
    pub source: SqsSource,
    enabled: watch::Sender<bool>,
    /// When `Enabled` last changed (or the bridge started), epoch seconds.
    last_modified: Mutex<f64>,
}

impl Mapping {
    /// The flag the pollers follow.
    pub fn enabled(&self) -> watch::Receiver<bool> {
        self.enabled.subscribe()
    }

    pub fn is_enabled(&self) -> bool {
        *self.enabled.borrow()
    }

    fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.function)
    }

    /// Lambda's `EventSourceMappingConfiguration`; `state` as `GetEventSourceMapping` names it.
    fn configuration(&self, state: &str) -> Value {
        let types: Vec<&str> = if self.source.report_batch_item_failures {
            vec!["ReportBatchItemFailures"]
        } else {
            vec![]
        };
        json!({
            "UUID": self.uuid,
            "EventSourceArn": self.source.queue_arn,
            "FunctionArn": self.function_arn(),
            "BatchSize": self.source.batch_size,
            "MaximumBatchingWindowInSeconds": self.source.batching_window_secs,
            "FunctionResponseTypes": types,
            "LastModified": *self.last_modified.lock().unwrap(),
            "State": state,
            "StateTransitionReason": "USER_INITIATED",
        })
    }

    fn state(&self) -> &'static str {
        if self.is_enabled() { "Enabled" } else { "Disabled" }
    }
}

/// Every SQS event source mapping of the stack.
pub struct Mappings {
    list: Vec<Arc<Mapping>>,
    /// Where the flags are kept (`None`: not kept).
    state_file: Option<PathBuf>,
}

fn now_secs() -> f64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64 / 1000.0).floor()
}

/// A stable UUID for `(stack, function, queue ARN)`: two FNV-1a hashes, version nibble 8
/// (custom), variant RFC 4122.
fn stable_uuid(stack: &str, function: &str, queue_arn: &str) -> String {
    let fnv = |seed: u64| {
        let mut h: u64 = 0xcbf29ce484222325 ^ seed;
        for b in format!("{stack}\u{0}{function}\u{0}{queue_arn}").bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x9e3779b97f4a7c15).to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

impl Mappings {
    /// One mapping per SQS source, enabled unless `state_file` says it was disabled.
    pub fn new(stack: &str, sources: &[SqsSource], state_file: Option<PathBuf>) -> Arc<Mappings> {
        let kept: BTreeMap<String, bool> = state_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let list = sources
            .iter()
            .map(|s| {
                let uuid = stable_uuid(stack, &s.function, &s.queue_arn);
                let enabled = kept.get(&uuid).copied().unwrap_or(true);
                if !enabled {
                    tracing::warn!(%uuid, function = %s.function, queue = %s.queue_arn, "event source mapping disabled (kept from before)");
                }
                Arc::new(Mapping {
                    uuid,
                    function: s.function.clone(),
                    source: s.clone(),
                    enabled: watch::Sender::new(enabled),
                    last_modified: Mutex::new(now_secs()),
                })
            })
            .collect();
        Arc::new(Mappings { list, state_file })
    }

    pub fn all(&self) -> &[Arc<Mapping>] {
        &self.list
    }

    /// The mapping of `source` (same function and queue).
    pub fn of(&self, source: &SqsSource) -> Option<Arc<Mapping>> {
        self.list
            .iter()
            .find(|m| m.source.function == source.function && m.source.queue_arn == source.queue_arn)
            .cloned()
    }

    pub fn get(&self, uuid: &str) -> Option<Arc<Mapping>> {
        self.list.iter().find(|m| m.uuid == uuid).cloned()
    }

    /// Sets a mapping's flag (and keeps it, best effort).
    pub fn set_enabled(&self, mapping: &Mapping, enabled: bool) {
        let changed = mapping.enabled.send_replace(enabled) != enabled;
        if changed {
            *mapping.last_modified.lock().unwrap() = now_secs();
            tracing::info!(uuid = %mapping.uuid, function = %mapping.function, queue = %mapping.source.queue_arn, enabled, "event source mapping updated");
        }
        if let Some(path) = &self.state_file {
            let flags: BTreeMap<&str, bool> = self.list.iter().map(|m| (m.uuid.as_str(), m.is_enabled())).collect();
            let text = serde_json::to_vec_pretty(&flags).expect("flags serialize");
            if let Err(e) = std::fs::write(path, text) {
                tracing::warn!(path = %path.display(), error = %e, "could not keep the event source mappings' flags");
            }
        }
    }

    /// Serves the Lambda API subset until `shutdown` flips.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        crate::gateway::serve_http("lambda api", listener, shutdown, move |req, _peer| {
            let me = self.clone();
            async move { me.handle(req).await }
        })
        .await
    }

    /// One request of the Lambda API (event source mappings only).
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match tokio::time::timeout(Duration::from_secs(10), Limited::new(body, 64 * 1024).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "body too large or too slow",
                );
            }
        };
        let query: Vec<(String, String)> = crate::gateway::url_pairs(parts.uri.query().unwrap_or_default());
        self.answer(&parts.method, parts.uri.path(), &query, &body)
    }

    /// The answer to `method path?query` with `body`; public for tests without sockets.
    pub fn answer(
        &self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "only the event source mapping calls of the Lambda API are served here",
            );
        };
        let uuid = rest.trim_matches('/');
        match (method, uuid) {
            (&Method::GET, "") => self.list(query),
            (&Method::GET, uuid) => match self.get(uuid) {
                Some(m) => ok(StatusCode::OK, m.configuration(m.state())),
                None => not_found(uuid),
            },
            (&Method::PUT, uuid) if !uuid.is_empty() => {
                let Some(m) = self.get(uuid) else {
                    return not_found(uuid);
                };
                let update: Value = match serde_json::from_slice(body) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "InvalidRequestContentException",
                            "the body is not a JSON object",
                        );
                    }
                };
                for key in update.as_object().unwrap().keys() {
                    if key != "Enabled" {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "InvalidParameterValueException",
                            &format!("{key}: the local bridge updates Enabled only"),
                        );
                    }
                }
                let Some(enabled) = update.get("Enabled").map(|v| v.as_bool()) else {
                    return ok(StatusCode::ACCEPTED, m.configuration(m.state()));
                };
                let Some(enabled) = enabled else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameterValueException",
                        "Enabled: must be true or false",
                    );
                };
                self.set_enabled(&m, enabled);
                // As Lambda answers: the transition under way.
                ok(
                    StatusCode::ACCEPTED,
                    m.configuration(if enabled { "Enabling" } else { "Disabling" }),
                )
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnknownOperationException",
                "List (GET), Get (GET /{UUID}) and Update (PUT /{UUID}) only",
            ),
        }
    }

    fn list(&self, query: &[(String, String)]) -> Response<Full<Bytes>> {
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let arn = param("EventSourceArn");
        let function = param("FunctionName");
        let start: usize = match param("Marker").map(str::parse) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Marker"),
        };
        let max: usize = match param("MaxItems").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=10_000).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    "MaxItems: 1 to 10000",
                );
            }
        };
        let matching: Vec<&Arc<Mapping>> = self
            .list
            .iter()
            .filter(|m| arn.is_none_or(|a| a == m.source.queue_arn))
            .filter(|m| {
                function.is_none_or(|f| {
                    f == m.function || f == m.function_arn() || f.ends_with(&format!(":function:{}", m.function))
                })
            })
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(max)
            .map(|m| m.configuration(m.state()))
            .collect();
        let next = (start + max < matching.len()).then(|| (start + max).to_string());
        ok(StatusCode::OK, json!({"EventSourceMappings": page, "NextMarker": next}))
    }
}

fn ok(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// Lambda's error shape: the type in `x-amzn-ErrorType`, `{Type, Message}` in the body.
fn error(status: StatusCode, kind: &'static str, message: &str) -> Response<Full<Bytes>> {
    let mut r = ok(status, json!({"Type": "User", "Message": message}));
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    r
}

fn not_found(uuid: &str) -> Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("The resource you requested does not exist. (Service: Lambda, UUID: {uuid})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(function: &str, queue: &str) -> SqsSource {
        SqsSource {
            function: function.into(),
            queue_url: format!("http://127.0.0.1:9/queue/{REGION}/{ACCOUNT}/{queue}"),
            queue_arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
            batch_size: 10,
            batching_window_secs: 0,
            report_batch_item_failures: true,
            max_receive_count: Some(3),
            dead_letter_queue_url: None,
        }
    }

    fn body(r: Response<Full<Bytes>>) -> (StatusCode, Option<String>, Value) {
        let status = r.status();
        let kind = r
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = futures::executor::block_on(r.into_body().collect()).unwrap().to_bytes();
        (status, kind, serde_json::from_slice(&bytes).unwrap())
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn mappings_are_listed_by_queue_and_function_updated_by_uuid_and_kept_across_restarts() {
        let dir = std::env::temp_dir().join(format!("esm-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("event-source-mappings.json");
        let sources = [
            source("worker", "high"),
            source("worker", "normal"),
            source("sweeper", "high-dlq"),
        ];
        let m = Mappings::new("s", &sources, Some(file.clone()));
        let list = |pairs: &[(&str, &str)]| body(m.answer(&Method::GET, PREFIX, &q(pairs), b""));
        let (status, _, all) = list(&[]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all["EventSourceMappings"].as_array().unwrap().len(), 3);
        // By queue ARN and function (by name or ARN), as the api asks.
        let arn = &sources[1].queue_arn;
        for function in ["worker", "arn:aws:lambda:us-east-1:000000000000:function:worker"] {
            let (_, _, one) = list(&[("EventSourceArn", arn), ("FunctionName", function)]);
            let one = one["EventSourceMappings"].as_array().unwrap();
            assert_eq!(one.len(), 1, "{function}");
            assert_eq!(one[0]["EventSourceArn"], arn.as_str());
            assert_eq!(one[0]["State"], "Enabled");
            assert_eq!(one[0]["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
        }
        let (_, _, none) = list(&[("EventSourceArn", arn), ("FunctionName", "sweeper")]);
        assert_eq!(none["EventSourceMappings"], json!([]));
        // Pages: MaxItems and NextMarker.
        let (_, _, page) = list(&[("MaxItems", "2")]);
        assert_eq!(page["EventSourceMappings"].as_array().unwrap().len(), 2);
        let (_, _, rest) = list(&[("MaxItems", "2"), ("Marker", page["NextMarker"].as_str().unwrap())]);
        assert_eq!(rest["EventSourceMappings"].as_array().unwrap().len(), 1);
        assert_eq!(rest["NextMarker"], Value::Null);

        let uuid = m.of(&sources[1]).unwrap().uuid.clone();
        let path = format!("{PREFIX}/{uuid}");
        let (status, _, updated) = body(m.answer(&Method::PUT, &path, &[], br#"{"Enabled": false}"#));
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(updated["State"], "Disabling");
        assert!(!m.of(&sources[1]).unwrap().is_enabled());
        assert!(m.of(&sources[0]).unwrap().is_enabled(), "only that mapping");
        let (_, _, got) = body(m.answer(&Method::GET, &path, &[], b""));
        assert_eq!(got["State"], "Disabled");
        assert_eq!(got["UUID"], uuid.as_str());

        // Errors as Lambda gives them.
        let (status, kind, _) = body(m.answer(&Method::GET, &format!("{PREFIX}/nope"), &[], b""));
        assert_eq!(
            (status, kind.as_deref()),
            (StatusCode::NOT_FOUND, Some("ResourceNotFoundException"))
        );
        let (status, kind, err) = body(m.answer(&Method::PUT, &path, &[], br#"{"BatchSize": 5}"#));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind.as_deref(), Some("InvalidParameterValueException"));
        assert!(err["Message"].as_str().unwrap().starts_with("BatchSize"), "{err}");
        let (status, _, _) = body(m.answer(&Method::PUT, &path, &[], br#"{"Enabled": "no"}"#));
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // A restart (same stack, same file): same UUIDs, the flag kept.
        let again = Mappings::new("s", &sources, Some(file.clone()));
        assert_eq!(again.of(&sources[1]).unwrap().uuid, uuid);
        assert!(!again.of(&sources[1]).unwrap().is_enabled());
        assert!(again.of(&sources[0]).unwrap().is_enabled());
        // Another stack's mappings have other UUIDs.
        let other = Mappings::new("t", &sources, None);
        assert_ne!(other.of(&sources[1]).unwrap().uuid, uuid);
        assert!(other.of(&sources[1]).unwrap().is_enabled());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
