//! The dashboard: a browser console for the jobs, served by this function at `/`.
//!
//! Plain HTML, CSS and JavaScript modules from `functions/api/dashboard/`, embedded in the binary
//! (`include_str!`), so the console deploys with the stack, needs no build step and no CDN, and
//! talks to the API on its own origin. What the page must not guess is rendered into `index.html`
//! as JSON: the legal status moves (from [`JobStatus::can_become`], the one place that decides),
//! the kinds, the uploads bucket, the upload limit and the WebSocket URL of live updates
//! ([`LiveUrl`], which the page's CSP then allows to connect to).
//!
//! Also here: `GET /queues`, the SQS queue depths the overview shows.

use std::sync::LazyLock;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::job::{JobKind, JobStatus};

use crate::app::AppState;
use crate::auth::Signed;
use crate::error::{ApiError, error_response};

/// The dashboard's routes besides `GET /queues` (which is part of the API and its `ROUTES`).
pub const PAGES: &[(&str, &str)] = &[("GET", "/"), ("GET", "/dashboard/{file}")];

/// `(file name, content type, text)` of every asset under `/dashboard/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../dashboard/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/api.js"),
    ),
    (
        "auth.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/auth.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/ui.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/live.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/overview.js"),
    ),
    (
        "jobs.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/jobs.js"),
    ),
    (
        "job.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/job.js"),
    ),
    (
        "create.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/create.js"),
    ),
    (
        "metrics.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/metrics.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/upload.js"),
    ),
    ("favicon.svg", "image/svg+xml", include_str!("../dashboard/favicon.svg")),
];

const INDEX: &str = include_str!("../dashboard/index.html");
/// Where `index.html` receives the page's settings.
const META_PLACEHOLDER: &str = "<!--META-->";

/// The files as served. Every reference to an asset (in `index.html`, and a module's imports of
/// its siblings) carries this build's version, `?v=<hash of every file>`, and such a versioned
/// address is cached for good (`immutable`): a returning visit asks only for `index.html` (no
/// cache) and its data, not for 14 files, each a Lambda invocation. A new deployment has a new
/// version, so new addresses. `index.html` also names every module for preloading, so a first
/// visit fetches them in one round instead of following the imports.
struct Served {
    version: String,
    index: String,
    /// `(file name, content type, text)`, as [`ASSETS`], with versioned imports.
    assets: Vec<(&'static str, &'static str, String)>,
}

static SERVED: LazyLock<Served> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, text) in ASSETS {
        hash.update(name.as_bytes());
        hash.update(text.as_bytes());
    }
    hash.update(INDEX.as_bytes());
    let version = hex::encode(hash.finalize())[..16].to_string();
    let versioned = |text: &str, prefix: &str, quote: char| {
        ASSETS.iter().fold(text.to_string(), |text, (name, _, _)| {
            text.replace(
                &format!("{prefix}{name}{quote}"),
                &format!("{prefix}{name}?v={version}{quote}"),
            )
        })
    };
    let preloads: String = ASSETS
        .iter()
        .filter(|(name, _, _)| name.ends_with(".js"))
        .map(|(name, _, _)| format!("<link rel=\"modulepreload\" href=\"dashboard/{name}?v={version}\">\n"))
        .collect();
    let index = versioned(INDEX, "\"dashboard/", '"').replacen(
        "<script type=\"module\"",
        &format!("{preloads}<script type=\"module\""),
        1,
    );
    let assets = ASSETS
        .iter()
        .map(|&(name, content_type, text)| {
            let text = if name.ends_with(".js") {
                versioned(text, "from './", '\'')
            } else {
                text.to_string()
            };
            (name, content_type, text)
        })
        .collect();
    Served { version, index, assets }
});

