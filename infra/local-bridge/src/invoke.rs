//! Calling a function: through the Lambda Invoke API (what `cargo lambda watch` serves), or
//! in-process for tests of the bridge itself.
//!
//! Every invocation is bounded. [`Bounded`] stops waiting at the function's `Timeout` from the
//! template (plus a short grace for the local machinery), as Lambda stops a function at its
//! timeout; an invocation that overruns, or whose process died under it (`cargo lambda watch`
//! restarts function processes when their sources change, and the invocation in flight then never
//! answers), is a function error like any other: [`InvokeError::Timeout`].
//!
//! `cargo lambda watch` 1.9.2 does not tell a function its deadline: every invocation gets
//! `Lambda-Runtime-Deadline-Ms: 600000` (ten minutes after the Unix epoch, a constant in
//! `crates/cargo-lambda-watch/src/runtime/functions_router.rs`), and no flag, header or variable
//! changes it (`--timeout` only bounds the HTTP request, the runtime API's long poll included).
//! A function locally sees a deadline long past; only the bridge knows the real one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};

/// How an invocation went wrong.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and returned an error (Lambda's `X-Amz-Function-Error`).
    #[error("function error {error_type}: {message}")]
    Function { error_type: String, message: String },
    /// No answer within the function's `Timeout`: it overran, or its process died.
    #[error("{function} did not answer within its Timeout of {} s (+{} s grace): it overran or its process died", limit.as_secs(), grace.as_secs())]
    Timeout {
        function: String,
        limit: Duration,
        grace: Duration,
    },
    /// The function could not be reached.
    #[error("invoke failed: {0}")]
    Transport(String),
}

impl InvokeError {
    /// The error as Lambda reports it to callers and destinations (`errorType`, `errorMessage`).
    pub fn payload(&self, request_id: &str) -> Value {
        match self {
            InvokeError::Function { error_type, message } => json!({"errorType": error_type, "errorMessage": message}),
            InvokeError::Timeout { limit, .. } => json!({
                "errorType": "Sandbox.Timedout",
                "errorMessage": format!("RequestId: {request_id} Error: Task timed out after {}.00 seconds", limit.as_secs()),
            }),
            InvokeError::Transport(e) => json!({"errorType": "ServiceException", "errorMessage": e}),
        }
    }
}

/// Synchronous (`RequestResponse`) invocation of a function by name.
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError>;
}

/// The Lambda Invoke API at `endpoint` (e.g. `http://127.0.0.1:9000` for `cargo lambda watch`).
#[derive(Clone, Debug)]
pub struct LambdaApi {
    http: reqwest::Client,
    endpoint: String,
}

impl LambdaApi {
    /// `backstop` bounds one HTTP call; the function's own limit comes from [`Bounded`].
    pub fn new(endpoint: impl Into<String>, backstop: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(backstop)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        LambdaApi {
            http,
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
        }
    }
}

#[async_trait]
impl Invoker for LambdaApi {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.endpoint);
        let mut request = self.http.post(&url).json(payload);
        // An HTTP API request's trace goes with the Invoke call, as API Gateway sends it.
        // (`cargo lambda watch` 1.9.2 ignores it and starts a trace of its own per invocation.)
        if let Some(trace) = payload.pointer("/headers/x-amzn-trace-id").and_then(Value::as_str) {
            request = request.header(crate::gateway::TRACE_HEADER, trace);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| InvokeError::Transport(format!("{url}: {e}")))?;
        let status = resp.status();
        let function_error = resp.headers().get("x-amz-function-error").is_some();
        let body = resp.bytes().await.map_err(|e| InvokeError::Transport(e.to_string()))?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        // AWS answers 200 + X-Amz-Function-Error; cargo lambda watch answers 500 with the same body.
        if function_error || status.is_server_error() {
            let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
            return Err(InvokeError::Function {
                error_type: field("errorType").unwrap_or_else(|| format!("HTTP {status}")),
                message: field("errorMessage").unwrap_or_else(|| value.to_string()),
            });
        }
        if !status.is_success() {
            return Err(InvokeError::Transport(format!("{url}: HTTP {status}: {value}")));
        }
        Ok(value)
    }
}

