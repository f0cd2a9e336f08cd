//! Sign-in for the local stack: what Cognito and API Gateway's JWT authorizer do on AWS.
//!
//! - [`SigningKey`]: the local issuer's RSA key, `$JOBS_STATE_DIR/auth/signing-key.pk8`
//!   (PKCS#8 DER), created when missing and kept across restarts.
//! - [`Mint`] / [`mint`]: access tokens shaped like Cognito's (RS256, `kid`, `iss`, `sub`,
//!   `username`, `client_id`, `token_use: access`, `scope`, `cognito:groups`, `iat`, `exp`, `jti`),
//!   and the wrong ones tests need ([`mint_expired`], [`mint_wrong_audience`], [`mint_wrong_key`],
//!   [`mint_wrong_issuer`]).
//! - [`Verifier`]: the JWT authorizer: JWKS found through OIDC discovery, cached; signature, `kid`,
//!   `exp`/`nbf`, `iss`, and `aud` (or `client_id` when there is no `aud`) against the audience.
//! - [`event_claims`]: claims as API Gateway puts them into `requestContext.authorizer.jwt`.
//!
//! The issuer's HTTP side (discovery, JWKS, `/oauth2/authorize`, `/oauth2/token`, `/logout`) is
//! [`crate::issuer`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value, json};

use crate::http_api::JwtAuthorizer;

/// The local dashboard's app client (public: authorization code + PKCE, no secret).
pub const DASHBOARD_CLIENT_ID: &str = "local-dashboard";
/// The local machine client (client credentials; its secret is in `auth/machine-client-secret`).
pub const MACHINE_CLIENT_ID: &str = "local-machine";
/// The resource server's scopes, as the template's `UserPoolResourceServer` declares them.
pub const API_SCOPES: &[&str] = &["jobs/read", "jobs/write"];
/// What a dashboard sign-in gets when it asks for no particular scope.
pub const DEFAULT_USER_SCOPE: &str = "openid email profile jobs/read jobs/write";
/// The dev users of the local sign-in page, with their groups.
pub const DEV_USERS: &[(&str, &[&str])] = &[("alice", &[]), ("bob", &[]), ("admin", &["admin"])];
/// Default `ISSUER_URL` (`infra/env.sh`: `ISSUER_PORT`, 3001).
pub const DEFAULT_ISSUER_URL: &str = "http://127.0.0.1:3001";
/// Access token lifetime (Cognito's default: 1 h).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// Clock skew allowed on `exp` and `nbf`.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// `$state_dir/auth`.
pub fn auth_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("auth")
}

