//! The HTTP API (API Gateway v2) in front of the functions: a plain HTTP request comes in, the
//! function gets the payload-format-2.0 event AWS would send, its response goes back out.
//! Routes, authorizers, throttling and CORS come from the template ([`crate::http_api`]), and are
//! applied in API Gateway's order:
//!
//! 1. CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here when
//!    `CorsConfiguration` is set, before any authorization; without it they are routed like any
//!    request. Responses get `Access-Control-Allow-Origin` only for an allowed origin, and the
//!    function's own CORS headers are replaced, as API Gateway ignores an integration's.
//! 2. No route: `404 {"message":"Not Found"}`.
//! 3. Route throttling (`DefaultRouteSettings`): a token bucket per route, `429 {"message":"Too Many Requests"}`.
//! 4. A route with a JWT authorizer needs a valid token ([`crate::auth::Verifier`]), else
//!    `401 {"message":"Unauthorized"}`; its claims go to `requestContext.authorizer.jwt`.
//!
//! Failures are answered as HTTP APIs answer them: a function error (a timeout or a dead function
//! process included) is `500 {"message":"Internal Server Error"}`; no answer within the integration
//! timeout (30 s, the HTTP API maximum) is `503 {"message":"Service Unavailable"}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::auth::Verifier;
use crate::http_api::{HttpApi, HttpRoute, Throttle};
use crate::invoke::Invoker;

/// API Gateway's payload limit for HTTP APIs.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Lambda's limit for a synchronous invocation's event.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// HTTP APIs wait at most 30 s for an integration (the default, and the maximum).
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Gateway {
    pub api: HttpApi,
    pub invoker: Arc<dyn Invoker>,
    pub api_id: String,
    /// [`INTEGRATION_TIMEOUT`]; tests use less.
    pub integration_timeout: Duration,
    verifier: Verifier,
    buckets: std::sync::Mutex<std::collections::HashMap<String, Bucket>>,
}

/// A route's token bucket.
struct Bucket {
    tokens: f64,
    last: std::time::Instant,
}

impl Gateway {
    pub fn new(api: HttpApi, invoker: Arc<dyn Invoker>, api_id: impl Into<String>) -> Gateway {
        Gateway {
            api,
            invoker,
            api_id: api_id.into(),
            integration_timeout: INTEGRATION_TIMEOUT,
            verifier: Verifier::new(),
            buckets: Default::default(),
        }
    }

    pub fn with_integration_timeout(mut self, timeout: Duration) -> Gateway {
        self.integration_timeout = timeout;
        self
    }

