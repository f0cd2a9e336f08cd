//! The WebSocket API's routes (route selection `$request.body.action`).
//!
//! | route          | what it does                                                              |
//! |----------------|---------------------------------------------------------------------------|
//! | `$connect`     | checks `?token=` (401 refuses the connection), records the connection with its owner and admin flag; `?job_id=` subscribes to that job at once (404 when the caller may not see it) |
//! | `$disconnect`  | forgets the connection and its subscriptions                               |
//! | `subscribe`    | `{"action":"subscribe","job_id":"..."}` one job (its state now comes back), or without `job_id` every job the caller may see |
//! | `unsubscribe`  | the same shapes, undone                                                   |
//! | `$default`     | anything else: an error naming the actions                                |
//!
//! Replies (route responses) are JSON: `{"type":"subscribed",...}`, `{"type":"unsubscribed",...}`
//! or `{"type":"error","error":"..."}`.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use serde_json::{Value, json};
use shared::auth::Caller;
use shared::error::Error;
use shared::job::JobId;
use shared::live::connections::{Connection, ConnectionStore};
use shared::live::token::SignIn;
use shared::live::{JobUpdate, Topic, Viewer};
use shared::store::JobStore;

pub struct Routes {
    pub connections: Arc<dyn ConnectionStore>,
    pub jobs: Arc<dyn JobStore>,
    pub sign_in: SignIn,
}

fn reply(status: i64, body: Value) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = Some(Body::Text(body.to_string()));
    r
}

fn error_reply(e: &Error) -> ApiGatewayProxyResponse {
    let status = match e {
        Error::Invalid(_) => 400,
        Error::Unauthorized(_) => 401,
        Error::Forbidden(_) => 403,
        Error::NotFound(_) => 404,
        Error::Conflict(_) => 409,
        _ => 500,
    };
    if status == 500 {
        tracing::error!(error = %e, "live route failed");
        return reply(500, json!({"type": "error", "error": "internal error"}));
    }
    reply(status, json!({"type": "error", "error": e.to_string()}))
}

/// What a `subscribe` or `unsubscribe` message names.
#[derive(Debug, PartialEq)]
enum Target {
    Job(JobId),
    All,
}

fn target(body: &Value) -> Result<Target, Error> {
    match body.get("job_id") {
        None | Some(Value::Null) => Ok(Target::All),
        Some(Value::String(s)) => s
            .parse()
            .map(Target::Job)
            .map_err(|_| Error::Invalid(format!("job_id: not a job id: {s:?}"))),
        Some(_) => Err(Error::Invalid("job_id: must be a string".into())),
    }
}

impl Routes {
    pub async fn handle(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let ctx = &event.request_context;
        let route = ctx.route_key.clone().unwrap_or_default();
        let Some(id) = ctx.connection_id.clone() else {
            return reply(400, json!({"type": "error", "error": "no connectionId in the event"}));
        };
        let result = match route.as_str() {
            "$connect" => self.connect(&id, &event).await,
            "$disconnect" => self
                .connections
                .disconnect(&id)
                .await
                .map(|_| json!({"type": "disconnected"})),
            "subscribe" => self.subscribe(&id, &event).await,
            "unsubscribe" => self.unsubscribe(&id, &event).await,
            _ => Err(Error::Invalid(format!(
                "unknown action {}: send {{\"action\":\"subscribe\",\"job_id\":\"...\"}} (no job_id: every job you may see) or {{\"action\":\"unsubscribe\",...}}",
                body_json(&event)
                    .ok()
                    .and_then(|b| b.get("action").cloned())
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(none)".into())
            ))),
        };
        tracing::info!(route = %route, connection_id = %id, ok = result.is_ok(), "live route");
        match result {
            Ok(body) => reply(200, body),
            Err(e) => error_reply(&e),
        }
    }

    async fn connect(&self, id: &str, event: &ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
        let q = &event.query_string_parameters;
        let caller = self.sign_in.caller(q.first("token")).await?;
        let job = match q.first("job_id") {
            Some(raw) => Some(self.visible_job(&caller, raw).await?),
            None => None,
        };
        let connection = Connection {
            id: id.to_string(),
            viewer: Viewer::of(&caller),
            connected_at: shared::clock::now(),
        };
        self.connections.connect(&connection).await?;
        if let Some(job) = &job {
            self.connections.subscribe(&connection, &Topic::Job(*job)).await?;
        }
        Ok(json!({"type": "connected", "owner": caller.owner, "admin": caller.admin}))
    }

