//! The WebSocket API, served as API Gateway serves it (`ws://127.0.0.1:WS_PORT/`, or
//! `/<stage>`):
//!
//! - A WebSocket upgrade invokes the `$connect` route's function with the
//!   `ApiGatewayWebsocketProxyRequest` shape (headers, query string, `requestContext` with
//!   `connectionId`, `eventType: CONNECT`); a 2xx `statusCode` completes the upgrade, anything
//!   else refuses it with that status and body.
//! - Each text message goes to the route its `$request.body.<field>` names, else `$default`
//!   (none: API Gateway's `{"message": "Forbidden", ...}`); a route with a route response sends
//!   the function's `body` back.
//! - A closed connection invokes `$disconnect` (`eventType: DISCONNECT`).
//! - The Management API on the same port, `/@connections/{id}` (also under `/<stage>/`): `POST`
//!   sends the body as one text frame, `GET` describes the connection, `DELETE` closes it; a
//!   connection that is not open answers `410 GoneException`.
//! - The seed's form `/ws/jobs/{job_id}` is `$connect` with `job_id` added to the query string
//!   (the function subscribes the connection to that job at once).
//!
//! Not emulated: the 10-minute idle timeout and 2-hour limit, the 128 KB message limit, and
//! route throttling.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::invoke::Invoker;
use crate::websocket_api::WebSocketApi;

/// What the Management API may do to an open connection.
enum Command {
    Send(String),
    Close,
}

struct Open {
    tx: mpsc::UnboundedSender<Command>,
    connected_at: OffsetDateTime,
    last_active: OffsetDateTime,
    source_ip: String,
    user_agent: Option<String>,
}

pub struct WebSocketServer {
    api: WebSocketApi,
    invoker: Arc<dyn Invoker>,
    /// `requestContext.domainName`: the host clients connect to.
    domain: String,
    open: Mutex<HashMap<String, Open>>,
    /// `$disconnect` invocations at once. Many clients leaving together (a bench ending) would
    /// otherwise queue at `cargo lambda watch` past their Timeout, and a timed-out invocation
    /// gets its function process killed (and not restarted). API Gateway invokes them
    /// asynchronously, with Lambda's concurrency; here they wait their turn instead.
    disconnects: tokio::sync::Semaphore,
}

fn respond(status: u16, body: impl Into<Bytes>, error_type: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    if let Some(t) = error_type {
        r = r.header("x-amzn-errortype", t);
    }
    r.body(Full::new(body.into())).expect("response")
}

fn gone(id: &str) -> Response<Full<Bytes>> {
    respond(
        410,
        json!({"__type": "GoneException", "message": format!("connection {id} is not open")}).to_string(),
        Some("GoneException"),
    )
}

fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// API Gateway's connection ids look like `XyZ1aeBnoAMCJRg=`.
fn connection_id() -> String {
    use base64::Engine;
    let bytes: [u8; 10] = rand_bytes();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    b.iter_mut()
        .zip(uuid::Uuid::new_v4().as_bytes().iter())
        .for_each(|(d, s)| *d = *s);
    b
}

fn headers_json(headers: &HeaderMap) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in headers {
        let v = v.to_str().unwrap_or_default().to_string();
        single.insert(k.as_str().to_string(), json!(v));
        multi
            .entry(k.as_str().to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("array")
            .push(json!(v));
    }
    (Value::Object(single), Value::Object(multi))
}

impl WebSocketServer {
    pub fn new(api: WebSocketApi, invoker: Arc<dyn Invoker>, domain: impl Into<String>) -> Self {
        WebSocketServer {
            api,
            invoker,
            domain: domain.into(),
            open: Mutex::new(HashMap::new()),
            disconnects: tokio::sync::Semaphore::new(2),
        }
    }

