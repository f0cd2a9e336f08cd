//! The local issuer: stands in for the Cognito user pool and its hosted UI.
//!
//! - `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`: OIDC discovery and keys.
//! - `GET /oauth2/authorize` (authorization code + PKCE `S256`, the local dashboard client only,
//!   `redirect_uri` one of its allowed URLs): a page to choose a dev user ([`DEV_USERS`]);
//!   choosing one redirects to `redirect_uri?code=..&state=..`.
//! - `POST /oauth2/token`: `authorization_code` (the `code_verifier` must match the challenge;
//!   a code is used once, within 5 minutes) and `client_credentials` (the local machine client,
//!   its secret by HTTP Basic or in the form).
//! - `GET /logout?client_id=..&logout_uri=..`: redirects back to an allowed URL.
//!
//! Answers carry CORS headers for any origin: the dashboard calls the token endpoint from its
//! own origin, as it calls Cognito's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::auth::{
    API_SCOPES, DASHBOARD_CLIENT_ID, DEFAULT_USER_SCOPE, DEV_USERS, MACHINE_CLIENT_ID, Mint, SigningKey,
    TOKEN_LIFETIME_SECS, machine_client_secret,
};
use crate::gateway::url_pairs;

/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(300);

struct Code {
    redirect_uri: String,
    challenge: String,
    scope: String,
    user: String,
    made: Instant,
}

/// The issuer's settings and state.
pub struct Issuer {
    pub issuer: String,
    key: SigningKey,
    machine_secret: String,
    /// Where the dashboard client may be sent back (its callback and sign-out URLs).
    pub redirect_uris: Vec<String>,
    codes: Mutex<HashMap<String, Code>>,
}

type Resp = Response<Full<Bytes>>;

impl Issuer {
    /// An issuer at `issuer` (its public URL) with the key and machine secret of `state_dir`.
    pub fn new(state_dir: &Path, issuer: &str, redirect_uris: Vec<String>) -> anyhow::Result<Issuer> {
        Ok(Issuer {
            issuer: issuer.trim_end_matches('/').to_string(),
            key: SigningKey::load_or_create(state_dir)?,
            machine_secret: machine_client_secret(state_dir)?,
            redirect_uris,
            codes: Mutex::new(HashMap::new()),
        })
    }

