//! Who is asking, and what they may see and do.
//!
//! The gateway verifies the token (a JWT authorizer on AWS, the local bridge locally) and hands
//! the function its claims; this module turns those claims into a [`Caller`]. Every job, upload
//! and log entry belongs to an [`Owner`] (the token's `sub`); a caller sees only its own, unless
//! it is in the `admin` group. Another owner's job is answered as if it did not exist.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::Job;

/// Members of this group (Cognito's `cognito:groups` claim) see and act on every job.
pub const ADMIN_GROUP: &str = "admin";
/// The longest owner id: it becomes an S3 key segment and part of index keys.
pub const OWNER_MAX: usize = 128;

/// The identity a job belongs to: a token's `sub` (a Cognito user's UUID, or a machine
/// client's id). Safe as an S3 key segment: `[A-Za-z0-9._@+=-]`, 1-128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Owner(String);

impl Owner {
    pub fn parse(raw: &str) -> Result<Owner> {
        let ok = !raw.is_empty()
            && raw.len() <= OWNER_MAX
            && raw != "."
            && raw != ".."
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@+=-".contains(&b));
        if ok {
            Ok(Owner(raw.to_string()))
        } else {
            Err(Error::Unauthorized(format!(
                "the token's subject is not a usable owner id ({}): 1-{OWNER_MAX} of A-Z a-z 0-9 . _ @ + = -",
                crate::limits::quote(raw)
            )))
        }
    }

    /// Everyone, when the stack runs without sign-in (`AUTH_MODE=off`).
    pub fn anonymous() -> Owner {
        Owner("anonymous".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The S3 prefix this owner's files live under: `uploads/<owner>/`.
    pub fn upload_prefix(&self) -> String {
        format!("uploads/{}/", self.0)
    }

    /// The owner of an object key under `uploads/<owner>/...`, if the key has one.
    pub fn of_upload_key(key: &str) -> Option<Owner> {
        let rest = key.strip_prefix("uploads/")?;
        let (owner, file) = rest.split_once('/')?;
        (!file.is_empty()).then_some(())?;
        Owner::parse(owner).ok()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whose jobs a listing, a count or a bulk action covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every job (admins).
    #[default]
    All,
    /// One owner's jobs.
    Owner(Owner),
}

/// The verified identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: Owner,
    /// What to show as "signed in as": `username`, else the owner id.
    pub name: String,
    pub admin: bool,
    /// OAuth scopes of the token (machine clients); empty for none.
    pub scopes: Vec<String>,
}

impl Caller {
    /// From the claims a JWT authorizer passes on (`requestContext.authorizer.jwt.claims`, all
    /// values strings; arrays such as `cognito:groups` rendered as `[a b]`).
    pub fn from_claims(claims: &HashMap<String, String>, scopes: &[String]) -> Result<Caller> {
        let sub = claims
            .get("sub")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Unauthorized("the token has no subject (sub)".into()))?;
        let owner = Owner::parse(sub)?;
        let groups = claims.get("cognito:groups").map(|g| list_claim(g)).unwrap_or_default();
        let name = claims
            .get("username")
            .or_else(|| claims.get("cognito:username"))
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| owner.to_string());
        let mut scopes = scopes.to_vec();
        if scopes.is_empty()
            && let Some(s) = claims.get("scope")
        {
            scopes = s.split_whitespace().map(str::to_owned).collect();
        }
        Ok(Caller {
            owner,
            name: crate::limits::clip(&name, OWNER_MAX),
            admin: groups.iter().any(|g| g == ADMIN_GROUP),
            scopes,
        })
    }

    /// Everyone is one admin when sign-in is off (a private deployment, `AUTH=off infra/up`).
    pub fn open() -> Caller {
        Caller {
            owner: Owner::anonymous(),
            name: "anonymous".into(),
            admin: true,
            scopes: Vec::new(),
        }
    }

    /// A signed-in user outside the admin group (tests, tools).
    pub fn user(owner: &str) -> Caller {
        Caller {
            owner: Owner::parse(owner).expect("a valid owner id"),
            name: owner.into(),
            admin: false,
            scopes: Vec::new(),
        }
    }

    /// A signed-in member of the admin group (tests, tools).
    pub fn admin(owner: &str) -> Caller {
        Caller {
            admin: true,
            ..Caller::user(owner)
        }
    }

    /// Whether this caller may see (and so act on) `job`.
    pub fn sees(&self, job: &Job) -> bool {
        self.admin || job.owner.as_ref() == Some(&self.owner)
    }

    /// Whose jobs this caller's listings and counts cover.
    pub fn scope(&self) -> Scope {
        if self.admin {
            Scope::All
        } else {
            Scope::Owner(self.owner.clone())
        }
    }

    /// Refuses what only admins may do.
    pub fn require_admin(&self, what: &str) -> Result<()> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{what} is for the {ADMIN_GROUP} group only")))
        }
    }
}

/// `[a b]` (API Gateway's rendering of an array claim), `["a","b"]`, `a,b` or `a`.
fn list_claim(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(v) = serde_json::from_str::<Vec<String>>(raw) {
        return v;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|s| s.trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn groups_arrive_in_every_shape_api_gateway_and_issuers_use() {
        for raw in [
            "[admin]",
            "[dev admin]",
            "[dev, admin]",
            r#"["dev","admin"]"#,
            "admin",
            "dev,admin",
        ] {
            let c = Caller::from_claims(&claims(&[("sub", "u1"), ("cognito:groups", raw)]), &[]).unwrap();
            assert!(c.admin, "{raw}");
        }
        for raw in ["[administrators]", "[]", ""] {
            let c = Caller::from_claims(&claims(&[("sub", "u1"), ("cognito:groups", raw)]), &[]).unwrap();
            assert!(!c.admin, "{raw}");
        }
    }

    #[test]
    fn the_subject_is_the_owner_and_must_be_key_safe() {
        let c = Caller::from_claims(&claims(&[("sub", "3f2a-9c"), ("username", "alice")]), &[]).unwrap();
        assert_eq!(
            (c.owner.as_str(), c.name.as_str(), c.admin),
            ("3f2a-9c", "alice", false)
        );
        for bad in ["", "a/b", "..", "x y", &"a".repeat(129)] {
            let e = Caller::from_claims(&claims(&[("sub", bad)]), &[]).unwrap_err();
            assert!(matches!(e, Error::Unauthorized(_)), "{bad}: {e}");
        }
        assert!(matches!(
            Caller::from_claims(&claims(&[]), &[]),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn scopes_come_from_the_authorizer_or_the_scope_claim() {
        let c = Caller::from_claims(&claims(&[("sub", "svc"), ("scope", "jobs/read jobs/write")]), &[]).unwrap();
        assert_eq!(c.scopes, ["jobs/read", "jobs/write"]);
        let c = Caller::from_claims(&claims(&[("sub", "svc")]), &["jobs/read".into()]).unwrap();
        assert_eq!(c.scopes, ["jobs/read"]);
    }

    #[test]
    fn upload_keys_name_their_owner() {
        assert_eq!(
            Owner::of_upload_key("uploads/alice/x.jsonl"),
            Some(Owner::parse("alice").unwrap())
        );
        assert_eq!(
            Owner::of_upload_key("uploads/alice/j/x.jsonl").unwrap().as_str(),
            "alice"
        );
        for key in [
            "uploads/x.jsonl",
            "logs/alice/x.jsonl",
            "uploads/alice/",
            "uploads/a b/x.jsonl",
        ] {
            assert_eq!(Owner::of_upload_key(key), None, "{key}");
        }
    }
}