/// Scripts, styles and images only from this origin (an image job's URLs are shown as links, never
/// loaded: they are anyone's); uploads (a presigned S3 URL) may go elsewhere. [`csp`] adds the
/// live updates' WebSocket origin to `connect-src`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The page's CSP: [`CSP`], its `connect-src` also allowing the WebSocket of live updates.
pub fn csp(live: Option<&LiveUrl>) -> String {
    match live {
        Some(live) => CSP.replacen(
            "connect-src 'self'",
            &format!("connect-src 'self' {}", live.origin()),
            1,
        ),
        None => CSP.to_string(),
    }
}

/// Where the dashboard connects for live job updates (`LIVE_URL`): the WebSocket API's stage URL
/// (`wss://<api>.execute-api.<region>.amazonaws.com/live`, the stack's `LiveUrl` output), locally
/// the bridge's (`ws://127.0.0.1:3002`). Added to the router as an `Extension` by `main.rs`, like
/// [`Queues`]; without it the page polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveUrl(String);

impl LiveUrl {
    /// A `ws://` or `wss://` URL with a host, and nothing that could break out of a CSP source.
    pub fn parse(raw: &str) -> Result<LiveUrl, shared::Error> {
        let raw = raw.trim();
        let bad = |why: &str| shared::Error::Internal(format!("LIVE_URL={raw:?}: {why}"));
        let rest = raw
            .strip_prefix("wss://")
            .or_else(|| raw.strip_prefix("ws://"))
            .ok_or_else(|| bad("expected a ws:// or wss:// URL"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host"));
        }
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | ',' | '\'' | '"'))
        {
            return Err(bad("spaces, quotes, commas and semicolons are not allowed"));
        }
        Ok(LiveUrl(raw.trim_end_matches('/').to_string()))
    }

    /// `LIVE_URL` when set (refused when malformed), else none.
    pub fn from_env() -> Result<Option<LiveUrl>, shared::Error> {
        match std::env::var("LIVE_URL") {
            Ok(v) if !v.trim().is_empty() => LiveUrl::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `scheme://host[:port]`, the CSP source that allows connecting to it.
    pub fn origin(&self) -> &str {
        let after_scheme = self.0.find("://").map_or(0, |i| i + 3);
        let end = self.0[after_scheme..]
            .find(['/', '?', '#'])
            .map_or(self.0.len(), |i| after_scheme + i);
        &self.0[..end]
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/{file}", get(asset))
}

/// What the page needs to know about this deployment and the state machine.
pub fn meta(app: &AppState, live: Option<&LiveUrl>) -> Value {
    let transitions: serde_json::Map<String, Value> = JobStatus::ALL
        .iter()
        .map(|from| {
            let to: Vec<&str> = JobStatus::ALL
                .iter()
                .filter(|to| from.can_become(**to))
                .map(|to| to.as_str())
                .collect();
            (from.as_str().to_string(), json!(to))
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "statuses": JobStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "kinds": JobKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "transitions": transitions,
        "operator_moves": JobStatus::ALL
            .iter()
            .map(|from| (from.as_str().to_string(), json!(from.operator_moves().iter().map(|s| s.as_str()).collect::<Vec<_>>())))
            .collect::<serde_json::Map<String, Value>>(),
        "auth": app.auth.public(),
        "uploads_bucket": app.files.bucket,
        "max_upload_bytes": app.files.max_upload_bytes,
        "live_url": live.map(LiveUrl::as_str),
    })
}

/// `GET /`: the page, with [`meta`] inlined as JSON (not executed, so the CSP allows it).
async fn index(State(app): State<AppState>, live: Option<Extension<LiveUrl>>, headers: HeaderMap) -> Response {
    let live = live.map(|Extension(l)| l);
    // `</` must not appear inside a <script> element.
    let meta = meta(&app, live.as_ref()).to_string().replace("</", "<\\/");
    let script = format!(r#"<script type="application/json" id="meta">{meta}</script>"#);
    let html = SERVED.index.replacen(META_PLACEHOLDER, &script, 1);
    let mut resp = cached(&headers, "text/html; charset=utf-8", html, false);
    resp.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, csp_header(live.as_ref()));
    resp.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

fn csp_header(live: Option<&LiveUrl>) -> HeaderValue {
    // LiveUrl::parse lets through only what a header value may hold.
    HeaderValue::from_str(&csp(live)).unwrap_or(HeaderValue::from_static(CSP))
}

/// `GET /dashboard/{file}[?v=<version>]`: cached for good when asked for by this build's version.
async fn asset(Path(file): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let this_build = query.is_some_and(|q| q.split('&').any(|kv| kv == format!("v={}", SERVED.version)));
    match SERVED.assets.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, text)) => cached(&headers, content_type, text.clone(), this_build),
        None => error_response(StatusCode::NOT_FOUND, format!("no dashboard file {file:?}")),
    }
}