    /// Serves until `shutdown` flips.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: tokio::sync::watch::Receiver<bool>) {
        serve_http("http api", listener, shutdown, move |req, peer| {
            let gw = self.clone();
            async move { gw.handle(req, peer).await }
        })
        .await
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let (mut parts, body) = req.into_parts();
        ensure_trace_header(&mut parts.headers, std::time::SystemTime::now());
        let origin = parts.headers.get("origin").cloned();
        if parts.method == http::Method::OPTIONS
            && parts.headers.contains_key("access-control-request-method")
            && self.api.cors.is_some()
        {
            return self.preflight(origin.as_ref());
        }
        let mut resp = self.answer(parts, body, peer).await;
        if self.api.cors.is_some() {
            let h = resp.headers_mut();
            let theirs: Vec<_> = h
                .keys()
                .filter(|k| k.as_str().starts_with("access-control-"))
                .cloned()
                .collect();
            for k in theirs {
                h.remove(k);
            }
            if let Some(allowed) = origin.as_ref().and_then(|o| self.allowed_origin(o)) {
                h.insert("access-control-allow-origin", allowed);
                self.cors_extras(h, false);
            }
        }
        resp
    }

    /// Everything after CORS preflights: route, throttle, authorize, integrate.
    async fn answer(&self, parts: http::request::Parts, body: Incoming, peer: SocketAddr) -> Response<Full<Bytes>> {
        let path = parts.uri.path().to_string();
        let Some((route, params)) = self.route(parts.method.as_str(), &path) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        if let Some(t) = self.api.throttle
            && !self.take_token(&format!("{} {}", route.method, route.path), t)
        {
            return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
        let mut authorizer_context = None;
        if let Some(name) = &route.authorizer {
            let a = &self.api.authorizers[name];
            let identity = parts.headers.get(&a.identity_header).and_then(|v| v.to_str().ok());
            match self.verifier.verify(a, identity).await {
                Ok(v) => authorizer_context = Some(v.authorizer_context()),
                Err(denied) => {
                    tracing::info!(route = %format!("{} {}", route.method, route.path), path, reason = %denied, "401");
                    let mut r = message(StatusCode::UNAUTHORIZED, "Unauthorized");
                    let challenge = match denied {
                        crate::auth::Denied::Missing => "Bearer".to_string(),
                        other => format!("Bearer error=\"invalid_token\" error_description=\"{other}\""),
                    };
                    if let Ok(v) = HeaderValue::from_str(&challenge) {
                        r.headers_mut().insert("www-authenticate", v);
                    }
                    return r;
                }
            }
        }
        // A client that stops sending its body must not hold the request forever.
        let body = match tokio::time::timeout(
            self.integration_timeout,
            Limited::new(body, MAX_REQUEST_BYTES).collect(),
        )
        .await
        {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
            Err(_) => {
                tracing::warn!(
                    timeout_secs = self.integration_timeout.as_secs(),
                    "request body not received in time: 408"
                );
                return message(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
            }
        };
        let mut event = event(&parts, &body, &route, params, peer, &self.api_id);
        if let Some(ctx) = authorizer_context {
            event["requestContext"]["authorizer"] = ctx;
        }
        if serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0) > MAX_EVENT_BYTES {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        self.integrate(&route.function, &event).await
    }

    /// Takes a token from the route's bucket; `false` when it is empty.
    fn take_token(&self, route: &str, t: Throttle) -> bool {
        let mut buckets = self.buckets.lock().expect("lock");
        let now = std::time::Instant::now();
        let b = buckets.entry(route.to_string()).or_insert(Bucket {
            tokens: t.burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * t.rate).min(t.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Invokes the route's function within the integration timeout.
    async fn integrate(&self, function: &str, event: &Value) -> Response<Full<Bytes>> {
        match tokio::time::timeout(self.integration_timeout, self.invoker.invoke(function, event)).await {
            Ok(Ok(v)) => response(v),
            Ok(Err(e)) => {
                tracing::warn!(function, error = %e, "integration failed: 500");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(_) => {
                tracing::warn!(
                    function,
                    timeout_secs = self.integration_timeout.as_secs(),
                    "no answer from the function within the HTTP API's integration timeout: 503"
                );
                message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
        }
    }

    fn route(&self, method: &str, path: &str) -> Option<(HttpRoute, Map<String, Value>)> {
        let mut best: Option<(u8, HttpRoute, Map<String, Value>)> = None;
        for r in &self.api.routes {
            if r.method != "ANY" && r.method != method {
                continue;
            }
            if let Some((score, params)) = match_path(&r.path, path) {
                let score = score * 2 + u8::from(r.method != "ANY");
                if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                    best = Some((score, r.clone(), params));
                }
            }
        }
        best.map(|(_, r, p)| (r, p))
    }

    /// The `Access-Control-Allow-Origin` for `origin`: `*` when every origin is allowed, the
    /// origin itself when it is listed (case-insensitively), none otherwise.
    fn allowed_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let allowed = self.cors_list("AllowOrigins");
        let o = origin.to_str().ok()?;
        if allowed.iter().any(|a| a == "*") {
            Some(HeaderValue::from_static("*"))
        } else if allowed.iter().any(|a| a.eq_ignore_ascii_case(o.trim_end_matches('/'))) {
            Some(origin.clone())
        } else {
            None
        }
    }

    fn cors_list(&self, key: &str) -> Vec<String> {
        self.api
            .cors
            .as_ref()
            .and_then(|c| c.get(key))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(crate::template::scalar_string).collect())
            .unwrap_or_default()
    }

    /// `Allow-Credentials` on every CORS answer; `Expose-Headers` on actual responses.
    fn cors_extras(&self, h: &mut HeaderMap, preflight: bool) {
        let cors = self.api.cors.as_ref();
        if cors
            .and_then(|c| c.get("AllowCredentials"))
            .map(crate::template::scalar_string)
            .as_deref()
            == Some("true")
        {
            h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
        }
        if !preflight
            && let Ok(v) = HeaderValue::from_str(&self.cors_list("ExposeHeaders").join(","))
            && !v.is_empty()
        {
            h.insert("access-control-expose-headers", v);
        }
    }

    /// Answers a preflight: 204, with the allowed methods and headers for an allowed origin only.
    fn preflight(&self, origin: Option<&HeaderValue>) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let Some(allowed) = origin.and_then(|o| self.allowed_origin(o)) else {
            return resp;
        };
        let cors = self.api.cors.as_ref().expect("checked");
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", allowed);
        for (name, key) in [
            ("access-control-allow-methods", "AllowMethods"),
            ("access-control-allow-headers", "AllowHeaders"),
        ] {
            if let Ok(v) = HeaderValue::from_str(&self.cors_list(key).join(","))
                && !v.is_empty()
            {
                h.insert(name, v);
            }
        }
        if let Some(age) = cors.get("MaxAge")
            && let Ok(v) = HeaderValue::from_str(&crate::template::scalar_string(age))
        {
            h.insert("access-control-max-age", v);
        }
        self.cors_extras(h, true);
        resp
    }
}

/// Matches a route path (`/jobs/{id}`, `/{proxy+}`) against a request path. The score prefers
/// literal segments over parameters over greedy parameters.
pub fn match_path(pattern: &str, path: &str) -> Option<(u8, Map<String, Value>)> {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mut params = Map::new();
    let mut score: u8 = 100;
    for (i, p) in pat.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            if i >= segs.len() {
                return None;
            }
            params.insert(name.to_string(), Value::String(segs[i..].join("/")));
            return Some((score.saturating_sub(50), params));
        }
        let seg = segs.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.insert(name.to_string(), Value::String(seg.to_string()));
            score = score.saturating_sub(1);
        } else if p != seg {
            return None;
        }
    }
    (pat.len() == segs.len()).then_some((score, params))
}

fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded"]
            .iter()
            .any(|t| ct.contains(t))
}

/// As API Gateway does, a request without an `X-Amzn-Trace-Id` gets one, a new trace
/// (`Root=1-<epoch seconds, 8 hex>-<24 random hex>`); one it has is kept. The function sees it in
/// its event's headers, and as its invocation's trace id ([`crate::invoke::LambdaApi`] passes it
/// on as Lambda passes `Lambda-Runtime-Trace-Id`). Returns the header.
pub fn ensure_trace_header(headers: &mut http::HeaderMap, now: std::time::SystemTime) -> String {
    if let Some(v) = headers.get(TRACE_HEADER).and_then(|v| v.to_str().ok())
        && !v.trim().is_empty()
    {
        return v.to_string();
    }
    let seconds = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default() as u32;
    let random = uuid::Uuid::new_v4().simple().to_string();
    let header = format!("Root=1-{seconds:08x}-{}", &random[..24]);
    headers.insert(TRACE_HEADER, http::HeaderValue::from_str(&header).expect("ASCII"));
    header
}

/// The trace header API Gateway adds to requests and Lambda's Invoke API reads.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

fn event(
    parts: &http::request::Parts,
    body: &Bytes,
    route: &HttpRoute,
    params: Map<String, Value>,
    peer: SocketAddr,
    api_id: &str,
) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == "cookie" {
            cookies.extend(values.iter().flat_map(|v| v.split(';')).map(|c| c.trim().to_string()));
            continue;
        }
        headers.insert(name.as_str().to_string(), Value::String(values.join(",")));
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_string();
    let mut query = Map::new();
    for (k, v) in url_pairs(&raw_query) {
        match query.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (body, b64) = if body.is_empty() {
        (Value::Null, false)
    } else if is_text(content_type) && std::str::from_utf8(body).is_ok() {
        (Value::String(String::from_utf8_lossy(body).into_owned()), false)
    } else {
        (Value::String(STANDARD.encode(body)), true)
    };
    let now = time::OffsetDateTime::now_utc();
    let route_key = format!("{} {}", route.method, route.path);
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::provision::ACCOUNT,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": b64,
    });
    let m = event.as_object_mut().expect("object");
    if !body.is_null() {
        m.insert("body".into(), body);
    }
    if !query.is_empty() {
        m.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !params.is_empty() {
        m.insert("pathParameters".into(), Value::Object(params));
    }
    if !cookies.is_empty() {
        m.insert("cookies".into(), json!(cookies));
    }
    event
}