/// The issuer URL tokens carry: `ISSUER_URL` (set by `infra/env.sh`), else the default.
pub fn issuer_url_from_env() -> String {
    std::env::var("ISSUER_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ISSUER_URL.to_string())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Random bytes as base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("system random");
    B64URL.encode(buf)
}

/// Writes `bytes` to `path` unless it exists (then its content wins: two processes starting at
/// once agree on one file). Owner-only permissions.
fn write_once(path: &Path, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(bytes.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_or_create(path: &Path, make: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_once(path, &make()?),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The local machine client's secret, `$state_dir/auth/machine-client-secret`, made when missing.
pub fn machine_client_secret(state_dir: &Path) -> anyhow::Result<String> {
    let path = auth_dir(state_dir).join("machine-client-secret");
    let bytes = read_or_create(&path, || Ok(random_token(32).into_bytes()))?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// An RSA signing key with its JWK `kid`.
pub struct SigningKey {
    pair: RsaKeyPair,
    pub kid: String,
}

impl SigningKey {
    /// A new 2048-bit key.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
        Ok(SigningKey::new(pair))
    }

    fn new(pair: RsaKeyPair) -> SigningKey {
        let public = pair.public_key();
        let mut material = public.modulus().big_endian_without_leading_zero().to_vec();
        material.extend_from_slice(public.exponent().big_endian_without_leading_zero());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
        SigningKey {
            pair,
            kid: B64URL.encode(&digest.as_ref()[..12]),
        }
    }

    /// The key in `$state_dir/auth/signing-key.pk8`, made when missing.
    pub fn load_or_create(state_dir: &Path) -> anyhow::Result<SigningKey> {
        let path = auth_dir(state_dir).join("signing-key.pk8");
        let der = read_or_create(&path, || {
            let key = SigningKey::generate()?;
            let der = key.pair.as_der().map_err(|_| anyhow!("encoding the key"))?;
            Ok(der.as_ref().to_vec())
        })?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(SigningKey::new(pair))
    }

    /// The public key as a JWK (what `/.well-known/jwks.json` lists).
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": B64URL.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64URL.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact RS256 JWS of `claims`, with `kid` in its header.
    pub fn sign(&self, claims: &Value, kid: &str) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing");
        format!("{signing_input}.{}", B64URL.encode(sig))
    }
}

/// An access token to make, like the ones Cognito issues.
#[derive(Debug, Clone)]
pub struct Mint {
    /// `sub` and `username`; `None` for a machine (client credentials) token, whose `sub` is the client id.
    pub username: Option<String>,
    /// `cognito:groups` (left out when empty, as Cognito does).
    pub groups: Vec<String>,
    /// `scope`, space-separated.
    pub scope: String,
    pub client_id: String,
    pub issuer: String,
    /// Seconds from now to `exp` (negative: already expired).
    pub expires_in: i64,
    /// An `aud` claim (Cognito access tokens have none; API Gateway then checks `client_id`).
    pub audience: Option<String>,
}

impl Mint {
    /// A dev user's token from the local dashboard client, issuer from `ISSUER_URL`.
    pub fn user(username: &str) -> Mint {
        Mint {
            username: Some(username.to_string()),
            groups: vec![],
            scope: DEFAULT_USER_SCOPE.to_string(),
            client_id: DASHBOARD_CLIENT_ID.to_string(),
            issuer: issuer_url_from_env(),
            expires_in: TOKEN_LIFETIME_SECS,
            audience: None,
        }
    }

    /// A client-credentials token of the local machine client, with the API's scopes.
    pub fn machine() -> Mint {
        Mint {
            username: None,
            groups: vec![],
            scope: API_SCOPES.join(" "),
            client_id: MACHINE_CLIENT_ID.to_string(),
            ..Mint::user("")
        }
    }

    pub fn groups<S: AsRef<str>>(mut self, groups: &[S]) -> Mint {
        self.groups = groups.iter().map(|g| g.as_ref().to_string()).collect();
        self
    }

    /// The claims, as of `now` (Unix seconds).
    pub fn claims(&self, now: i64) -> Value {
        let jti = uuid::Uuid::new_v4().to_string();
        let mut c = json!({
            "sub": self.username.clone().unwrap_or_else(|| self.client_id.clone()),
            "iss": self.issuer,
            "version": 2,
            "client_id": self.client_id,
            "origin_jti": uuid::Uuid::new_v4().to_string(),
            "token_use": "access",
            "scope": self.scope,
            "auth_time": now,
            "iat": now,
            "exp": now + self.expires_in,
            "jti": jti,
        });
        let m = c.as_object_mut().expect("object");
        if let Some(u) = &self.username {
            m.insert("username".into(), json!(u));
        }
        if !self.groups.is_empty() {
            m.insert("cognito:groups".into(), json!(self.groups));
        }
        if let Some(aud) = &self.audience {
            m.insert("aud".into(), json!(aud));
        }
        c
    }

    /// Signed with `key`.
    pub fn sign_with(&self, key: &SigningKey) -> String {
        key.sign(&self.claims(now()), &key.kid)
    }

    /// Signed with the local issuer's key in `state_dir` (`$JOBS_STATE_DIR`).
    pub fn sign(&self, state_dir: &Path) -> anyhow::Result<String> {
        Ok(self.sign_with(&SigningKey::load_or_create(state_dir)?))
    }
}

/// A valid access token for a dev user (any name) in `groups`, from the local dashboard client.
pub fn mint<S: AsRef<str>>(state_dir: &Path, user: &str, groups: &[S]) -> anyhow::Result<String> {
    Mint::user(user).groups(groups).sign(state_dir)
}

/// Expired an hour ago (outside any clock skew).
pub fn mint_expired(state_dir: &Path, user: &str) -> anyhow::Result<String> {
    Mint {
        expires_in: -3600,
        ..Mint::user(user)
    }
    .sign(state_dir)
}

/// From a client the API does not accept (`client_id` outside the audience).
pub fn mint_wrong_audience(state_dir: &Path, user: &str) -> anyhow::Result<String> {
    Mint {
        client_id: "someone-elses-client".into(),
        ..Mint::user(user)
    }
    .sign(state_dir)
}

/// From another issuer (same key, other `iss`).
pub fn mint_wrong_issuer(state_dir: &Path, user: &str) -> anyhow::Result<String> {
    Mint {
        issuer: "https://issuer.invalid".into(),
        ..Mint::user(user)
    }
    .sign(state_dir)
}

/// Signed by a key that is not the issuer's, under the issuer's `kid`: only the signature is wrong.
pub fn mint_wrong_key(state_dir: &Path, user: &str) -> anyhow::Result<String> {
    let kid = SigningKey::load_or_create(state_dir)?.kid;
    let other = SigningKey::generate()?;
    Ok(other.sign(&Mint::user(user).claims(now()), &kid))
}

/// Why a request was refused (each is a 401 `{"message":"Unauthorized"}` to the client).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("no token in the identity source")]
    Missing,
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("no key {0:?} in the issuer's JWKS")]
    UnknownKey(String),
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("issuer {0:?} is not the authorizer's")]
    Issuer(String),
    #[error("neither aud nor client_id is in the audience")]
    Audience,
    #[error("the issuer's keys could not be fetched: {0}")]
    Jwks(String),
}