/// A text response with an ETag (a 304 when unchanged). `immutable`: cached for a year without
/// asking again (a versioned asset); else revalidated on every load (`no-cache`), so a new
/// deployment is seen at once.
fn cached(request: &HeaderMap, content_type: &'static str, body: String, immutable: bool) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..32]);
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let common = [
        (header::CACHE_CONTROL, cache.to_string()),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
    ];
    if matches {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (common, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}

/// The SQS queues whose depth `GET /queues` reports. Added to the router as an `Extension` by
/// `main.rs`, so the router's state (and everything that builds it) stays as it is.
#[derive(Clone, Debug)]
pub struct Queues {
    clients: shared::aws::Clients,
    queues: Vec<QueueRef>,
    /// Lambda, for the queues' event source mappings (pause/resume); `None`: not configured.
    lambda: Option<aws_sdk_lambda::Client>,
    /// `(queue name, function)`: the function whose event source mapping reads each queue.
    consumers: Vec<(&'static str, String)>,
}

#[derive(Clone, Debug)]
struct QueueRef {
    name: &'static str,
    role: &'static str,
    url: String,
}

/// `(name, role, environment variable)` of the queues [`Queues::from_env`] looks for.
pub const QUEUE_VARS: &[(&str, &str, &str)] = &[
    ("high", "work", "HIGH_QUEUE_URL"),
    ("normal", "work", "NORMAL_QUEUE_URL"),
    ("ingest_continue", "work", "INGEST_QUEUE_URL"),
    ("high_dead_letter", "dead_letter", "HIGH_DLQ_URL"),
    ("normal_dead_letter", "dead_letter", "NORMAL_DLQ_URL"),
    ("ingest_dead_letter", "dead_letter", "INGEST_DLQ_URL"),
];

/// `(queue name, environment variable naming the function that consumes it)`: the worker takes
/// the job queues, the ingest its continuations, the sweeper the dead letters (template.yaml).
pub const CONSUMER_VARS: &[(&str, &str)] = &[
    ("high", "WORKER_FUNCTION_NAME"),
    ("normal", "WORKER_FUNCTION_NAME"),
    ("ingest_continue", "INGEST_FUNCTION_NAME"),
    ("high_dead_letter", "SWEEPER_FUNCTION_NAME"),
    ("normal_dead_letter", "SWEEPER_FUNCTION_NAME"),
    ("ingest_dead_letter", "SWEEPER_FUNCTION_NAME"),
];

impl Queues {
    /// The queues whose URL the environment (template.yaml) gives; the others are left out.
    pub fn from_env(clients: shared::aws::Clients) -> Self {
        Self::new(clients, |var| std::env::var(var).ok())
    }

    /// The queues whose URL `lookup` gives for the variable names of [`QUEUE_VARS`].
    pub fn new(clients: shared::aws::Clients, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let queues = QUEUE_VARS
            .iter()
            .filter_map(|(name, role, var)| {
                let url = lookup(var).filter(|u| !u.trim().is_empty())?;
                Some(QueueRef { name, role, url })
            })
            .collect();
        Queues {
            clients,
            queues,
            lambda: None,
            consumers: Vec::new(),
        }
    }

    /// With Lambda: each queue's consumer function from `lookup` ([`CONSUMER_VARS`]), so its
    /// event source mapping can be found, shown and paused.
    pub fn with_lambda(mut self, lambda: aws_sdk_lambda::Client, lookup: impl Fn(&str) -> Option<String>) -> Self {
        self.consumers = CONSUMER_VARS
            .iter()
            .filter_map(|(name, var)| Some((*name, lookup(var).filter(|f| !f.trim().is_empty())?)))
            .collect();
        self.lambda = Some(lambda);
        self
    }

    /// The URL of the queue named `name` (one of [`QUEUE_VARS`]), if configured.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.queues.iter().find(|q| q.name == name).map(|q| q.url.as_str())
    }

    /// The names of the configured queues.
    pub fn names(&self) -> Vec<&'static str> {
        self.queues.iter().map(|q| q.name).collect()
    }

    /// The function consuming `name`, and Lambda, when both are configured.
    pub fn consumer(&self, name: &str) -> Option<(&aws_sdk_lambda::Client, &str)> {
        let lambda = self.lambda.as_ref()?;
        let f = self.consumers.iter().find(|(q, _)| *q == name)?;
        Some((lambda, f.1.as_str()))
    }

    pub fn clients(&self) -> &shared::aws::Clients {
        &self.clients
    }
}

/// What a queue is for.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueRole {
    /// Jobs (or continuations) waiting for their function.
    Work,
    /// Messages delivered too often; the sweeper consumes them.
    DeadLetter,
    /// A non-admin's own jobs (from the counters, not SQS).
    Own,
}

