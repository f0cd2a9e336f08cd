//! Who is calling: the identity the gateway verified, as an extractor handlers take.
//!
//! On AWS the HTTP API's JWT authorizer checks the token (signature, issuer, audience, expiry)
//! before the function runs, and passes its claims in `requestContext.authorizer.jwt`; locally
//! the bridge does the same. This function trusts those claims and nothing else: a request
//! that reaches a protected route without them (a route left without authorizer) is refused.
//! With `AUTH_MODE=off` (a private deployment; `AUTH=off infra/up`) every caller is one admin.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use serde_json::json;
use shared::Error;
use shared::auth::Caller;

use crate::app::AppState;
use crate::error::ApiError;

/// The scope a machine client's token needs to change anything (the template's resource server).
pub const WRITE_SCOPE: &str = "jobs/write";
/// The scope that lets a machine client's token read.
pub const READ_SCOPE: &str = "jobs/read";

/// Whether requests must carry a verified identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Every route but the public ones needs a token (the default).
    #[default]
    Jwt,
    /// No sign-in: everyone is [`Caller::open`].
    Off,
}

/// How the dashboard signs in (`GET /auth/config`), from the environment.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The token issuer (`AUTH_ISSUER`): the Cognito user pool, or the local issuer.
    pub issuer: String,
    /// The dashboard's app client (`AUTH_CLIENT_ID`).
    pub client_id: String,
    /// Base URL of the OAuth2 endpoints `/oauth2/authorize`, `/oauth2/token`, `/logout`
    /// (`AUTH_OAUTH_URL`): the Cognito hosted UI's domain, or the local issuer.
    pub oauth_url: String,
}

impl AuthConfig {
    pub fn from_env() -> Result<AuthConfig, Error> {
        let var = |name: &str| std::env::var(name).unwrap_or_default().trim().to_string();
        let mode = match var("AUTH_MODE").as_str() {
            "" | "jwt" => AuthMode::Jwt,
            "off" => AuthMode::Off,
            other => {
                return Err(Error::Internal(format!("AUTH_MODE={other:?}: expected jwt or off")));
            }
        };
        Ok(AuthConfig {
            mode,
            issuer: var("AUTH_ISSUER"),
            client_id: var("AUTH_CLIENT_ID"),
            oauth_url: var("AUTH_OAUTH_URL").trim_end_matches('/').to_string(),
        })
    }

    /// Sign-in off, as a private deployment runs (tests of other concerns).
    pub fn off() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Off,
            ..AuthConfig::default()
        }
    }

    /// What the dashboard needs to sign in (`GET /auth/config`); public.
    pub fn public(&self) -> SignIn {
        let endpoint = |path: &str| format!("{}{path}", self.oauth_url);
        match self.mode {
            AuthMode::Off => SignIn::Off,
            AuthMode::Jwt => SignIn::Jwt {
                issuer: self.issuer.clone(),
                client_id: self.client_id.clone(),
                authorize_url: endpoint("/oauth2/authorize"),
                token_url: endpoint("/oauth2/token"),
                logout_url: endpoint("/logout"),
                scope: "openid profile".into(),
            },
        }
    }
}

/// How to sign in (`GET /auth/config`): `{"mode": "off"}`, or the issuer, the dashboard's client
/// id and the OAuth2 endpoints (authorization code with PKCE).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SignIn {
    /// No sign-in: the stack was started without auth.
    Off,
    Jwt {
        issuer: String,
        client_id: String,
        authorize_url: String,
        token_url: String,
        logout_url: String,
        scope: String,
    },
}

/// The verified caller of a request; handlers take it as an argument.
pub struct Signed(pub Caller);

impl<S> FromRequestParts<S> for Signed
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = identify(parts, &AppState::from_ref(state))?;
        if reads_only(&caller) && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(ApiError(Error::Forbidden(format!(
                "the token's scopes allow reading only; changes need {WRITE_SCOPE}"
            ))));
        }
        Ok(Signed(caller))
    }
}

/// The verified caller whatever the method: for `POST /graphql`, where a query reads and a
/// mutation writes, so the read-only check is per operation ([`reads_only`]).
pub struct Identified(pub Caller);

impl<S> FromRequestParts<S> for Identified
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        identify(parts, &AppState::from_ref(state)).map(Identified)
    }
}

/// The caller the gateway verified (everyone is [`Caller::open`] with sign-in off); a 401 without.
fn identify(parts: &Parts, app: &AppState) -> Result<Caller, ApiError> {
    if app.auth.mode == AuthMode::Off {
        return Ok(Caller::open());
    }
    let jwt = match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let Some(jwt) = jwt else {
        return Err(ApiError(Error::Unauthorized(
            "sign in first: send Authorization: Bearer <access token>".into(),
        )));
    };
    Ok(Caller::from_claims(
        &jwt.claims,
        jwt.scopes.as_deref().unwrap_or_default(),
    )?)
}

/// A machine token with `jobs/read` and without `jobs/write`: it may read, not change anything.
pub fn reads_only(caller: &Caller) -> bool {
    caller.scopes.iter().any(|s| s == READ_SCOPE) && !caller.scopes.iter().any(|s| s == WRITE_SCOPE)
}

/// The request context a JWT authorizer passes on, for tests that call the router in-process:
/// `sub` = `owner`, in the `admin` group when `admin`.
pub fn authorizer_context(owner: &str, admin: bool) -> RequestContext {
    let groups = if admin { "[admin]" } else { "[]" };
    serde_json::from_value(json!({
        "accountId": "000000000000",
        "apiId": "local",
        "stage": "$default",
        "requestId": "test",
        "authorizer": {"jwt": {"claims": {"sub": owner, "username": owner, "cognito:groups": groups}, "scopes": null}},
        "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "time": "30/Nov/2026:00:00:00 +0000",
        "timeEpoch": 0
    }))
    .expect("an HTTP API request context")
}
