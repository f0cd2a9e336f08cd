//! What the peak-RSS run puts around the real ingest binary:
//! - a minimal Lambda Runtime API: one event, then a `next` long poll that never answers;
//! - a thin DynamoDB endpoint that forwards every call to the emulator, except `BatchWriteItem`
//!   calls into the entries table, which it acknowledges (`{"UnprocessedItems":{}}`) and drops, so
//!   that hundreds of MB of lines do not take hours in moto. It counts what it dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::sync::oneshot;

type Reply = Response<Full<Bytes>>;

/// Serves `handler` on 127.0.0.1 (a free port), HTTP/1.1 with keep-alive, until the process ends.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The function's answer to the one invocation: `Ok(response)` or `Err(error body)`.
pub type Answer = Result<Bytes, Bytes>;

/// A Runtime API that hands out `event` once; returns its address (for `AWS_LAMBDA_RUNTIME_API`)
/// and where the function's answer arrives.
pub async fn runtime_api(event: serde_json::Value, deadline: Duration) -> (SocketAddr, oneshot::Receiver<Answer>) {
    let event = Arc::new(Mutex::new(Some(event)));
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |req: Request<Incoming>| {
        let (event, tx) = (event.clone(), tx.clone());
        async move {
            let path = req.uri().path().to_string();
            if path.ends_with("/runtime/invocation/next") {
                let Some(event) = event.lock().unwrap().take() else {
                    // Lambda freezes the sandbox here; the measurement ends the process.
                    return std::future::pending().await;
                };
                let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + deadline;
                return Response::builder()
                    .header("content-type", "application/json")
                    .header("lambda-runtime-aws-request-id", "bench-ingest-1")
                    .header("lambda-runtime-deadline-ms", deadline_ms.as_millis().to_string())
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:ingest",
                    )
                    .header(
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000;Sampled=0",
                    )
                    .body(Full::new(Bytes::from(event.to_string())))
                    .unwrap();
            }
            let ok = path.ends_with("/response");
            if ok || path.ends_with("/error") {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(if ok { Ok(body) } else { Err(body) });
                }
                return reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#);
            }
            reply(StatusCode::NOT_FOUND, "")
        }
    })
    .await;
    (addr, rx)
}

/// What the DynamoDB proxy dropped instead of forwarding.
#[derive(Debug, Default)]
pub struct Dropped {
    pub calls: AtomicU64,
    pub items: AtomicU64,
}

#[derive(Deserialize)]
struct BatchWrite {
    #[serde(rename = "RequestItems")]
    request_items: HashMap<String, Vec<IgnoredAny>>,
}

/// The thin DynamoDB endpoint (see the module doc): forwards to `upstream`, except
/// `BatchWriteItem` into `entries_table` alone, which is acknowledged and dropped.
pub async fn dynamodb_proxy(upstream: String, entries_table: String) -> (SocketAddr, Arc<Dropped>) {
    let dropped = Arc::new(Dropped::default());
    let http = reqwest::Client::new();
    let counts = dropped.clone();
    let addr = serve(move |req: Request<Incoming>| {
        let (http, upstream, table, counts) = (http.clone(), upstream.clone(), entries_table.clone(), counts.clone());
        async move {
            let (parts, body) = req.into_parts();
            let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
                return reply(StatusCode::BAD_REQUEST, "");
            };
            let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
            if target == Some("DynamoDB_20120810.BatchWriteItem")
                && let Ok(batch) = serde_json::from_slice::<BatchWrite>(&body)
                && batch.request_items.len() == 1
                && let Some(items) = batch.request_items.get(&table)
            {
                counts.calls.fetch_add(1, Ordering::Relaxed);
                counts.items.fetch_add(items.len() as u64, Ordering::Relaxed);
                return Response::builder()
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(Full::new(Bytes::from_static(br#"{"UnprocessedItems":{}}"#)))
                    .unwrap();
            }
            let url = format!(
                "{upstream}{}",
                parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut headers = parts.headers.clone();
            headers.remove("host");
            headers.remove("content-length");
            let sent = http.request(parts.method, url).headers(headers).body(body).send().await;
            let Ok(resp) = sent else {
                return reply(StatusCode::BAD_GATEWAY, "");
            };
            let mut out = Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    out = out.header(k, v);
                }
            }
            let body = resp.bytes().await.unwrap_or_default();
            out.body(Full::new(body)).unwrap()
        }
    })
    .await;
    (addr, dropped)
}