/// What a verified token gives the function.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Map<String, Value>,
}

impl Verified {
    /// `requestContext.authorizer` as API Gateway sends it with payload format 2.0.
    pub fn authorizer_context(&self) -> Value {
        let scopes: Option<Vec<String>> = self
            .claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect());
        json!({"jwt": {"claims": event_claims(&self.claims), "scopes": scopes}})
    }
}

/// Claims as API Gateway renders them for the function: every value a string; numbers and
/// booleans as text; a list as `[a b]` (how `cognito:groups` arrives).
pub fn event_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    fn render(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(" ")),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(render(v))))
        .collect()
}

struct Jwks {
    keys: HashMap<String, DecodingKey>,
    fetched: Instant,
}

/// The JWT authorizer's checks, with each issuer's JWKS cached.
pub struct Verifier {
    http: reqwest::Client,
    cache: tokio::sync::Mutex<HashMap<String, Jwks>>,
    /// A key set is fetched again after this long, or when a token names an unknown `kid` (at most
    /// every [`Verifier::REFETCH_MIN`]).
    pub ttl: Duration,
    last_error: Mutex<Option<String>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    const REFETCH_MIN: Duration = Duration::from_secs(5);

    pub fn new() -> Verifier {
        Verifier {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("HTTP client"),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(3600),
            last_error: Mutex::new(None),
        }
    }