    /// Serves until `shutdown` flips.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: tokio::sync::watch::Receiver<bool>) {
        crate::gateway::serve_http("issuer", listener, shutdown, move |req, _peer| {
            let me = self.clone();
            async move { me.handle(req).await }
        })
        .await
    }

    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let origin = parts.headers.get("origin").cloned();
        let body = match tokio::time::timeout(Duration::from_secs(10), Limited::new(body, 64 * 1024).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "body too large or too slow"),
        };
        let query: HashMap<String, String> = url_pairs(parts.uri.query().unwrap_or_default()).into_iter().collect();
        let form: HashMap<String, String> = url_pairs(&String::from_utf8_lossy(&body)).into_iter().collect();
        let mut resp = match (&parts.method, parts.uri.path()) {
            (&Method::OPTIONS, _) => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                let h = r.headers_mut();
                h.insert(
                    "access-control-allow-methods",
                    HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                h.insert(
                    "access-control-allow-headers",
                    HeaderValue::from_static("authorization, content-type"),
                );
                h.insert("access-control-max-age", HeaderValue::from_static("600"));
                r
            }
            (&Method::GET, "/.well-known/openid-configuration") => json_response(StatusCode::OK, &self.discovery()),
            (&Method::GET, "/.well-known/jwks.json") => {
                json_response(StatusCode::OK, &json!({"keys": [self.key.jwk()]}))
            }
            (&Method::GET, "/oauth2/authorize") => self.authorize_page(&query),
            (&Method::POST, "/oauth2/authorize") => self.authorize_choice(&form),
            (&Method::POST, "/oauth2/token") => {
                let basic = parts
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(basic_credentials);
                self.token(&form, basic)
            }
            (&Method::GET, "/logout") => self.logout(&query),
            _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
        };
        if let Some(o) = origin {
            resp.headers_mut().insert("access-control-allow-origin", o);
        }
        resp
    }

    fn discovery(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/oauth2/authorize"),
            "token_endpoint": format!("{i}/oauth2/token"),
            "jwks_uri": format!("{i}/.well-known/jwks.json"),
            "end_session_endpoint": format!("{i}/logout"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile", "jobs/read", "jobs/write"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        })
    }

    /// What is wrong with an authorization request, if anything (never redirects to an unknown URL).
    fn check_authorize(&self, p: &HashMap<String, String>) -> Result<(), String> {
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
        if get("client_id") != DASHBOARD_CLIENT_ID {
            return Err(format!("unknown client_id {:?}", get("client_id")));
        }
        if !self.redirect_uris.iter().any(|u| u == get("redirect_uri")) {
            return Err(format!(
                "redirect_uri {:?} is not one of the client's URLs {:?}",
                get("redirect_uri"),
                self.redirect_uris
            ));
        }
        if get("response_type") != "code" {
            return Err("response_type must be code".into());
        }
        if get("code_challenge").len() < 43 || get("code_challenge_method") != "S256" {
            return Err("PKCE is required: code_challenge with code_challenge_method=S256".into());
        }
        Ok(())
    }

    fn authorize_page(&self, q: &HashMap<String, String>) -> Resp {
        if let Err(e) = self.check_authorize(q) {
            return html(
                StatusCode::BAD_REQUEST,
                &format!("<h1>Sign-in refused</h1><p>{}</p>", escape(&e)),
            );
        }
        let hidden: String = [
            "client_id",
            "redirect_uri",
            "response_type",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
        ]
        .iter()
        .filter_map(|k| q.get(*k).map(|v| (k, v)))
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
        .collect();
        let buttons: String = DEV_USERS
            .iter()
            .map(|(user, groups)| {
                let groups = if groups.is_empty() {
                    String::new()
                } else {
                    format!(" <small>({})</small>", groups.join(", "))
                };
                format!(r#"<button type="submit" name="user" value="{user}">{user}{groups}</button>"#)
            })
            .collect();
        html(
            StatusCode::OK,
            &format!(
                "<h1>Local sign-in</h1><p>Choose a dev user (the local stand-in for Cognito's hosted UI).</p>\
                 <form method=\"post\" action=\"/oauth2/authorize\">{hidden}{buttons}</form>"
            ),
        )
    }

    fn authorize_choice(&self, f: &HashMap<String, String>) -> Resp {
        if let Err(e) = self.check_authorize(f) {
            return html(
                StatusCode::BAD_REQUEST,
                &format!("<h1>Sign-in refused</h1><p>{}</p>", escape(&e)),
            );
        }
        let user = f.get("user").map(String::as_str).unwrap_or_default();
        if !DEV_USERS.iter().any(|(u, _)| *u == user) {
            return html(StatusCode::BAD_REQUEST, "<h1>Unknown user</h1>");
        }
        let code = crate::auth::random_token(24);
        let redirect_uri = f["redirect_uri"].clone();
        let mut codes = self.codes.lock().expect("lock");
        codes.retain(|_, c| c.made.elapsed() < CODE_LIFETIME);
        codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.clone(),
                challenge: f["code_challenge"].clone(),
                scope: f.get("scope").cloned().unwrap_or_default(),
                user: user.to_string(),
                made: Instant::now(),
            },
        );
        let mut location = format!(
            "{redirect_uri}{}code={code}",
            if redirect_uri.contains('?') { '&' } else { '?' }
        );
        if let Some(state) = f.get("state") {
            location.push_str("&state=");
            location.push_str(
                &percent_encoding::utf8_percent_encode(state, percent_encoding::NON_ALPHANUMERIC).to_string(),
            );
        }
        redirect(&location)
    }

    fn token(&self, f: &HashMap<String, String>, basic: Option<(String, String)>) -> Resp {
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let (client_id, secret) = match basic {
            Some((id, secret)) => (id, Some(secret)),
            None => (get("client_id").to_string(), f.get("client_secret").cloned()),
        };
        match get("grant_type") {
            "authorization_code" => {
                if client_id != DASHBOARD_CLIENT_ID {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client");
                }
                let Some(code) = self.codes.lock().expect("lock").remove(get("code")) else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
                };
                if code.made.elapsed() > CODE_LIFETIME || code.redirect_uri != get("redirect_uri") {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "expired code or other redirect_uri",
                    );
                }
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, get("code_verifier").as_bytes());
                if B64URL.encode(digest.as_ref()) != code.challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier does not match");
                }
                let groups = DEV_USERS
                    .iter()
                    .find(|(u, _)| *u == code.user)
                    .map(|(_, g)| g.to_vec())
                    .unwrap_or_default();
                let allowed: Vec<&str> = DEFAULT_USER_SCOPE.split(' ').collect();
                let scope = granted(&code.scope, &allowed).unwrap_or_else(|| DEFAULT_USER_SCOPE.to_string());
                let access = Mint {
                    scope,
                    issuer: self.issuer.clone(),
                    ..Mint::user(&code.user)
                }
                .groups(&groups)
                .sign_with(&self.key);
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let id = self.key.sign(
                    &json!({
                        "sub": code.user, "aud": DASHBOARD_CLIENT_ID, "iss": self.issuer, "token_use": "id",
                        "cognito:username": code.user, "cognito:groups": groups,
                        "email": format!("{}@example.test", code.user),
                        "iat": now, "exp": now + TOKEN_LIFETIME_SECS, "auth_time": now,
                    }),
                    &self.key.kid,
                );
                json_response(
                    StatusCode::OK,
                    &json!({"access_token": access, "id_token": id, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS}),
                )
            }
            "client_credentials" => {
                if client_id != MACHINE_CLIENT_ID || secret.as_deref() != Some(self.machine_secret.as_str()) {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        "unknown client or wrong secret",
                    );
                }
                let scope = match get("scope") {
                    "" => API_SCOPES.join(" "),
                    asked => match granted(asked, API_SCOPES) {
                        Some(s) => s,
                        None => {
                            return oauth_error(
                                StatusCode::BAD_REQUEST,
                                "invalid_scope",
                                "scope not allowed for the client",
                            );
                        }
                    },
                };
                let access = Mint {
                    scope,
                    issuer: self.issuer.clone(),
                    ..Mint::machine()
                }
                .sign_with(&self.key);
                json_response(
                    StatusCode::OK,
                    &json!({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS}),
                )
            }
            other => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?}"),
            ),
        }
    }

    fn logout(&self, q: &HashMap<String, String>) -> Resp {
        let target = q.get("logout_uri").or_else(|| q.get("redirect_uri"));
        match target {
            Some(t)
                if q.get("client_id").map(String::as_str) == Some(DASHBOARD_CLIENT_ID)
                    && self.redirect_uris.iter().any(|u| u == t) =>
            {
                redirect(t)
            }
            _ => html(
                StatusCode::BAD_REQUEST,
                "<h1>Sign-out refused</h1><p>client_id and an allowed logout_uri are needed.</p>",
            ),
        }
    }
}

/// `requested` if every scope in it is in `allowed`; `None` if it is empty or asks for more.
fn granted(requested: &str, allowed: &[&str]) -> Option<String> {
    let asked: Vec<&str> = requested.split_whitespace().collect();
    (!asked.is_empty() && asked.iter().all(|s| allowed.contains(s))).then(|| asked.join(" "))
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(status: StatusCode, body: &str) -> Resp {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Local sign-in</title>\
         <style>body{{font-family:sans-serif;max-width:30em;margin:3em auto}}button{{display:block;margin:.5em 0;padding:.6em 1.2em;font-size:1em}}</style>\
         </head><body>{body}</body></html>"
    );
    let mut r = Response::new(Full::new(Bytes::from(page)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn redirect(location: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert("location", v);
    }
    r
}

fn json_response(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json_response(status, &json!({"error": error, "error_description": description}))
}