    /// Ids of the open connections.
    pub fn open_connections(&self) -> Vec<String> {
        self.open.lock().expect("lock").keys().cloned().collect()
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                },
            };
            let server = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await
                {
                    tracing::debug!(error = %e, "connection closed");
                }
            });
        }
    }

    fn context(&self, id: &str, route: &str, event_type: &str, connected_at: OffsetDateTime, identity: Value) -> Value {
        let now = OffsetDateTime::now_utc();
        let request_id = connection_id();
        let ms = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        json!({
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": now.format(time::macros::format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000")).unwrap_or_default(),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "connectedAt": ms(connected_at),
            "requestTimeEpoch": ms(now),
            "identity": identity,
            "requestId": request_id,
            "domainName": self.domain,
            "connectionId": id,
            "apiId": self.api.id,
        })
    }

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let stage_prefix = format!("/{}", self.api.stage);
        let rest = path
            .strip_prefix(&stage_prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .unwrap_or(&path)
            .to_string();
        if let Some(id) = rest.strip_prefix("/@connections/") {
            let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().to_string();
            return self.manage(req, &id).await;
        }
        let upgrade = req
            .headers()
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let job_id = rest.strip_prefix("/ws/jobs/").map(str::to_owned);
        if !(rest.is_empty() || rest == "/" || job_id.is_some()) {
            return respond(404, json!({"message": "Not Found"}).to_string(), None);
        }
        if !upgrade || req.method() != Method::GET {
            return respond(
                426,
                json!({"message": "Upgrade Required: connect with a WebSocket client"}).to_string(),
                None,
            );
        }
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return respond(
                400,
                json!({"message": "Sec-WebSocket-Key is missing"}).to_string(),
                None,
            );
        };
        // The query string, plus the job of /ws/jobs/{job_id}.
        let mut query: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some(j) = &job_id {
            query.retain(|(k, _)| k != "job_id");
            query.push(("job_id".into(), j.clone()));
        }
        let id = connection_id();
        let connected_at = OffsetDateTime::now_utc();
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let identity = json!({"sourceIp": peer.ip().to_string(), "userAgent": user_agent});
        let (headers, multi_headers) = headers_json(req.headers());
        let mut single_q = Map::new();
        let mut multi_q: Map<String, Value> = Map::new();
        for (k, v) in &query {
            single_q.insert(k.clone(), json!(v));
            multi_q
                .entry(k.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("array")
                .push(json!(v));
        }
        let event = json!({
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(single_q) },
            "multiValueQueryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(multi_q) },
            "requestContext": self.context(&id, "$connect", "CONNECT", connected_at, identity.clone()),
            "isBase64Encoded": false,
        });
        if let Some(route) = self.api.route("$connect") {
            match self.invoker.invoke(&route.function, &event).await {
                Ok(resp) => {
                    let status = resp.get("statusCode").and_then(Value::as_u64).unwrap_or(200) as u16;
                    if !(200..300).contains(&status) {
                        tracing::info!(connection_id = %id, status, "$connect refused the connection");
                        let body = resp.get("body").and_then(Value::as_str).unwrap_or_default().to_string();
                        return respond(status, body, None);
                    }
                }
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "$connect failed");
                    return respond(500, json!({"message": "Internal server error"}).to_string(), None);
                }
            }
        }
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (tx, rx) = mpsc::unbounded_channel();
        // Open from here: posts made after $connect answered reach the client once upgraded.
        self.open.lock().expect("lock").insert(
            id.clone(),
            Open {
                tx,
                connected_at,
                last_active: connected_at,
                source_ip: peer.ip().to_string(),
                user_agent,
            },
        );
        let server = self.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                    server.run(id, ws, rx, connected_at, identity).await;
                }
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "upgrade failed");
                    server.open.lock().expect("lock").remove(&id);
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", accept)
            .body(Full::new(Bytes::new()))
            .expect("response")
    }

    /// One open connection: frames in to routes, the Management API's posts out.
    async fn run<S>(
        self: Arc<Self>,
        id: String,
        ws: WebSocketStream<S>,
        mut rx: mpsc::UnboundedReceiver<Command>,
        connected_at: OffsetDateTime,
        identity: Value,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        tracing::info!(connection_id = %id, "connected");
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        // DELETE @connections/{id}: the server closes; the connection ends without waiting for
        // the client's answer.
        let deleted = Arc::new(tokio::sync::Notify::new());
        let deleted_by_writer = deleted.clone();
        let writer = tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(Command::Send(text)) => { if sink.send(Message::text(text)).await.is_err() { break; } }
                        Some(Command::Close) | None => {
                            let _ = sink.send(Message::Close(None)).await;
                            deleted_by_writer.notify_one();
                            break;
                        }
                    },
                    msg = out_rx.recv() => match msg {
                        Some(m) => { if sink.send(m).await.is_err() { break; } }
                        None => break,
                    },
                }
            }
        });
        let (mut code, mut reason) = (1005u16, String::new());
        loop {
            let frame = tokio::select! {
                frame = stream.next() => match frame {
                    Some(f) => f,
                    None => break,
                },
                _ = deleted.notified() => {
                    (code, reason) = (1000, "deleted through @connections".into());
                    break;
                }
            };
            let text = match frame {
                Ok(Message::Text(t)) => t.to_string(),
                Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).to_string(),
                Ok(Message::Close(c)) => {
                    if let Some(c) = c {
                        code = u16::from(c.code);
                        reason = c.reason.to_string();
                    }
                    break;
                }
                Ok(_) => continue,
                Err(e) => {
                    (code, reason) = (1006, e.to_string());
                    break;
                }
            };
            if let Some(o) = self.open.lock().expect("lock").get_mut(&id) {
                o.last_active = OffsetDateTime::now_utc();
            }
            let ctx = self.context(&id, "", "MESSAGE", connected_at, identity.clone());
            let Some(route) = self.api.select(&text).cloned() else {
                let _ = out_tx.send(Message::text(
                    json!({"message": "Forbidden", "connectionId": id, "requestId": ctx["requestId"]}).to_string(),
                ));
                continue;
            };
            let mut ctx = ctx;
            ctx["routeKey"] = json!(route.key);
            ctx["messageId"] = json!(connection_id());
            let event = json!({"requestContext": ctx, "body": text, "isBase64Encoded": false});
            match self.invoker.invoke(&route.function, &event).await {
                Ok(resp) if route.responds => {
                    if let Some(body) = resp.get("body").and_then(Value::as_str) {
                        let _ = out_tx.send(Message::text(body.to_string()));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(connection_id = %id, route = %route.key, error = %e, "route failed");
                    let _ = out_tx.send(Message::text(
                        json!({"message": "Internal server error", "connectionId": id, "requestId": event["requestContext"]["requestId"]}).to_string(),
                    ));
                }
            }
        }
        self.open.lock().expect("lock").remove(&id);
        drop(out_tx);
        writer.abort();
        tracing::info!(connection_id = %id, code, "disconnected");
        if let Some(route) = self.api.route("$disconnect") {
            let mut ctx = self.context(&id, "$disconnect", "DISCONNECT", connected_at, identity);
            ctx["disconnectStatusCode"] = json!(code);
            ctx["disconnectReason"] = json!(reason);
            let event =
                json!({"headers": {}, "multiValueHeaders": {}, "requestContext": ctx, "isBase64Encoded": false});
            let _turn = self.disconnects.acquire().await;
            if let Err(e) = self.invoker.invoke(&route.function, &event).await {
                tracing::warn!(connection_id = %id, error = %e, "$disconnect failed");
            }
        }
    }

    /// The Management API: `POST`, `GET`, `DELETE` `@connections/{id}`.
    async fn manage(&self, req: Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        match method {
            Method::POST => {
                // API Gateway's limit for a message.
                let body = match Limited::new(req.into_body(), 128 * 1024).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => {
                        return respond(
                            413,
                            json!({"__type": "PayloadTooLargeException", "message": "over 128 KB"}).to_string(),
                            Some("PayloadTooLargeException"),
                        );
                    }
                };
                let open = self.open.lock().expect("lock");
                match open.get(id) {
                    Some(o)
                        if o.tx
                            .send(Command::Send(String::from_utf8_lossy(&body).to_string()))
                            .is_ok() =>
                    {
                        respond(200, Bytes::new(), None)
                    }
                    _ => gone(id),
                }
            }
            Method::GET => {
                let open = self.open.lock().expect("lock");
                match open.get(id) {
                    Some(o) => respond(
                        200,
                        json!({
                            "connectedAt": iso(o.connected_at),
                            "identity": {"sourceIp": o.source_ip, "userAgent": o.user_agent},
                            "lastActiveAt": iso(o.last_active),
                        })
                        .to_string(),
                        None,
                    ),
                    None => gone(id),
                }
            }
            Method::DELETE => {
                let removed = self.open.lock().expect("lock").remove(id);
                match removed {
                    Some(o) => {
                        let _ = o.tx.send(Command::Close);
                        respond(204, Bytes::new(), None)
                    }
                    None => gone(id),
                }
            }
            _ => respond(405, json!({"message": "Method Not Allowed"}).to_string(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::InProcess;
    use crate::websocket_api::WsRoute;
    use std::time::Duration;
    use tokio_tungstenite::tungstenite;

    type Calls = Arc<Mutex<Vec<Value>>>;

    /// A live function in process: `$connect` needs `?token=good`; `subscribe` answers with the
    /// body it got; every event is recorded.
    async fn server() -> (String, Calls, Arc<WebSocketServer>) {
        let calls: Calls = Arc::default();
        let seen = calls.clone();
        let invoker = InProcess(move |_name: String, event: Value| {
            seen.lock().unwrap().push(event.clone());
            Box::pin(async move {
                let route = event["requestContext"]["routeKey"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let status = if route == "$connect" && event["queryStringParameters"]["token"] != "good" {
                    401
                } else {
                    200
                };
                Ok(
                    json!({"statusCode": status, "body": json!({"route": route, "got": event["body"], "job": event["queryStringParameters"]["job_id"]}).to_string()}),
                )
            }) as _
        });
        let routes = ["$connect", "$disconnect", "subscribe", "$default"]
            .iter()
            .map(|k| WsRoute {
                key: k.to_string(),
                function: "live".into(),
                responds: *k == "subscribe",
            })
            .collect();
        let api = WebSocketApi {
            logical_id: "LiveApi".into(),
            id: "t-liveapi".into(),
            selection_field: "action".into(),
            routes,
            stage: "live".into(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = Arc::new(WebSocketServer::new(api, Arc::new(invoker), addr.clone()));
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(server.clone().serve(listener, stopped));
        std::mem::forget(_stop);
        (addr, calls, server)
    }

    async fn next_text<S>(ws: &mut WebSocketStream<S>) -> Option<String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(_))) => continue,
                Err(_) => panic!("no frame within 5 s"),
            }
        }
    }

    #[tokio::test]
    async fn connect_decides_the_upgrade_routes_answer_and_connections_are_managed() {
        let (addr, calls, server) = server().await;
        // $connect answering 401: no WebSocket, the status reaches the client.
        match tokio_tungstenite::connect_async(format!("ws://{addr}/?token=bad")).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
        assert!(server.open_connections().is_empty());

        // A good token, through the seed's path: job_id joins the query string.
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/ws/jobs/j-1?token=good"))
            .await
            .unwrap();
        let connect = calls.lock().unwrap().last().cloned().unwrap();
        assert_eq!(connect["requestContext"]["eventType"], "CONNECT");
        assert_eq!(connect["queryStringParameters"]["job_id"], "j-1");
        assert_eq!(connect["requestContext"]["stage"], "live");
        let parsed: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(connect.clone()).expect("API Gateway's WebSocket event shape");
        let id = parsed.request_context.connection_id.unwrap();
        assert_eq!(server.open_connections(), vec![id.clone()]);

        // A routed message with a route response comes back; unknown actions go to $default
        // (no route response: nothing comes back).
        ws.send(Message::text(r#"{"action":"subscribe","job_id":"j-2"}"#))
            .await
            .unwrap();
        let reply: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
        assert_eq!(reply["route"], "subscribe");
        assert_eq!(reply["got"], r#"{"action":"subscribe","job_id":"j-2"}"#);
        ws.send(Message::text(r#"{"action":"dance"}"#)).await.unwrap();

        // The Management API: POST reaches the client, GET describes the connection.
        let http = reqwest::Client::new();
        let url = format!(
            "http://{addr}/@connections/{}",
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = http.post(&url).body(r#"{"hello":1}"#).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(next_text(&mut ws).await.as_deref(), Some(r#"{"hello":1}"#));
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let info: Value = r.json().await.unwrap();
        assert!(
            info["connectedAt"].is_string() && info["identity"]["sourceIp"] == "127.0.0.1",
            "{info}"
        );
        let routes: Vec<Value> = calls
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["requestContext"]["routeKey"].clone())
            .collect();
        assert!(routes.contains(&json!("$default")), "{routes:?}");

        // DELETE closes it: the client sees the close, $disconnect runs, and it is gone (410).
        let r = http.delete(&url).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(next_text(&mut ws).await, None);
        let started = std::time::Instant::now();
        while !calls
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["requestContext"]["eventType"] == "DISCONNECT")
        {
            assert!(started.elapsed() < Duration::from_secs(5), "no $disconnect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = http.post(&url).body("x").send().await.unwrap();
        assert_eq!(r.status(), 410);
        assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
    }
}
