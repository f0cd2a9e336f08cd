//! Live job updates through the running stack: the bridge's WebSocket API (`$WS_URL`), the live
//! function's routes, the jobs table's stream into the notify function, and its posts back through
//! the bridge's `@connections` endpoint. No polling: every status comes as a pushed message.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url() -> String {
    std::env::var("WS_URL").unwrap_or_else(|_| "ws://127.0.0.1:3002".into())
}

async fn connect(path_and_query: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async(format!("{}{path_and_query}", ws_url()))
        .await
        .map(|(ws, _)| ws)
}

/// The next JSON message within `within`, if any.
async fn next(ws: &mut Ws, within: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// A JSONL file of `n` lines, one of them bad.
fn jsonl(n: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        if i == n / 2 {
            out.push_str("not json\n");
        } else {
            out.push_str(&format!(
                "{{\"timestamp\":\"2026-01-01T00:00:{:02}Z\",\"level\":\"INFO\",\"message\":\"line {i}\"}}\n",
                i % 60
            ));
        }
    }
    out.into_bytes()
}

async fn upload_as(user: &str, body: Vec<u8>) -> String {
    let form = Form::new().part("file", Part::bytes(body).file_name("live.jsonl"));
    let resp = e2e::http_as(user, false)
        .post(format!("{}/api/v1/files/upload", e2e::api_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_subscriber_sees_its_job_go_from_queued_to_completed_and_another_owner_sees_nothing() {
    // GIVEN alice and bob connected with their tokens, each subscribed to every job they may see
    let alice_user = format!("live-a-{}", uuid::Uuid::new_v4().simple());
    let bob_user = format!("live-b-{}", uuid::Uuid::new_v4().simple());
    let mut alice = connect(&format!("/?token={}", e2e::token(&alice_user, false)))
        .await
        .unwrap();
    let mut bob = connect(&format!("/live?token={}", e2e::token(&bob_user, false)))
        .await
        .unwrap();
    for ws in [&mut alice, &mut bob] {
        send(ws, json!({"action": "subscribe"})).await;
        let reply = next(ws, Duration::from_secs(30)).await.expect("a reply to subscribe");
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["all"], true);
    }

    // WHEN alice uploads a file (an ingest job)
    let id = upload_as(&alice_user, jsonl(2000)).await;

    // THEN her connection receives the job's changes, in order, up to completed
    let started = Instant::now();
    let mut seen: Vec<Value> = Vec::new();
    while seen
        .last()
        .is_none_or(|m| m["status"] != "completed" && m["status"] != "failed")
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no end after 2 min: {seen:#?}"
        );
        let Some(m) = next(&mut alice, Duration::from_secs(60)).await else {
            panic!("no message within 60 s; so far: {seen:#?}")
        };
        if m["job_id"] == id.as_str() {
            seen.push(m);
        }
    }
    let texts: Vec<&str> = seen.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(seen[0]["type"], "job");
    assert_eq!(seen[0]["version"], 1);
    assert_eq!(texts[0], "queued", "{texts:?}");
    assert!(texts.contains(&"started processing"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.ends_with("% complete")),
        "progress steps: {texts:?}"
    );
    assert_eq!(
        *texts.last().unwrap(),
        "completed: 1999 stored, 1 rejected",
        "{texts:?}"
    );
    let versions: Vec<u64> = seen.iter().map(|m| m["job_version"].as_u64().unwrap()).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "in order, each once: {versions:?}"
    );
    let progress: Vec<u64> = seen.iter().map(|m| m["progress"].as_u64().unwrap()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    // AND bob, subscribed to all he may see, got nothing of it
    while let Some(m) = next(&mut bob, Duration::from_secs(2)).await {
        assert_ne!(m["job_id"], id.as_str(), "bob received alice's job: {m}");
    }
    // AND bob cannot subscribe to it by id: it is "not found" to him
    send(&mut bob, json!({"action": "subscribe", "job_id": id})).await;
    let reply = next(&mut bob, Duration::from_secs(30)).await.unwrap();
    assert_eq!(reply["type"], "error", "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("not found"), "{reply}");
}

#[tokio::test]
async fn connect_needs_a_token_and_the_seed_path_subscribes_to_one_job() {
    let user = format!("live-c-{}", uuid::Uuid::new_v4().simple());
    // No token, a bad token: the upgrade is refused with 401.
    for q in ["/", "/?token=garbage"] {
        match connect(q).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401, "{q}"),
            other => panic!("{q}: expected a refusal, got {:?}", other.map(|_| "a connection")),
        }
    }
    // Someone else's or no job: 404, as the HTTP API answers.
    let token = e2e::token(&user, false);
    let missing = uuid::Uuid::new_v4();
    match connect(&format!("/ws/jobs/{missing}?token={token}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!("expected 404, got {:?}", other.map(|_| "a connection")),
    }
    // An unknown action: $default answers with an error naming the actions.
    let mut ws = connect(&format!("/?token={token}")).await.unwrap();
    send(&mut ws, json!({"action": "dance"})).await;
    let reply = next(&mut ws, Duration::from_secs(30)).await.unwrap();
    assert_eq!(reply["type"], "error");
    assert!(reply["error"].as_str().unwrap().contains("unknown action"), "{reply}");

    // The seed's /ws/jobs/{job_id}: subscribed at connect; the job's end arrives.
    let id = upload_as(&user, jsonl(50)).await;
    let mut ws = connect(&format!("/ws/jobs/{id}?token={token}")).await.unwrap();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(120));
        let Some(m) = next(&mut ws, Duration::from_secs(60)).await else {
            // Finished before the connection: nothing more will come; the state is known.
            let state = e2e::get_json_with(&e2e::http_as(&user, false), &format!("/api/v1/jobs/{id}")).await;
            assert_eq!(state["status"], "completed", "{state}");
            break;
        };
        assert_eq!(m["job_id"], id.as_str());
        if m["status"] == "completed" {
            assert_eq!(m["text"], "completed: 49 stored, 1 rejected");
            break;
        }
    }
}