    async fn visible_job(&self, caller: &Caller, raw: &str) -> Result<JobId, Error> {
        let id: JobId = raw
            .parse()
            .map_err(|_| Error::Invalid(format!("job_id: not a job id: {raw:?}")))?;
        self.update_of(caller, id).await.map(|_| id)
    }

    /// The job's state now, when the caller may see it; another owner's job is "not found".
    async fn update_of(&self, caller: &Caller, id: JobId) -> Result<JobUpdate, Error> {
        match self.jobs.get(id).await? {
            Some(job) if caller.sees(&job) => Ok(JobUpdate::of(&job)),
            _ => Err(Error::NotFound(format!("job {id} not found"))),
        }
    }

    async fn connection(&self, id: &str) -> Result<Connection, Error> {
        self.connections
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {id} is not known (connect again)")))
    }

    async fn subscribe(&self, id: &str, event: &ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
        let target = target(&body_json(event)?)?;
        let connection = self.connection(id).await?;
        let caller = Caller {
            owner: connection.viewer.owner.clone(),
            name: connection.viewer.owner.to_string(),
            admin: connection.viewer.admin,
            scopes: Vec::new(),
        };
        match target {
            Target::Job(job_id) => {
                let now = self.update_of(&caller, job_id).await?;
                self.connections.subscribe(&connection, &Topic::Job(job_id)).await?;
                Ok(json!({"type": "subscribed", "job_id": job_id, "job": now}))
            }
            Target::All => {
                self.connections
                    .subscribe(&connection, &connection.viewer.all_topic())
                    .await?;
                Ok(json!({"type": "subscribed", "all": true, "admin": connection.viewer.admin}))
            }
        }
    }

    async fn unsubscribe(&self, id: &str, event: &ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
        let target = target(&body_json(event)?)?;
        let connection = self.connection(id).await?;
        let topic = match target {
            Target::Job(job_id) => Topic::Job(job_id),
            Target::All => connection.viewer.all_topic(),
        };
        self.connections.unsubscribe(id, &topic).await?;
        Ok(match target {
            Target::Job(job_id) => json!({"type": "unsubscribed", "job_id": job_id}),
            Target::All => json!({"type": "unsubscribed", "all": true}),
        })
    }
}