/// One queue of `GET /queues`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueDepth {
    /// `high`, `normal`, `ingest_continue`, `high_dead_letter`, `normal_dead_letter`,
    /// `ingest_dead_letter`; `your jobs` for a non-admin.
    pub name: String,
    pub role: QueueRole,
    /// Messages waiting (SQS `ApproximateNumberOfMessages`); absent with `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible: Option<i64>,
    /// Received and not yet deleted (`ApproximateNumberOfMessagesNotVisible`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<i64>,
    /// Sent with a delay not yet over (`ApproximateNumberOfMessagesDelayed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delayed: Option<i64>,
    /// `unavailable` when SQS did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its event source mapping is disabled (`Disabled`/`Disabling`): the function receives
    /// nothing from it, messages wait. `null`: not known (no mapping found, Lambda unavailable,
    /// or not an admin).
    pub paused: Option<bool>,
    /// The mapping's `State` as Lambda reports it (`Enabled`, `Disabled`, `Enabling`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_state: Option<String>,
    /// The function whose event source mapping reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// The answer of `GET /queues`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueDepths {
    pub queues: Vec<QueueDepth>,
}

const ATTRIBUTES: [(&str, &str); 3] = [
    ("ApproximateNumberOfMessages", "visible"),
    ("ApproximateNumberOfMessagesNotVisible", "in_flight"),
    ("ApproximateNumberOfMessagesDelayed", "delayed"),
];

/// A queue's depth and its ARN (to match its event source mapping).
async fn depth(clients: shared::aws::Clients, q: QueueRef) -> (QueueDepth, Option<String>) {
    let mut req = clients.sqs.get_queue_attributes().queue_url(&q.url);
    for (attribute, _) in ATTRIBUTES {
        req = req.attribute_names(attribute.into());
    }
    req = req.attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn);
    let role = if q.role == "work" {
        QueueRole::Work
    } else {
        QueueRole::DeadLetter
    };
    let mut d = QueueDepth {
        name: q.name.to_string(),
        role,
        visible: None,
        in_flight: None,
        delayed: None,
        error: None,
        paused: None,
        mapping_state: None,
        consumer: None,
    };
    match req.send().await {
        Ok(out) => {
            let get = |attribute: &str| {
                out.attributes()
                    .and_then(|m| m.iter().find(|(k, _)| k.as_str() == attribute))
                    .map(|(_, v)| v.clone())
            };
            let n = |attribute: &str| get(attribute).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            d.visible = Some(n(ATTRIBUTES[0].0));
            d.in_flight = Some(n(ATTRIBUTES[1].0));
            d.delayed = Some(n(ATTRIBUTES[2].0));
            (d, get("QueueArn"))
        }
        Err(e) => {
            let e = shared::Error::aws("GetQueueAttributes", e);
            tracing::warn!(queue = q.name, error = %e, "queue depth unavailable");
            d.error = Some("unavailable".into());
            (d, None)
        }
    }
}