#[tokio::test]
async fn a_connection_that_answers_410_is_forgotten() {
    use shared::live::connections::{Connection, ConnectionStore, DynamoConnectionStore};
    // GIVEN a subscription whose client is long gone (its $disconnect lost)
    let user = format!("live-g-{}", uuid::Uuid::new_v4().simple());
    let config = shared::aws::sdk_config().await;
    let store = DynamoConnectionStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        e2e::stack_var("CONNECTIONS_TABLE"),
    );
    let ghost = Connection {
        id: format!("ghost{}=", uuid::Uuid::new_v4().simple()),
        viewer: shared::live::Viewer {
            owner: shared::auth::Owner::parse(&user).unwrap(),
            admin: false,
        },
        connected_at: shared::clock::now(),
    };
    store.connect(&ghost).await.unwrap();
    store.subscribe(&ghost, &ghost.viewer.all_topic()).await.unwrap();
    // WHEN a job of its owner changes
    let _id = upload_as(&user, jsonl(10)).await;
    // THEN the notify function's post gets 410 from the @connections endpoint and deletes it
    let started = Instant::now();
    while store.get(&ghost.id).await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the gone connection is still there"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let subs = store.subscribers(&[ghost.viewer.all_topic()]).await.unwrap();
    assert!(
        subs.iter().all(|s| s.connection_id != ghost.id),
        "its subscription is gone too"
    );
}

#[tokio::test]
async fn the_management_endpoint_answers_410_for_an_unknown_connection() {
    let base = ws_url().replace("ws://", "http://");
    let http = reqwest::Client::new();
    for (method, url) in [
        (reqwest::Method::POST, format!("{base}/@connections/nope=")),
        (reqwest::Method::GET, format!("{base}/live/@connections/nope=")),
        (reqwest::Method::DELETE, format!("{base}/@connections/nope=")),
    ] {
        let r = http.request(method.clone(), &url).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 410, "{method} {url}");
        assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
    }
}