/// `a=1&b=x+y` decoded (`+` is a space), in order, repeats kept: the form encoding, by
/// `form_urlencoded` (the `url` crate's), as API Gateway decodes it.
pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Turns a payload-2.0 response into HTTP. A bare value (not `{statusCode, ...}`) is served as
/// a 200 JSON body, as API Gateway does.
fn response(v: Value) -> Response<Full<Bytes>> {
    let Some(status) = v.get("statusCode").and_then(Value::as_u64) else {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return r;
    };
    let body = v.get("body").and_then(Value::as_str).unwrap_or_default();
    let bytes = if v.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers: &mut HeaderMap = resp.headers_mut();
    for (k, val) in v.get("headers").and_then(Value::as_object).into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            http::HeaderName::try_from(k.as_str()),
            val.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    for (k, vals) in v
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Ok(name) = http::HeaderName::try_from(k.as_str()) {
            for val in vals.as_array().into_iter().flatten().filter_map(Value::as_str) {
                if let Ok(value) = HeaderValue::from_str(val) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    for c in v
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(value) = HeaderValue::from_str(c) {
            headers.append("set-cookie", value);
        }
    }
    resp
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(json!({ "message": text }).to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// Serves HTTP/1 and HTTP/2 connections of `listener` with `handle` (given each request and its
/// peer) until `shutdown` flips: the loop of every HTTP endpoint of the bridge (the HTTP API, the
/// issuer, the Lambda API) but the WebSocket one, which needs HTTP/1 upgrades.
pub(crate) async fn serve_http<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!(error = %e, "{name}: accept failed"); continue; }
            },
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let response = handle(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "{name}: connection closed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_api_gateway() {
        assert!(match_path("/", "/").is_some());
        assert!(match_path("/", "/jobs").is_none());
        let (_, p) = match_path("/{proxy+}", "/jobs/abc/retry").unwrap();
        assert_eq!(p["proxy"], "jobs/abc/retry");
        assert!(match_path("/{proxy+}", "/").is_none());
        let (exact, _) = match_path("/jobs/{id}", "/jobs/1").unwrap();
        let (greedy, _) = match_path("/{proxy+}", "/jobs/1").unwrap();
        assert!(exact > greedy);
    }

    #[test]
    fn query_strings_decode_and_repeat() {
        assert_eq!(
            url_pairs("status=failed&status=queued&q=a+b%2Fc"),
            vec![
                ("status".into(), "failed".into()),
                ("status".into(), "queued".into()),
                ("q".into(), "a b/c".into())
            ]
        );
    }

    /// The event is written as JSON in HTTP API's own shape (the typed request of
    /// `aws_lambda_events` also serializes Custom Authorizer v1 fields, such as a top-level
    /// `httpMethod`, that HTTP API events do not have); this holds it to the typed request the
    /// api function parses it into.
    #[test]
    fn the_event_parses_as_the_typed_http_api_request() {
        use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
        use aws_lambda_events::query_map::QueryMap;
        let req = http::Request::builder()
            .method("POST")
            .uri("/jobs/abc/retry?status=failed&status=queued&q=a+b%2Fc")
            .header("content-type", "application/octet-stream")
            .header("cookie", "a=1; b=2")
            .header("x-trace", "t1")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let route = HttpRoute {
            method: "POST".into(),
            path: "/jobs/{id}/retry".into(),
            function: "api".into(),
            authorizer: None,
        };
        let (_, params) = match_path(&route.path, "/jobs/abc/retry").unwrap();
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let v = event(&parts, &Bytes::from_static(&[0, 1, 2]), &route, params, peer, "local");
        let e: ApiGatewayV2httpRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(e.version.as_deref(), Some("2.0"));
        assert_eq!(e.route_key.as_deref(), Some("POST /jobs/{id}/retry"));
        assert_eq!(e.raw_path.as_deref(), Some("/jobs/abc/retry"));
        assert_eq!(e.request_context.http.method, http::Method::POST);
        assert_eq!(e.request_context.http.source_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(e.path_parameters["id"], "abc");
        let q: &QueryMap = &e.query_string_parameters;
        assert_eq!(q.all("status"), Some(vec!["failed", "queued"]));
        assert_eq!(q.first("q"), Some("a b/c"));
        assert_eq!(e.cookies, Some(vec!["a=1".to_string(), "b=2".to_string()]));
        assert_eq!(e.headers["x-trace"], "t1");
        assert!(e.is_base64_encoded);
        assert_eq!(e.body.as_deref(), Some("AAEC"));
        assert!(v.get("httpMethod").is_none(), "no Custom Authorizer v1 fields");
    }

    #[test]
    fn multipart_bodies_are_base64_like_on_aws() {
        assert!(is_text("application/json; charset=utf-8"));
        assert!(!is_text("multipart/form-data; boundary=x"));
        assert!(!is_text("application/octet-stream"));
    }

    #[test]
    fn requests_without_a_trace_header_get_a_new_trace_and_others_keep_theirs() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(0x5759e988);
        let mut h = http::HeaderMap::new();
        let minted = ensure_trace_header(&mut h, now);
        let root = minted.strip_prefix("Root=1-5759e988-").expect(&minted);
        assert!(
            root.len() == 24 && root.bytes().all(|b| b.is_ascii_hexdigit()),
            "{minted}"
        );
        assert_eq!(h[TRACE_HEADER], minted.as_str());
        let mut again = http::HeaderMap::new();
        assert_ne!(ensure_trace_header(&mut again, now), minted, "a new trace each request");
        let theirs = "Root=1-00000001-000000000000000000000001;Sampled=1";
        let mut kept = http::HeaderMap::new();
        kept.insert(TRACE_HEADER, http::HeaderValue::from_static(theirs));
        assert_eq!(ensure_trace_header(&mut kept, now), theirs);
        assert_eq!(kept[TRACE_HEADER], theirs);
    }
}