fn body_json(event: &ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
    let body = event.body.as_deref().unwrap_or_default();
    serde_json::from_str(body).map_err(|_| Error::Invalid("body: not a JSON object".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::auth::Owner;
    use shared::job::{Job, JobSpec};
    use shared::live::connections::MemoryConnectionStore;
    use shared::store::memory::MemoryJobStore;

    /// The fixtures in `events/live/`, with the route, connection, query and body of a test.
    fn event(route: &str, id: &str, query: &[(&str, &str)], body: Option<Value>) -> ApiGatewayWebsocketProxyRequest {
        let file = if route == "$connect" { "connect" } else { "subscribe" };
        let text =
            std::fs::read_to_string(format!("{}/../../events/live/{file}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut raw: Value = serde_json::from_str(&text).unwrap();
        raw["requestContext"]["routeKey"] = json!(route);
        raw["requestContext"]["connectionId"] = json!(id);
        raw["queryStringParameters"] = query.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        raw["multiValueQueryStringParameters"] = query.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
        raw["body"] = body.map(|b| json!(b.to_string())).unwrap_or(Value::Null);
        serde_json::from_value(raw).unwrap()
    }

    #[test]
    fn the_fixtures_parse_as_api_gateway_sends_them() {
        let e = event(
            "subscribe",
            "XyZ1aeBnoAMCJRg=",
            &[],
            Some(json!({"action": "subscribe"})),
        );
        assert_eq!(e.request_context.event_type.as_deref(), Some("MESSAGE"));
        assert_eq!(e.request_context.connected_at, 1795910400000);
    }

    async fn setup() -> (Routes, Arc<MemoryConnectionStore>, Job) {
        let store = Arc::new(MemoryConnectionStore::new());
        let jobs = Arc::new(MemoryJobStore::new());
        let spec = JobSpec::from_json("archive", json!({"asset_id": "a1", "source": "s3://b/k.mp4"})).unwrap();
        let mut job = Job::new(spec, 3, None, shared::clock::now()).unwrap();
        job.owner = Some(Owner::parse("alice").unwrap());
        jobs.create(&job, None, &[]).await.unwrap();
        let routes = Routes {
            connections: store.clone(),
            jobs,
            sign_in: SignIn::Off,
        };
        (routes, store, job)
    }

    fn body(r: &ApiGatewayProxyResponse) -> Value {
        match &r.body {
            Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn connect_subscribe_unsubscribe_disconnect() {
        let (routes, store, job) = setup().await;
        let r = routes.handle(event("$connect", "c1", &[], None)).await;
        assert_eq!(r.status_code, 200);
        let r = routes
            .handle(event(
                "subscribe",
                "c1",
                &[],
                Some(json!({"action": "subscribe", "job_id": job.id})),
            ))
            .await;
        assert_eq!(r.status_code, 200, "{:?}", body(&r));
        assert_eq!(body(&r)["job"]["text"], "queued");
        assert_eq!(store.topics("c1"), vec![Topic::Job(job.id)]);
        // Auth off: everyone is one admin, "all" is every job.
        routes
            .handle(event("subscribe", "c1", &[], Some(json!({"action": "subscribe"}))))
            .await;
        assert!(store.topics("c1").contains(&Topic::All));
        routes
            .handle(event(
                "unsubscribe",
                "c1",
                &[],
                Some(json!({"action": "unsubscribe", "job_id": job.id})),
            ))
            .await;
        assert_eq!(store.topics("c1"), vec![Topic::All]);
        routes.handle(event("$disconnect", "c1", &[], None)).await;
        assert!(store.ids().is_empty());
    }

    #[tokio::test]
    async fn connect_with_job_id_subscribes_at_once_and_refuses_an_unknown_job() {
        let (routes, store, job) = setup().await;
        let id = job.id.to_string();
        let r = routes.handle(event("$connect", "c1", &[("job_id", &id)], None)).await;
        assert_eq!(r.status_code, 200);
        assert_eq!(store.topics("c1"), vec![Topic::Job(job.id)]);
        let other = JobId::new().to_string();
        let r = routes
            .handle(event("$connect", "c2", &[("job_id", &other)], None))
            .await;
        assert_eq!(r.status_code, 404, "{:?}", body(&r));
        let r = routes.handle(event("$connect", "c3", &[("job_id", "x")], None)).await;
        assert_eq!(r.status_code, 400);
        assert_eq!(
            store.ids(),
            vec!["c1".to_string()],
            "a refused connection is not recorded"
        );
    }

    #[tokio::test]
    async fn bad_messages_get_errors_naming_the_field() {
        let (routes, _store, _job) = setup().await;
        routes.handle(event("$connect", "c1", &[], None)).await;
        let r = routes
            .handle(event(
                "subscribe",
                "c1",
                &[],
                Some(json!({"action": "subscribe", "job_id": 7})),
            ))
            .await;
        assert_eq!(r.status_code, 400);
        assert!(body(&r)["error"].as_str().unwrap().contains("job_id"));
        let r = routes
            .handle(event("$default", "c1", &[], Some(json!({"action": "dance"}))))
            .await;
        assert_eq!(r.status_code, 400);
        assert!(body(&r)["error"].as_str().unwrap().contains("unknown action \"dance\""));
        let r = routes
            .handle(event("subscribe", "nobody", &[], Some(json!({"action": "subscribe"}))))
            .await;
        assert_eq!(r.status_code, 404);
    }

    #[tokio::test]
    async fn with_sign_in_a_missing_token_refuses_the_connection() {
        let (mut routes, store, _job) = setup().await;
        routes.sign_in = SignIn::Jwt(shared::live::token::TokenVerifier::new(
            "http://127.0.0.1:9",
            vec!["c".into()],
        ));
        let r = routes.handle(event("$connect", "c1", &[], None)).await;
        assert_eq!(r.status_code, 401);
        assert!(store.ids().is_empty());
    }

    #[tokio::test]
    async fn another_owners_job_cannot_be_subscribed() {
        let (mut routes, store, job) = setup().await;
        // bob's connection, recorded as a $connect with his token would have.
        routes.sign_in = SignIn::Off;
        store
            .connect(&Connection {
                id: "bob".into(),
                viewer: Viewer {
                    owner: Owner::parse("bob").unwrap(),
                    admin: false,
                },
                connected_at: shared::clock::now(),
            })
            .await
            .unwrap();
        let r = routes
            .handle(event(
                "subscribe",
                "bob",
                &[],
                Some(json!({"action": "subscribe", "job_id": job.id})),
            ))
            .await;
        assert_eq!(r.status_code, 404);
        assert!(store.topics("bob").is_empty());
        routes
            .handle(event("subscribe", "bob", &[], Some(json!({"action": "subscribe"}))))
            .await;
        assert_eq!(store.topics("bob"), vec![Topic::Owner(Owner::parse("bob").unwrap())]);
    }
}