    /// Checks `identity` (the Authorization header's value; `Bearer ` is optional, as on AWS).
    pub async fn verify(&self, authorizer: &JwtAuthorizer, identity: Option<&str>) -> Result<Verified, Denied> {
        let token = identity
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|e| Denied::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
            return Err(Denied::Malformed(format!("algorithm {:?}", header.alg)));
        }
        let kid = header.kid.clone().ok_or_else(|| Denied::UnknownKey(String::new()))?;
        let key = self.key(&authorizer.issuer, &kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // aud, or client_id without aud: below
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Denied::BadSignature,
                ErrorKind::ExpiredSignature => Denied::Expired,
                ErrorKind::ImmatureSignature => Denied::NotYetValid,
                other => Denied::Malformed(format!("{other:?}")),
            })?;
        let claims = data.claims;
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        if iss != authorizer.issuer {
            return Err(Denied::Issuer(iss.to_string()));
        }
        let accepted = |v: &str| authorizer.audience.iter().any(|a| a == v);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(accepted),
            _ => claims.get("client_id").and_then(Value::as_str).is_some_and(accepted),
        };
        if !ok {
            return Err(Denied::Audience);
        }
        Ok(Verified { claims })
    }

    async fn key(&self, issuer: &str, kid: &str) -> Result<DecodingKey, Denied> {
        let mut cache = self.cache.lock().await;
        let stale = cache.get(issuer).is_none_or(|j| {
            j.fetched.elapsed() > self.ttl || (!j.keys.contains_key(kid) && j.fetched.elapsed() > Self::REFETCH_MIN)
        });
        if stale {
            match self.fetch(issuer).await {
                Ok(keys) => {
                    cache.insert(
                        issuer.to_string(),
                        Jwks {
                            keys,
                            fetched: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    let mut last = self.last_error.lock().expect("lock");
                    if last.as_deref() != Some(&msg) {
                        tracing::warn!(issuer, error = %msg, "JWKS fetch failed: protected routes answer 401");
                        *last = Some(msg.clone());
                    }
                    if !cache.contains_key(issuer) {
                        return Err(Denied::Jwks(msg));
                    }
                }
            }
        }
        cache
            .get(issuer)
            .and_then(|j| j.keys.get(kid))
            .cloned()
            .ok_or_else(|| Denied::UnknownKey(kid.to_string()))
    }

    /// OIDC discovery, then the JWKS, as API Gateway does it.
    async fn fetch(&self, issuer: &str) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let config: Value = self
            .http
            .get(&discovery)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| discovery.clone())?
            .json()
            .await
            .with_context(|| discovery.clone())?;
        let jwks_uri = config
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{discovery}: no jwks_uri"))?;
        let jwks: Value = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| jwks_uri.to_string())?
            .json()
            .await
            .with_context(|| jwks_uri.to_string())?;
        let mut keys = HashMap::new();
        for k in jwks.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let field = |f: &str| k.get(f).and_then(Value::as_str);
            if let (Some("RSA"), Some(kid), Some(n), Some(e)) = (field("kty"), field("kid"), field("n"), field("e"))
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(kid.to_string(), key);
            }
        }
        tracing::info!(issuer, keys = keys.len(), "JWKS fetched");
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_reach_the_function_as_api_gateway_renders_them() {
        let claims = json!({
            "sub": "admin", "cognito:groups": ["admin", "dev"], "exp": 1700000000, "scope": "jobs/read jobs/write",
            "flag": true,
        });
        let v = Verified {
            claims: claims.as_object().unwrap().clone(),
        };
        let ctx = v.authorizer_context();
        assert_eq!(ctx["jwt"]["claims"]["cognito:groups"], "[admin dev]");
        assert_eq!(ctx["jwt"]["claims"]["exp"], "1700000000");
        assert_eq!(ctx["jwt"]["claims"]["flag"], "true");
        assert_eq!(ctx["jwt"]["scopes"], json!(["jobs/read", "jobs/write"]));
        // What lambda_http deserializes.
        let parsed: aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription =
            serde_json::from_value(ctx["jwt"].clone()).unwrap();
        assert_eq!(parsed.claims["sub"], "admin");
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("auth-test-{}", uuid::Uuid::new_v4().simple()));
        let a = SigningKey::load_or_create(&dir).unwrap();
        let b = SigningKey::load_or_create(&dir).unwrap();
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.jwk(), b.jwk());
        let s1 = machine_client_secret(&dir).unwrap();
        assert_eq!(s1, machine_client_secret(&dir).unwrap());
        assert!(s1.len() >= 40);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(auth_dir(&dir).join("signing-key.pk8"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_look_like_cognito_access_tokens() {
        let c = Mint::user("admin").groups(&["admin"]).claims(1000);
        assert_eq!(c["sub"], "admin");
        assert_eq!(c["username"], "admin");
        assert_eq!(c["token_use"], "access");
        assert_eq!(c["client_id"], DASHBOARD_CLIENT_ID);
        assert_eq!(c["cognito:groups"], json!(["admin"]));
        assert_eq!(c["exp"], 4600);
        assert!(c.get("aud").is_none());
        let m = Mint::machine().claims(1000);
        assert_eq!(m["sub"], MACHINE_CLIENT_ID);
        assert!(m.get("username").is_none() && m.get("cognito:groups").is_none());
        assert_eq!(m["scope"], "jobs/read jobs/write");
    }
}
