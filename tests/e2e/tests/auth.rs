//! Who may do what, through the running stack: the bridge enforces the template's JWT authorizer
//! as API Gateway does (401 with its body), the api function scopes every job route to the
//! token's owner (another owner's job is a 404) and lets admins see and act on everything.

use e2e::{api_url, http_as, state_dir};
use local_bridge::auth;
use serde_json::{Value, json};

/// Every job route of the API (method, path with `{id}` for a job id).
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/me"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("POST", "/jobs/retry"),
    ("GET", "/jobs/{id}"),
    ("DELETE", "/jobs/{id}"),
    ("PUT", "/jobs/{id}/status"),
    ("POST", "/jobs/{id}/retry"),
    ("GET", "/jobs/{id}/images"),
    ("GET", "/stats"),
    ("GET", "/queues"),
    ("POST", "/api/v1/files/upload"),
    ("POST", "/api/v1/files"),
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}/entries"),
    ("POST", "/api/submit/"),
    ("POST", "/api/submit"),
    ("GET", "/api/status?jobid={id}"),
];

async fn send(token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", api_url());
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_job_route_refuses_a_missing_or_bad_token_as_api_gateway_does() {
    let dir = state_dir();
    let bad = [
        ("no token", None),
        ("malformed", Some("not-a-jwt".to_string())),
        ("badly signed", Some(auth::mint_wrong_key(&dir, "alice").unwrap())),
        ("expired", Some(auth::mint_expired(&dir, "alice").unwrap())),
        (
            "wrong audience",
            Some(auth::mint_wrong_audience(&dir, "alice").unwrap()),
        ),
        ("wrong issuer", Some(auth::mint_wrong_issuer(&dir, "alice").unwrap())),
    ];
    let id = uuid::Uuid::now_v7();
    for (method, route) in PROTECTED {
        let path = route.replace("{id}", &id.to_string());
        for (what, token) in &bad {
            let (status, body) = send(token.as_deref(), method, &path, Some(json!({}))).await;
            assert_eq!(status, 401, "{what}: {method} {path}: {body}");
            assert_eq!(body, json!({"message": "Unauthorized"}), "{what}: {method} {path}");
        }
    }
    for public in ["/health", "/openapi.json", "/auth/config", "/"] {
        let resp = reqwest::get(format!("{}{public}", api_url())).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{public} is public");
    }
}

#[tokio::test]
async fn one_owner_cannot_see_or_touch_anothers_jobs_and_an_admin_can() {
    let alice = http_as("alice-e2e", false);
    let bob = http_as("bob-e2e", false);
    let admin = http_as("ops-e2e", true);
    let visits = json!({"count": 1, "visits": [{"store_id": "S00339218", "image_url": ["https://example.com/a.jpg"], "visit_time": "t"}]});
    let created: Value = alice
        .post(format!("{}/api/submit/", api_url()))
        .json(&visits)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["job_id"].as_str().expect("alice's job").to_string();

    let me: Value = e2e::get_json_with(&alice, &format!("/me")).await;
    assert_eq!(
        (me["owner"].as_str(), me["admin"].as_bool()),
        (Some("alice-e2e"), Some(false))
    );

    for (method, path) in [
        ("GET", format!("/jobs/{id}")),
        ("DELETE", format!("/jobs/{id}")),
        ("POST", format!("/jobs/{id}/retry")),
        ("GET", format!("/jobs/{id}/images")),
    ] {
        let resp = bob
            .request(method.parse().unwrap(), format!("{}{path}", api_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "bob: {method} {path}");
    }
    let resp = bob
        .get(format!("{}/api/status?jobid={id}", api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400, "Retail Pulse's answer for an unknown id");
    let listed: Value = e2e::get_json_with(&bob, &format!("/jobs?kind=image")).await;
    assert!(
        listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["owner"] == "bob-e2e"),
        "bob lists only his own jobs"
    );
    let resp = alice
        .put(format!("{}/jobs/{id}/status", api_url()))
        .json(&json!({"status": "failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "status moves are the admins'");

    let job: Value = e2e::get_json_with(&alice, &format!("/jobs/{id}")).await;
    assert_eq!(job["owner"], "alice-e2e");
    let seen = admin.get(format!("{}/jobs/{id}", api_url())).send().await.unwrap();
    assert_eq!(seen.status().as_u16(), 200, "an admin sees everyone's jobs");
    let stats: Value = e2e::get_json_with(&alice, &format!("/stats")).await;
    assert!(stats["total"].as_i64().unwrap() >= 1);
    let all: Value = e2e::get_json_with(&admin, &format!("/stats")).await;
    assert!(all["total"].as_i64().unwrap() >= stats["total"].as_i64().unwrap());
}
