//! Helpers for tests that drive the running local stack (`infra/up`; `infra/test` starts it).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..")
}

/// Base URL of the local HTTP API.
pub fn api_url() -> String {
    std::env::var("API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into())
}

pub use local_bridge::testing::{stack_var, state_dir};

/// An access token of the local stack's issuer for `user` (in the `admin` group when `admin`),
/// as `infra/token` prints it; minted once per user and test binary.
pub fn token(user: &str, admin: bool) -> String {
    static TOKENS: std::sync::Mutex<Vec<((String, bool), String)>> = std::sync::Mutex::new(Vec::new());
    let mut tokens = TOKENS.lock().unwrap();
    if let Some((_, t)) = tokens.iter().find(|(k, _)| k.0 == user && k.1 == admin) {
        return t.clone();
    }
    let groups: &[&str] = if admin { &["admin"] } else { &[] };
    let t = local_bridge::auth::mint(&state_dir(), user, groups)
        .expect("minting a token with the local issuer's key ($JOBS_STATE_DIR/auth; infra/up makes it)");
    tokens.push(((user.to_string(), admin), t.clone()));
    t
}

/// An HTTP client that sends `user`'s token with every request.
pub fn http_as(user: &str, admin: bool) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", token(user, admin));
    headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The client most tests use: an admin of the local stack (`e2e-admin`), so tests about jobs see
/// every job; ownership has its own tests (`tests/auth.rs`).
pub fn http() -> reqwest::Client {
    http_as("e2e-admin", true)
}

/// `cargo lambda invoke <function> --data-file <events/...>` against `cargo lambda watch`;
/// returns the function's JSON output.
pub fn invoke(function: &str, data_file: &str) -> Value {
    let port = std::env::var("LAMBDA_PORT").unwrap_or_else(|_| "9000".into());
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "lambda",
            "invoke",
            function,
            "--data-file",
            data_file,
            "-A",
            "127.0.0.1",
            "-P",
            &port,
            "--output-format",
            "json",
        ])
        .output()
        .expect("running cargo lambda invoke (is cargo-lambda on PATH? infra/test puts it there)");
    assert!(
        out.status.success(),
        "cargo lambda invoke {function} {data_file} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invoke output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The body of an API Gateway response returned by the api function, parsed.
pub fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).expect("JSON body")
}

/// `GET {API_URL}{path}`, parsed as JSON.
pub async fn get_json(path: &str) -> Value {
    get_json_with(&http(), path).await
}

/// `GET {API_URL}{path}` with `client` (and so its token), parsed as JSON.
pub async fn get_json_with(client: &reqwest::Client, path: &str) -> Value {
    client
        .get(format!("{}{path}", api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `POST {API_URL}{path}` with a JSON body: the status and the parsed answer (`null` if none).
pub async fn post_json(path: &str, body: &Value) -> (u16, Value) {
    let resp = http()
        .post(format!("{}{path}", api_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /jobs/{id}` until the job is finished (or panics after `timeout`).
pub async fn wait_finished(id: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let job = get_json(&format!("/jobs/{id}")).await;
        if matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
            return job;
        }
        assert!(
            start.elapsed() < timeout,
            "job {id} not finished after {timeout:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An S3 client for the emulator (endpoints from the environment).
pub async fn s3() -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

/// Puts `body` under a new key of the e2e admin's uploads prefix (`uploads/e2e-admin/<uuid>.bin`)
/// and returns it as an archive job's `source` (`s3://<bucket>/<key>`).
pub async fn upload(body: Vec<u8>) -> String {
    let bucket = stack_var("UPLOADS_BUCKET");
    let key = format!("uploads/e2e-admin/{}.bin", uuid::Uuid::new_v4());
    s3().await
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(body.into())
        .send()
        .await
        .unwrap();
    format!("s3://{bucket}/{key}")
}