/// `GET /queues`: for admins, the approximate depth of each queue (waiting, in flight, delayed),
/// as SQS reports it, and whether its event source mapping is paused (`[]` when the function was
/// started without [`Queues`]). The queues hold everyone's work, so other callers get their own
/// jobs' place in them instead, from their exact counts: one entry, role `own`.
#[utoipa::path(get, path = "/queues", summary = "Depth of each SQS queue (waiting, in flight, delayed) and whether it is paused, dead-letter queues included; for non-admins their own jobs' place", tag = "jobs",
    responses((status = 200, description = "Each queue: its depth, or `error`; `paused` from its event source mapping", body = QueueDepths)))]
pub async fn queues(
    State(app): State<AppState>,
    Signed(caller): Signed,
    queues: Option<Extension<Queues>>,
) -> Result<Json<QueueDepths>, ApiError> {
    if !caller.admin {
        let stats = app.jobs.stats(&caller, shared::clock::now()).await?;
        let n = |s: &str| stats.by_status.get(s).copied().unwrap_or(0);
        let own = QueueDepth {
            name: "your jobs".into(),
            role: QueueRole::Own,
            visible: Some(n("pending") + n("queued")),
            in_flight: Some(n("processing")),
            delayed: Some(0),
            error: None,
            paused: None,
            mapping_state: None,
            consumer: None,
        };
        return Ok(Json(QueueDepths { queues: vec![own] }));
    }
    Ok(Json(depths(queues).await))
}

