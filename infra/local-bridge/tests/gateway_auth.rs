//! The HTTP API's JWT authorizer, throttling and CORS, read from the project's template, against
//! the local issuer; functions in-process, no emulators needed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use local_bridge::auth::{self, DASHBOARD_CLIENT_ID, MACHINE_CLIENT_ID, Mint};
use local_bridge::gateway::Gateway;
use local_bridge::http_api;
use local_bridge::invoke::{InProcess, Invoker};
use local_bridge::issuer::Issuer;
use local_bridge::template::Template;
use local_bridge::testing::{local_parameters, template_path};
use serde_json::{Value, json};

type Calls = Arc<Mutex<Vec<Value>>>;

/// A local issuer on a free port with its own state dir, serving until the test ends.
struct Setup {
    state: PathBuf,
    issuer: String,
    http: reqwest::Client,
}

const DASHBOARD_URL: &str = "http://127.0.0.1:3000/";

async fn issuer() -> Setup {
    let state = std::env::temp_dir().join(format!("gw-auth-{}", uuid::Uuid::new_v4().simple()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Arc::new(Issuer::new(&state, &url, vec![DASHBOARD_URL.to_string()]).unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    tokio::spawn(issuer.serve(listener, stopped));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Setup {
        state,
        issuer: url,
        http,
    }
}

/// The project's HTTP API with the local stack's parameters plus `extra`, behind a gateway whose
/// function records its events and answers 200 (with a wildcard CORS header of its own).
async fn gateway(s: &Setup, extra: &[(&str, &str)]) -> (String, Calls) {
    let template = Template::load(&template_path()).unwrap();
    let mut params = local_parameters(&s.issuer);
    for (k, v) in extra {
        params.insert(k.to_string(), v.to_string());
    }
    let api = http_api::offline(&template, &params).unwrap();
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let invoker: Arc<dyn Invoker> = Arc::new(InProcess(move |_name: String, event: Value| {
        seen.lock().unwrap().push(event);
        Box::pin(async {
            Ok(json!({"statusCode": 200, "headers": {"access-control-allow-origin": "*"}, "body": "{}"}))
        }) as _
    }));
    let gw = Arc::new(Gateway::new(api, invoker, "test"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    tokio::spawn(gw.serve(listener, stopped));
    (url, calls)
}

async fn get(s: &Setup, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = s.http.get(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn issued(s: &Setup, mint: Mint) -> String {
    Mint {
        issuer: s.issuer.clone(),
        ..mint
    }
    .sign(&s.state)
    .unwrap()
}

#[tokio::test]
async fn protected_routes_refuse_every_bad_token_with_api_gateways_401() {
    let s = issuer().await;
    let (api, calls) = gateway(&s, &[]).await;
    let other_key = {
        let kid = auth::SigningKey::load_or_create(&s.state).unwrap().kid;
        let claims = Mint {
            issuer: s.issuer.clone(),
            ..Mint::user("alice")
        }
        .claims(time::OffsetDateTime::now_utc().unix_timestamp());
        auth::SigningKey::generate().unwrap().sign(&claims, &kid)
    };
    let unknown_kid = {
        let claims = Mint {
            issuer: s.issuer.clone(),
            ..Mint::user("alice")
        }
        .claims(time::OffsetDateTime::now_utc().unix_timestamp());
        auth::SigningKey::generate().unwrap().sign(&claims, "no-such-kid")
    };
    let not_yet = {
        let mut claims = Mint {
            issuer: s.issuer.clone(),
            ..Mint::user("alice")
        }
        .claims(time::OffsetDateTime::now_utc().unix_timestamp());
        claims["nbf"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() + 3600);
        let key = auth::SigningKey::load_or_create(&s.state).unwrap();
        key.sign(&claims, &key.kid)
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("not.a.jwt".into())),
        ("bad signature (another key, same kid)", Some(other_key)),
        ("unknown kid", Some(unknown_kid)),
        (
            "expired",
            Some(issued(
                &s,
                Mint {
                    expires_in: -3600,
                    ..Mint::user("alice")
                },
            )),
        ),
        ("not valid yet", Some(not_yet)),
        (
            "wrong audience",
            Some(issued(
                &s,
                Mint {
                    client_id: "someone-else".into(),
                    ..Mint::user("alice")
                },
            )),
        ),
        (
            "wrong aud claim",
            Some(issued(
                &s,
                Mint {
                    audience: Some("other-api".into()),
                    ..Mint::user("alice")
                },
            )),
        ),
        (
            "wrong issuer",
            Some(auth::mint_wrong_issuer(&s.state, "alice").unwrap()),
        ),
    ];
    for (what, token) in cases {
        let resp = s
            .http
            .get(format!("{api}/jobs"))
            .header(
                "authorization",
                token.map(|t| format!("Bearer {t}")).unwrap_or_default(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        assert_eq!(resp.text().await.unwrap(), r#"{"message":"Unauthorized"}"#, "{what}");
    }
    // The library's own wrong tokens, as the e2e tests use them (issuer from ISSUER_URL there).
    for token in [
        auth::mint_wrong_key(&s.state, "alice").unwrap(),
        auth::mint_expired(&s.state, "alice").unwrap(),
        auth::mint_wrong_audience(&s.state, "alice").unwrap(),
    ] {
        assert_eq!(get(&s, &format!("{api}/stats"), Some(&token)).await.0, 401);
    }
    assert!(
        calls.lock().unwrap().is_empty(),
        "no refused request reaches the function"
    );
    // The same gateway lets a good token through: the refusals above were the tokens' fault.
    assert_eq!(
        get(&s, &format!("{api}/jobs"), Some(&issued(&s, Mint::user("alice"))))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn each_bad_token_is_refused_for_its_own_reason() {
    use auth::Denied;
    let s = issuer().await;
    let verifier = auth::Verifier::new();
    let authorizer = http_api::JwtAuthorizer {
        issuer: s.issuer.clone(),
        audience: vec![DASHBOARD_CLIENT_ID.into(), MACHINE_CLIENT_ID.into()],
        identity_header: "authorization".into(),
    };
    let check = |t: String| {
        let (v, a) = (&verifier, &authorizer);
        async move { v.verify(a, Some(&format!("Bearer {t}"))).await.map(|_| ()) }
    };
    assert_eq!(verifier.verify(&authorizer, None).await.unwrap_err(), Denied::Missing);
    assert!(matches!(check("x.y".into()).await, Err(Denied::Malformed(_))));
    assert_eq!(
        check(auth::mint_wrong_key(&s.state, "a").unwrap()).await,
        Err(Denied::BadSignature)
    );
    let expired = issued(
        &s,
        Mint {
            expires_in: -3600,
            ..Mint::user("a")
        },
    );
    assert_eq!(check(expired).await, Err(Denied::Expired));
    let within_skew = issued(
        &s,
        Mint {
            expires_in: -10,
            ..Mint::user("a")
        },
    );
    assert_eq!(check(within_skew).await, Ok(()), "a small clock skew is allowed");
    let wrong_client = issued(
        &s,
        Mint {
            client_id: "x".into(),
            ..Mint::user("a")
        },
    );
    assert_eq!(check(wrong_client).await, Err(Denied::Audience));
    let good_aud = issued(
        &s,
        Mint {
            client_id: "x".into(),
            audience: Some(DASHBOARD_CLIENT_ID.into()),
            ..Mint::user("a")
        },
    );
    assert_eq!(
        check(good_aud).await,
        Ok(()),
        "aud is checked when present, not client_id"
    );
    assert!(matches!(
        check(auth::mint_wrong_issuer(&s.state, "a").unwrap()).await,
        Err(Denied::Issuer(_))
    ));
    assert_eq!(check(issued(&s, Mint::machine())).await, Ok(()));
    let nobody = http_api::JwtAuthorizer {
        issuer: "http://127.0.0.1:9".into(),
        ..authorizer.clone()
    };
    let t = issued(&s, Mint::user("a"));
    assert!(matches!(verifier.verify(&nobody, Some(&t)).await, Err(Denied::Jwks(_))));
}

#[tokio::test]
async fn a_valid_token_reaches_the_function_with_its_claims_as_api_gateway_sends_them() {
    let s = issuer().await;
    let (api, calls) = gateway(&s, &[]).await;
    let token = issued(&s, Mint::user("admin").groups(&["admin", "dev"]));
    // Without "Bearer " too, as API Gateway accepts it.
    let resp = s
        .http
        .post(format!("{api}/jobs/abc/retry"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let event = calls.lock().unwrap()[0].clone();
    let jwt = &event["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "admin");
    assert_eq!(jwt["claims"]["username"], "admin");
    assert_eq!(jwt["claims"]["client_id"], DASHBOARD_CLIENT_ID);
    assert_eq!(jwt["claims"]["token_use"], "access");
    assert_eq!(jwt["claims"]["iss"], s.issuer.as_str());
    assert_eq!(jwt["claims"]["cognito:groups"], "[admin dev]");
    assert!(
        jwt["claims"]["exp"].as_str().unwrap().parse::<i64>().is_ok(),
        "numbers as strings"
    );
    assert_eq!(
        jwt["scopes"],
        json!(["openid", "email", "profile", "jobs/read", "jobs/write"])
    );
    // lambda_http reads it.
    let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
    let claims = parsed.request_context.authorizer.unwrap().jwt.unwrap().claims;
    assert_eq!(claims["cognito:groups"], "[admin dev]");
}

#[tokio::test]
async fn public_routes_need_no_token_and_get_no_authorizer_context() {
    let s = issuer().await;
    let (api, calls) = gateway(&s, &[]).await;
    for path in [
        "/health",
        "/",
        "/dashboard/app.js",
        "/openapi.json",
        "/auth/config",
        "/docs",
        "/docs/index.css",
    ] {
        assert_eq!(get(&s, &format!("{api}{path}"), None).await.0, 200, "{path}");
    }
    assert!(
        calls
            .lock()
            .unwrap()
            .iter()
            .all(|e| e["requestContext"].get("authorizer").is_none())
    );
    for (method, path) in [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/queues"),
        ("POST", "/api/submit/"),
    ] {
        let resp = s
            .http
            .request(method.parse().unwrap(), format!("{api}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
    }
}

#[tokio::test]
async fn auth_mode_off_lets_every_request_through() {
    let s = issuer().await;
    let (api, calls) = gateway(&s, &[("AuthMode", "off")]).await;
    assert_eq!(get(&s, &format!("{api}/jobs"), None).await.0, 200);
    let event = calls.lock().unwrap()[0].clone();
    assert!(event["requestContext"].get("authorizer").is_none());
}

#[tokio::test]
async fn preflights_are_answered_before_authorization_only_when_cors_is_configured() {
    let s = issuer().await;
    let preflight = |api: String, origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{api}/jobs"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    // Default: no CorsConfiguration (the dashboard is same-origin): a preflight is an ordinary,
    // unauthorized request, and nothing says any origin may call.
    let (api, _) = gateway(&s, &[]).await;
    let resp = preflight(api.clone(), "https://elsewhere.test").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let (api, calls) = gateway(&s, &[("CorsAllowOrigins", "https://app.test,https://admin.test")]).await;
    let resp = preflight(api.clone(), "https://app.test").await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.test");
    assert!(
        resp.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        resp.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let resp = preflight(api.clone(), "https://elsewhere.test").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(calls.lock().unwrap().is_empty(), "preflights never reach the function");

    // An actual request: the allowed origin, never the function's wildcard.
    let token = issued(&s, Mint::user("alice"));
    let resp = s
        .http
        .get(format!("{api}/jobs"))
        .header("origin", "https://admin.test")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://admin.test");
    let resp = s
        .http
        .get(format!("{api}/jobs"))
        .header("origin", "https://elsewhere.test")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn route_throttling_answers_429_beyond_the_burst() {
    let s = issuer().await;
    let (api, _) = gateway(&s, &[("ThrottlingRateLimit", "1"), ("ThrottlingBurstLimit", "3")]).await;
    let mut statuses = vec![];
    for _ in 0..5 {
        let resp = s.http.get(format!("{api}/health")).send().await.unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.text().await.unwrap(), r#"{"message":"Too Many Requests"}"#);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses[4], 429, "{statuses:?}");
    // Buckets are per route: another route still has its burst.
    assert_eq!(get(&s, &format!("{api}/openapi.json"), None).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get(&s, &format!("{api}/health"), None).await.0,
        200,
        "refilled at the rate"
    );
}

fn pkce() -> (String, String) {
    let verifier = auth::random_token(32);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs in as `user` through the page; returns the code and state from the redirect.
async fn sign_in(s: &Setup, user: &str, challenge: &str) -> (String, String) {
    let params = [
        ("client_id", DASHBOARD_CLIENT_ID),
        ("redirect_uri", DASHBOARD_URL),
        ("response_type", "code"),
        ("state", "st&1"),
        ("scope", "openid jobs/read"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let page = s
        .http
        .get(format!("{}/oauth2/authorize?{}", s.issuer, form(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for u in ["alice", "bob", "admin"] {
        assert!(html.contains(&format!("value=\"{u}\"")), "{u} offered");
    }
    let mut chosen = params.to_vec();
    chosen.push(("user", user));
    let resp = s
        .http
        .post(format!("{}/oauth2/authorize", s.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&chosen))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(DASHBOARD_URL), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    (q["code"].clone(), q["state"].clone())
}

async fn token_call(s: &Setup, body: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}/oauth2/token", s.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(body));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_local_issuer_signs_in_with_code_and_pkce_and_refuses_a_bad_verifier() {
    let s = issuer().await;
    let discovery: Value = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], s.issuer.as_str());
    assert_eq!(discovery["token_endpoint"], format!("{}/oauth2/token", s.issuer));

    // A redirect_uri the client does not have: refused on the page, no redirect.
    let (_, challenge) = pkce();
    let resp = s
        .http
        .get(format!(
            "{}/oauth2/authorize?{}",
            s.issuer,
            form(&[
                ("client_id", DASHBOARD_CLIENT_ID),
                ("redirect_uri", "https://evil.test/"),
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A wrong verifier: refused, and the code is spent.
    let (_, challenge) = pkce();
    let (code, state) = sign_in(&s, "alice", &challenge).await;
    assert_eq!(state, "st&1");
    let exchange = |code: String, verifier: String| {
        let s = &s;
        async move {
            token_call(
                s,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", DASHBOARD_CLIENT_ID),
                    ("code", &code),
                    ("redirect_uri", DASHBOARD_URL),
                    ("code_verifier", &verifier),
                ],
                None,
            )
            .await
        }
    };
    let (status, body) = exchange(code.clone(), pkce().0).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // The right verifier: an access token the gateway accepts, once.
    let (verifier, challenge) = pkce();
    let (code, _) = sign_in(&s, "admin", &challenge).await;
    let (status, body) = exchange(code.clone(), verifier.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(exchange(code, verifier).await.0, 400, "a code is used once");
    let (api, calls) = gateway(&s, &[]).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(get(&s, &format!("{api}/jobs"), Some(access)).await.0, 200);
    let claims = calls.lock().unwrap()[0]["requestContext"]["authorizer"]["jwt"]["claims"].clone();
    assert_eq!(claims["username"], "admin");
    assert_eq!(claims["cognito:groups"], "[admin]");
    assert_eq!(claims["scope"], "openid jobs/read");

    // Sign-out goes back to an allowed URL only.
    let resp = s
        .http
        .get(format!(
            "{}/logout?{}",
            s.issuer,
            form(&[("client_id", DASHBOARD_CLIENT_ID), ("logout_uri", DASHBOARD_URL)])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], DASHBOARD_URL);
    let resp = s
        .http
        .get(format!(
            "{}/logout?{}",
            s.issuer,
            form(&[("client_id", DASHBOARD_CLIENT_ID), ("logout_uri", "https://evil.test/")])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn the_machine_client_gets_a_token_with_client_credentials() {
    let s = issuer().await;
    let secret = auth::machine_client_secret(&s.state).unwrap();
    let (status, body) = token_call(
        &s,
        &[("grant_type", "client_credentials"), ("scope", "jobs/read")],
        Some((MACHINE_CLIENT_ID, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (api, calls) = gateway(&s, &[]).await;
    assert_eq!(
        get(&s, &format!("{api}/stats"), body["access_token"].as_str()).await.0,
        200
    );
    let jwt = calls.lock().unwrap()[0]["requestContext"]["authorizer"]["jwt"].clone();
    assert_eq!(jwt["claims"]["sub"], MACHINE_CLIENT_ID);
    assert_eq!(jwt["claims"]["client_id"], MACHINE_CLIENT_ID);
    assert_eq!(jwt["scopes"], json!(["jobs/read"]));

    // Secret in the form works too; a wrong secret or a scope the client lacks does not.
    let (status, _) = token_call(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", MACHINE_CLIENT_ID),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = token_call(
        &s,
        &[("grant_type", "client_credentials")],
        Some((MACHINE_CLIENT_ID, "wrong")),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client")));
    let (status, body) = token_call(
        &s,
        &[("grant_type", "client_credentials"), ("scope", "jobs/admin")],
        Some((MACHINE_CLIENT_ID, &secret)),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
}

#[test]
fn the_template_declares_the_public_routes_and_guards_the_rest() {
    let template = Template::load(&template_path()).unwrap();
    let api = http_api::offline(&template, &local_parameters("https://issuer.test")).unwrap();
    let mut public: Vec<String> = api
        .routes
        .iter()
        .filter(|r| r.authorizer.is_none())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    public.sort();
    assert_eq!(
        public,
        [
            "GET /",
            "GET /auth/config",
            "GET /dashboard/{file}",
            "GET /docs",
            "GET /docs/{proxy+}",
            "GET /health",
            "GET /openapi.json"
        ]
    );
    let proxy = api.routes.iter().find(|r| r.path == "/{proxy+}").unwrap();
    assert_eq!(proxy.authorizer.as_deref(), Some("Jwt"));
    let jwt = &api.authorizers["Jwt"];
    assert_eq!(jwt.issuer, "https://issuer.test");
    assert_eq!(jwt.audience, [DASHBOARD_CLIENT_ID, MACHINE_CLIENT_ID]);
    assert_eq!(jwt.identity_header, "authorization");
    let t = api.throttle.unwrap();
    assert_eq!((t.rate, t.burst), (200.0, 400.0));
    assert!(api.cors.is_none(), "no CORS unless CorsAllowOrigins is set");

    // Defaults (no AuthIssuer): the stack's own Cognito user pool and clients.
    let api = http_api::offline(&template, &HashMap::new()).unwrap();
    assert_eq!(api.authorizers["Jwt"].issuer, "UserPool.ProviderURL");
    assert_eq!(api.authorizers["Jwt"].audience, ["DashboardClient", "MachineClient"]);

    let mut off = local_parameters("https://issuer.test");
    off.insert("AuthMode".into(), "off".into());
    let api = http_api::offline(&template, &off).unwrap();
    assert!(api.routes.iter().all(|r| r.authorizer.is_none()));
}