/// Invocations bounded by each function's `Timeout`, as Lambda bounds them.
pub struct Bounded {
    inner: Arc<dyn Invoker>,
    timeouts: HashMap<String, Duration>,
    grace: Duration,
}

impl Bounded {
    /// `timeouts`: the functions' `Timeout`s by name. `grace`: what the local machinery may add
    /// (an invocation waiting for a free process of `cargo lambda watch`).
    pub fn new(inner: Arc<dyn Invoker>, timeouts: HashMap<String, Duration>, grace: Duration) -> Bounded {
        Bounded { inner, timeouts, grace }
    }

    /// The function's `Timeout`; Lambda's default (3 s) for a name the template does not have.
    pub fn timeout(&self, function: &str) -> Duration {
        self.timeouts.get(function).copied().unwrap_or(Duration::from_secs(3))
    }
}

#[async_trait]
impl Invoker for Bounded {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let limit = self.timeout(function);
        match tokio::time::timeout(limit + self.grace, self.inner.invoke(function, payload)).await {
            Ok(result) => result,
            Err(_) => Err(InvokeError::Timeout {
                function: function.to_string(),
                limit,
                grace: self.grace,
            }),
        }
    }
}

/// Invokes `function` once with `{}` so that `cargo lambda watch` builds and starts it before
/// events flow; any answer, a function error included, means it runs. Returns how long it took.
pub async fn warm_up(invoker: &dyn Invoker, function: &str, limit: Duration) -> Result<Duration, InvokeError> {
    let started = Instant::now();
    tracing::info!(
        function,
        limit_secs = limit.as_secs(),
        "warming up: waiting for cargo lambda watch to build and start the function"
    );
    match tokio::time::timeout(limit, invoker.invoke(function, &json!({}))).await {
        Ok(Ok(_) | Err(InvokeError::Function { .. })) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(InvokeError::Timeout {
            function: function.to_string(),
            limit,
            grace: Duration::ZERO,
        }),
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send>>;

/// An in-process function, for testing the event sources without a Lambda emulator.
pub struct InProcess<F>(pub F);

#[async_trait]
impl<F> Invoker for InProcess<F>
where
    F: Fn(String, Value) -> BoxFuture + Send + Sync,
{
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        (self.0)(function.to_string(), payload.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(secs: u64) -> Arc<dyn Invoker> {
        Arc::new(InProcess(move |_: String, _: Value| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                Ok(json!("done"))
            }) as BoxFuture
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_that_overruns_its_timeout_is_a_timeout_error() {
        let bounded = Bounded::new(
            sleeper(60),
            HashMap::from([("api".to_string(), Duration::from_secs(29))]),
            Duration::from_secs(2),
        );
        let started = tokio::time::Instant::now();
        let err = bounded.invoke("api", &json!({})).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(31));
        assert!(
            matches!(err, InvokeError::Timeout { ref function, limit, .. } if function == "api" && limit.as_secs() == 29)
        );
        assert!(err.to_string().contains("within its Timeout of 29 s"), "{err}");
        assert_eq!(
            err.payload("r1")["errorMessage"],
            "RequestId: r1 Error: Task timed out after 29.00 seconds"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_within_its_timeout_answers() {
        let bounded = Bounded::new(
            sleeper(50),
            HashMap::from([("worker".to_string(), Duration::from_secs(60))]),
            Duration::ZERO,
        );
        assert_eq!(bounded.invoke("worker", &json!({})).await.unwrap(), "done");
    }

    #[tokio::test(start_paused = true)]
    async fn warm_up_is_bounded_and_counts_a_function_error_as_running() {
        let failing: Arc<dyn Invoker> = Arc::new(InProcess(|_: String, _: Value| {
            Box::pin(async {
                Err(InvokeError::Function {
                    error_type: "Deserialize".into(),
                    message: "not an event".into(),
                })
            }) as BoxFuture
        }));
        assert!(warm_up(failing.as_ref(), "api", Duration::from_secs(5)).await.is_ok());
        let err = warm_up(sleeper(600).as_ref(), "api", Duration::from_secs(300))
            .await
            .unwrap_err();
        assert!(matches!(err, InvokeError::Timeout { .. }));
    }
}