async fn depths(queues: Option<Extension<Queues>>) -> QueueDepths {
    let Some(Extension(queues)) = queues else {
        return QueueDepths { queues: vec![] };
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, q) in queues.queues.iter().enumerate() {
        let (clients, q) = (queues.clients.clone(), q.clone());
        tasks.spawn(async move { (i, depth(clients, q).await) });
    }
    // The mappings of each consumer function, at the same time as the depths.
    let mapping_states = crate::queue_control::mapping_states(&queues);
    let mut depths: Vec<Option<(QueueDepth, Option<String>)>> = vec![None; queues.queues.len()];
    let (_, states) = tokio::join!(
        async {
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok((i, d)) => depths[i] = Some(d),
                    Err(e) => tracing::error!(error = %e, "queue depth task failed"),
                }
            }
        },
        mapping_states
    );
    let queues_out = depths
        .into_iter()
        .zip(&queues.queues)
        .map(|(d, q)| {
            let (mut d, arn) = d.unwrap_or_else(|| {
                (
                    QueueDepth {
                        name: q.name.to_string(),
                        role: if q.role == "work" {
                            QueueRole::Work
                        } else {
                            QueueRole::DeadLetter
                        },
                        visible: None,
                        in_flight: None,
                        delayed: None,
                        error: Some("unavailable".into()),
                        paused: None,
                        mapping_state: None,
                        consumer: None,
                    },
                    None,
                )
            });
            if let Some((_, function)) = queues.consumer(q.name) {
                d.consumer = Some(function.to_string());
                if let Some(state) = arn.and_then(|arn| states.get(&(function.to_string(), arn)).cloned()) {
                    d.paused = Some(crate::queue_control::is_paused(&state));
                    d.mapping_state = Some(state);
                }
            }
            d
        })
        .collect();
    QueueDepths { queues: queues_out }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use shared::service::Jobs;
    use shared::store::memory::{MemoryEntryStore, MemoryJobStore, MemoryPartStore, MemoryQueue};
    use tower::ServiceExt;

    use super::*;
    use crate::app::router;

    /// The router over the in-memory stores, with resource names `test-NAME` (nothing is
    /// called for pages; the S3 client is never used).
    fn offline_router() -> Router {
        let (s3, _) = crate::fast_tests::idle_clients();
        router(AppState {
            jobs: Jobs::new(
                Arc::new(MemoryJobStore::new()),
                Arc::new(MemoryQueue::new()),
                time::Duration::seconds(60),
            ),
            files: crate::files::Files {
                s3,
                bucket: "test-UPLOADS_BUCKET".into(),
                entries: Arc::new(MemoryEntryStore::new()),
                max_upload_bytes: 4096,
                max_presigned_bytes: 8192,
            },
            parts: Arc::new(MemoryPartStore::new()),
            // Pages as an admin sees them; sign-in is tested in `fast_tests`.
            auth: crate::auth::AuthConfig::off(),
        })
    }

    async fn get(app: &Router, uri: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(etag) = etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_carries_the_state_machine_and_this_deployments_settings() {
        let app = offline_router();
        let (status, headers, html) = get(&app, "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let meta = html
            .split_once(r#"<script type="application/json" id="meta">"#)
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(json, _)| serde_json::from_str::<Value>(json).unwrap())
            .expect("index.html carries the meta JSON");
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let listed = meta["transitions"][from.as_str()]
                    .as_array()
                    .unwrap()
                    .contains(&json!(to.as_str()));
                assert_eq!(listed, from.can_become(to), "{from} -> {to}");
            }
        }
        assert_eq!(meta["uploads_bucket"], "test-UPLOADS_BUCKET");
        assert_eq!(meta["max_upload_bytes"], 4096);
        assert_eq!(
            meta["kinds"],
            json!(["image", "log_ingest", "archive", "email", "notification", "report"])
        );
    }

    #[tokio::test]
    async fn the_page_names_the_live_url_and_its_csp_lets_it_connect_there_only() {
        let live = LiveUrl::parse("wss://abc123.execute-api.eu-west-1.amazonaws.com/live").unwrap();
        let app = offline_router().layer(axum::Extension(live));
        let (_, headers, html) = get(&app, "/", None).await;
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        let connect: Vec<&str> = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("connect-src"))
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(
            connect,
            [
                "connect-src",
                "'self'",
                "wss://abc123.execute-api.eu-west-1.amazonaws.com",
                "http:",
                "https:"
            ],
            "{csp}"
        );
        assert!(
            html.contains(r#""live_url":"wss://abc123.execute-api.eu-west-1.amazonaws.com/live""#),
            "{html}"
        );

        // Without it (no LIVE_URL): no WebSocket is allowed and the page is told there is none.
        let (_, headers, html) = get(&offline_router(), "/", None).await;
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(html.contains(r#""live_url":null"#), "{html}");
    }

    #[test]
    fn a_live_url_is_a_websocket_url_that_cannot_break_out_of_the_csp() {
        let local = LiveUrl::parse(" ws://127.0.0.1:3002/ ").unwrap();
        assert_eq!(
            (local.as_str(), local.origin()),
            ("ws://127.0.0.1:3002", "ws://127.0.0.1:3002")
        );
        let aws = LiveUrl::parse("wss://x.execute-api.us-east-1.amazonaws.com/live?a=1").unwrap();
        assert_eq!(aws.origin(), "wss://x.execute-api.us-east-1.amazonaws.com");
        for bad in [
            "https://x.example.com/live",
            "ws://",
            "ws:///live",
            "wss://x.example.com; script-src *",
            "wss://x.example.com 'unsafe-inline'",
            "wss://user@x.example.com",
            "wss://x.example.com,y",
        ] {
            let e = LiveUrl::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("LIVE_URL"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn the_console_loads_no_remote_image() {
        let app = offline_router();
        let (_, headers, _) = get(&app, "/", None).await;
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        let img_src: Vec<&str> = csp
            .split(';')
            .map(str::trim)
            .filter(|d| d.starts_with("img-src"))
            .collect();
        assert_eq!(img_src, ["img-src 'self'"], "{csp}");
        // An image job's URLs are links and text: no script builds an <img> from them.
        for (file, _, source) in ASSETS {
            assert!(!source.contains("h('img'"), "{file} renders an <img>");
        }
    }

    #[tokio::test]
    async fn a_router_started_without_the_queues_lists_none_rather_than_failing() {
        let (status, _, body) = get(&offline_router(), "/queues", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"queues":[]}"#));
    }

    #[tokio::test]
    async fn an_unchanged_page_or_asset_costs_a_304() {
        let app = offline_router();
        for uri in ["/", "/dashboard/app.js"] {
            let (_, headers, _) = get(&app, uri, None).await;
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
            let etag = headers[header::ETAG].to_str().unwrap().to_string();
            let (status, _, body) = get(&app, uri, Some(&etag)).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{uri}");
            assert!(body.is_empty());
            let (status, _, _) = get(&app, uri, Some("\"stale\"")).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
    }

    #[tokio::test]
    async fn the_page_names_this_builds_assets_which_are_cached_for_good_and_import_each_other_by_version() {
        let app = offline_router();
        let (_, _, html) = get(&app, "/", None).await;
        let v = format!("?v={}", SERVED.version);
        // Every reference in the page is versioned, and every module is preloaded.
        let refs: Vec<&str> = html
            .split("\"dashboard/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert!(refs.len() >= ASSETS.len(), "{refs:?}");
        assert!(refs.iter().all(|r| r.ends_with(&v)), "{refs:?}");
        for (name, _, _) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            assert!(
                html.contains(&format!("<link rel=\"modulepreload\" href=\"dashboard/{name}{v}\">")),
                "{name} preloaded"
            );
        }
        for (name, _, raw) in ASSETS {
            let (status, headers, body) = get(&app, &format!("/dashboard/{name}{v}"), None).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(
                headers[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable",
                "{name}"
            );
            // A module imports its siblings at this version only, and is otherwise unchanged.
            let imports: Vec<&str> = body
                .split("from './")
                .skip(1)
                .map(|s| s.split('\'').next().unwrap())
                .collect();
            assert!(imports.iter().all(|i| i.ends_with(&v)), "{name}: {imports:?}");
            assert_eq!(body.replace(&v, ""), *raw, "{name}");
            // Unversioned or another build's version: served, but asked again on every load.
            for other in ["", "?v=0123456789abcdef"] {
                let (status, headers, _) = get(&app, &format!("/dashboard/{name}{other}"), None).await;
                assert_eq!(
                    (status, &headers[header::CACHE_CONTROL]),
                    (StatusCode::OK, &"no-cache".parse::<HeaderValue>().unwrap()),
                    "{name}{other}"
                );
            }
        }
    }

    #[tokio::test]
    async fn every_file_the_page_loads_is_embedded_with_its_type() {
        let app = offline_router();
        // Files named by index.html (dashboard/x) and by the modules' imports (./x.js).
        let mut wanted: Vec<String> = INDEX
            .split("dashboard/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect();
        for (_, _, text) in ASSETS {
            wanted.extend(
                text.split("from './")
                    .skip(1)
                    .map(|s| s.split('\'').next().unwrap().to_string()),
            );
        }
        wanted.sort();
        wanted.dedup();
        assert!(wanted.len() >= 8, "{wanted:?}");
        for file in &wanted {
            let (status, headers, body) = get(&app, &format!("/dashboard/{file}"), None).await;
            assert_eq!(status, StatusCode::OK, "{file}");
            assert!(!body.is_empty(), "{file}");
            let ct = headers[header::CONTENT_TYPE].to_str().unwrap();
            let expected = match file.rsplit('.').next().unwrap() {
                "js" => "text/javascript",
                "css" => "text/css",
                "svg" => "image/svg+xml",
                other => panic!("unexpected asset type {other}"),
            };
            assert!(ct.starts_with(expected), "{file}: {ct}");
        }
        let (status, _, body) = get(&app, "/dashboard/nope.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no dashboard file"), "{body}");
    }
}
