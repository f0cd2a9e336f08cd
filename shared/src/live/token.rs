//! `$connect`'s sign-in. API Gateway's WebSocket APIs have no JWT authorizer, and browsers cannot
//! set headers on a WebSocket, so the client passes its access token as `?token=` and the
//! function checks it as the HTTP API's JWT authorizer does: RS256 against the issuer's JWKS
//! (OIDC discovery), `exp`/`nbf`, `iss`, and `aud` (or `client_id` without one) in the audience.
//! Its claims then become a [`Caller`] exactly as the api's do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::error::{Error, Result};

const CLOCK_SKEW_SECS: u64 = 60;
/// A key set is fetched again after this long, or when a token names an unknown `kid`.
const JWKS_TTL: Duration = Duration::from_secs(3600);
const REFETCH_MIN: Duration = Duration::from_secs(5);

/// Whether and how `$connect` checks tokens (`AUTH_MODE`, `AUTH_ISSUER`, `AUTH_AUDIENCE`).
pub enum SignIn {
    /// `AUTH_MODE=off`: everyone is [`Caller::open`], as on the HTTP API.
    Off,
    Jwt(TokenVerifier),
}

impl SignIn {
    pub fn from_env() -> Result<SignIn> {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        if var("AUTH_MODE") == "off" {
            return Ok(SignIn::Off);
        }
        let issuer = var("AUTH_ISSUER");
        if issuer.is_empty() {
            return Err(Error::Internal("AUTH_ISSUER is not set (AUTH_MODE=jwt)".into()));
        }
        let audience: Vec<String> = var("AUTH_AUDIENCE")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if audience.is_empty() {
            return Err(Error::Internal("AUTH_AUDIENCE is not set (AUTH_MODE=jwt)".into()));
        }
        Ok(SignIn::Jwt(TokenVerifier::new(&issuer, audience)))
    }

    /// The caller a token names; `Unauthorized` for a missing or bad token.
    pub async fn caller(&self, token: Option<&str>) -> Result<Caller> {
        match self {
            SignIn::Off => Ok(Caller::open()),
            SignIn::Jwt(v) => v.verify(token).await,
        }
    }
}

/// Checks tokens of one issuer, its JWKS cached.
pub struct TokenVerifier {
    issuer: String,
    audience: Vec<String>,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<(HashMap<String, DecodingKey>, Instant)>>,
}

fn denied(why: impl std::fmt::Display) -> Error {
    Error::Unauthorized(format!("token: {why}"))
}

impl TokenVerifier {
    pub fn new(issuer: &str, audience: Vec<String>) -> Self {
        TokenVerifier {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("HTTP client"),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn verify(&self, token: Option<&str>) -> Result<Caller> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| denied("missing (pass the access token as ?token=)"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| denied(format!("not a JWT ({e})")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
            return Err(denied(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.clone().ok_or_else(|| denied("no kid"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // aud, or client_id without aud: below
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => denied("bad signature"),
                ErrorKind::ExpiredSignature => denied("expired"),
                ErrorKind::ImmatureSignature => denied("not valid yet"),
                other => denied(format!("{other:?}")),
            })?;
        let claims = data.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(denied("another issuer"));
        }
        let accepted = |v: &str| self.audience.iter().any(|a| a == v);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(accepted),
            _ => claims.get("client_id").and_then(Value::as_str).is_some_and(accepted),
        };
        if !ok {
            return Err(denied("neither aud nor client_id is in the audience"));
        }
        Caller::from_claims(&rendered(&claims), &[])
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cache = self.cache.lock().await;
        let stale = cache.as_ref().is_none_or(|(keys, at)| {
            at.elapsed() > JWKS_TTL || (!keys.contains_key(kid) && at.elapsed() > REFETCH_MIN)
        });
        if stale {
            match self.fetch().await {
                Ok(keys) => *cache = Some((keys, Instant::now())),
                Err(e) if cache.is_none() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "JWKS fetch failed: using the keys fetched before"),
            }
        }
        cache
            .as_ref()
            .and_then(|(keys, _)| keys.get(kid).cloned())
            .ok_or_else(|| denied(format!("no key {kid:?} in the issuer's JWKS")))
    }

    /// OIDC discovery, then the JWKS.
    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>> {
        let get = |url: String| async move {
            self.http
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| Error::Internal(format!("{url}: {e}")))?
                .json::<Value>()
                .await
                .map_err(|e| Error::Internal(format!("{url}: {e}")))
        };
        let config = get(format!("{}/.well-known/openid-configuration", self.issuer)).await?;
        let jwks_uri = config
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Internal("the issuer's discovery document has no jwks_uri".into()))?;
        let jwks = get(jwks_uri.to_string()).await?;
        let mut keys = HashMap::new();
        for k in jwks.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let field = |f: &str| k.get(f).and_then(Value::as_str);
            if let (Some("RSA"), Some(kid), Some(n), Some(e)) = (field("kty"), field("kid"), field("n"), field("e"))
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(kid.to_string(), key);
            }
        }
        Ok(keys)
    }
}

/// Claims as the HTTP API's authorizer hands them on (every value a string, lists as `[a b]`),
/// which is what [`Caller::from_claims`] reads.
fn rendered(claims: &Map<String, Value>) -> HashMap<String, String> {
    fn render(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(" ")),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    claims.iter().map(|(k, v)| (k.clone(), render(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_become_admin_as_on_the_http_api() {
        let claims = serde_json::json!({"sub": "root", "cognito:groups": ["admin", "dev"], "username": "root"});
        let c = Caller::from_claims(&rendered(claims.as_object().unwrap()), &[]).unwrap();
        assert!(c.admin);
        assert_eq!(c.owner.as_str(), "root");
    }

    #[tokio::test]
    async fn a_missing_or_garbage_token_is_unauthorized_without_any_fetch() {
        // The issuer is a closed port: these must fail before any network use.
        let v = TokenVerifier::new("http://127.0.0.1:9", vec!["c".into()]);
        assert!(matches!(v.verify(None).await, Err(Error::Unauthorized(_))));
        assert!(matches!(v.verify(Some("x.y.z")).await, Err(Error::Unauthorized(_))));
    }
}
