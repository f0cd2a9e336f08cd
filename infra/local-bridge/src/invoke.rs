//! Calling a function: through the Lambda Invoke API (what `cargo lambda watch` serves), or
//! in-process for tests of the bridge itself.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// How an invocation went wrong.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and returned an error (Lambda's `X-Amz-Function-Error`).
    #[error("function error {error_type}: {message}")]
    Function { error_type: String, message: String },
    /// The function could not be reached or did not answer in time.
    #[error("invoke failed: {0}")]
    Transport(String),
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
    /// `timeout` bounds one invocation; leave room for `cargo lambda watch` compiling a function
    /// on its first call.
    pub fn new(endpoint: impl Into<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
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
        let resp = self
            .http
            .post(&url)
            .json(payload)
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
