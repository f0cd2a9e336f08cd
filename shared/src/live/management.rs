//! Posting to a WebSocket connection: API Gateway's Management API (`@connections/{id}`).
//!
//! The endpoint is the stage's URL, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
//! which the template passes as `LIVE_MANAGEMENT_URL`; the SDK's own variable
//! `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` overrides it (the local stack points it at the
//! bridge). No other endpoint is known to the code.

use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::error::Error;

/// Why a post did not reach its connection.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// 410: the client is gone; its connection must be forgotten.
    #[error("connection gone")]
    Gone,
    #[error(transparent)]
    Failed(Error),
}

#[async_trait]
pub trait Management: Send + Sync {
    /// Sends `data` as one text frame to the connection.
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError>;
}

/// The real Management API.
#[derive(Clone, Debug)]
pub struct ApiGatewayManagement {
    client: aws_sdk_apigatewaymanagement::Client,
    endpoint: String,
}

impl ApiGatewayManagement {
    /// `stage_url`: the template's `LIVE_MANAGEMENT_URL`, unless the environment names the
    /// service's endpoint (`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`, or `AWS_ENDPOINT_URL`).
    pub fn new(config: &SdkConfig, stage_url: &str) -> Self {
        let from_env = std::env::var("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| config.endpoint_url().map(str::to_owned));
        let builder = aws_sdk_apigatewaymanagement::config::Builder::from(config);
        let endpoint = from_env.unwrap_or_else(|| stage_url.to_string());
        let builder = builder.endpoint_url(&endpoint);
        ApiGatewayManagement {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(builder.build()),
            endpoint,
        }
    }

    /// Where posts go.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[async_trait]
impl Management for ApiGatewayManagement {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        match self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(data))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Err(PostError::Gone),
            Err(e) => Err(PostError::Failed(Error::aws("PostToConnection", e))),
        }
    }
}

/// A Management API in memory: records what each connection received; connections marked gone
/// answer 410, failing ones an error.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryManagement {
    inner: std::sync::Mutex<MemoryInner>,
}

#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
struct MemoryInner {
    posts: Vec<(String, Vec<u8>)>,
    gone: std::collections::BTreeSet<String>,
    failing: std::collections::BTreeSet<String>,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryManagement {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn gone(&self, id: &str) {
        self.inner.lock().expect("lock").gone.insert(id.into());
    }

    pub fn failing(&self, id: &str, fail: bool) {
        let mut inner = self.inner.lock().expect("lock");
        if fail {
            inner.failing.insert(id.into());
        } else {
            inner.failing.remove(id);
        }
    }

    /// The messages one connection received, parsed as JSON.
    pub fn received(&self, id: &str) -> Vec<serde_json::Value> {
        let inner = self.inner.lock().expect("lock");
        inner
            .posts
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, d)| serde_json::from_slice(d).expect("JSON"))
            .collect()
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl Management for MemoryManagement {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        let mut inner = self.inner.lock().expect("lock");
        if inner.gone.contains(connection_id) {
            return Err(PostError::Gone);
        }
        if inner.failing.contains(connection_id) {
            return Err(PostError::Failed(Error::Internal("503 from the management API".into())));
        }
        inner.posts.push((connection_id.to_string(), data.to_vec()));
        Ok(())
    }
}
