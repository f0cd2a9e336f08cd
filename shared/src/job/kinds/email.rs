//! Seed 001's `email` job: one plain-text mail, sent by the worker through SES.
//!
//! Seed 001 sends `{"to", "subject", "body"}`; seed 002 sends only `{"to"}`, so the subject and
//! body have defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::limits::{check_bytes, check_len};

/// Longest recipient address (RFC 5321's path limit), in bytes.
pub const EMAIL_ADDRESS_BYTES: usize = 254;
/// Longest subject, in characters.
pub const EMAIL_SUBJECT: usize = 200;
/// Largest body, in bytes.
pub const EMAIL_BODY_BYTES: usize = 16 * 1024;
/// The subject of a mail whose job gave none.
pub const DEFAULT_SUBJECT: &str = "(no subject)";

/// Send one mail to `to` from the stack's sender (`EMAIL_FROM`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailPayload {
    /// One address: `name@domain`.
    pub to: String,
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

fn default_subject() -> String {
    DEFAULT_SUBJECT.to_string()
}

impl EmailPayload {
    pub fn validate(&self) -> Result<()> {
        check_address("payload.to", &self.to)?;
        check_len("payload.subject", &self.subject, EMAIL_SUBJECT)?;
        if self.subject.chars().any(char::is_control) {
            return Err(invalid(
                "payload.subject",
                "must be one line without control characters",
            ));
        }
        check_bytes("payload.body", &self.body, EMAIL_BODY_BYTES)
    }
}

/// One mail address: at most 254 bytes, exactly one `@` with text on both sides, a dot-free
/// domain allowed (local hosts), no spaces, control characters, commas or angle brackets (so a
/// single field can never name several recipients or a display name).
pub fn check_address(field: &str, address: &str) -> Result<()> {
    if address.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    check_bytes(field, address, EMAIL_ADDRESS_BYTES)?;
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"".contains(c))
    {
        return Err(invalid(
            field,
            "must be one address without spaces, quotes, commas, semicolons or angle brackets",
        ));
    }
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
            if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
                return Err(invalid(field, "has an invalid domain"));
            }
            Ok(())
        }
        _ => Err(invalid(field, "must look like name@domain (exactly one @)")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::job::JobSpec;

    fn error(payload: serde_json::Value) -> String {
        JobSpec::from_json("email", payload).unwrap_err().to_string()
    }

    #[test]
    fn seed_001s_example_and_seed_002s_short_form_are_accepted() {
        let full = JobSpec::from_json(
            "email",
            json!({"to": "user@example.com", "subject": "Welcome!", "body": "Thanks for signing up."}),
        )
        .unwrap();
        let JobSpec::Email(p) = full else { panic!("{full:?}") };
        assert_eq!((p.to.as_str(), p.subject.as_str()), ("user@example.com", "Welcome!"));
        let short = JobSpec::from_json("email", json!({"to": "user@example.com"})).unwrap();
        let JobSpec::Email(p) = short else { panic!("{short:?}") };
        assert_eq!((p.subject.as_str(), p.body.as_str()), ("(no subject)", ""));
    }

    #[test]
    fn every_error_names_its_field() {
        assert_eq!(error(json!({})), "payload: missing field `to`");
        assert!(error(json!({"to": 5})).starts_with("payload.to: invalid type"));
        assert_eq!(error(json!({"to": ""})), "payload.to: must not be empty");
        assert_eq!(
            error(json!({"to": "no-at-sign"})),
            "payload.to: must look like name@domain (exactly one @)"
        );
        assert_eq!(
            error(json!({"to": "a@b@c"})),
            "payload.to: must look like name@domain (exactly one @)"
        );
        assert!(error(json!({"to": "a b@c"})).starts_with("payload.to: must be one address"));
        assert!(error(json!({"to": "a@b.com,c@d.com"})).starts_with("payload.to: must be one address"));
        assert_eq!(error(json!({"to": "a@.com"})), "payload.to: has an invalid domain");
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            error(json!({"to": long})),
            "payload.to: is 262 bytes long; at most 254 are allowed"
        );
        assert_eq!(
            error(json!({"to": "a@b", "subject": "x".repeat(201)})),
            "payload.subject: is 201 characters long; at most 200 are allowed"
        );
        assert_eq!(
            error(json!({"to": "a@b", "subject": "a\r\nBcc: x@y"})),
            "payload.subject: must be one line without control characters"
        );
        assert_eq!(
            error(json!({"to": "a@b", "body": "x".repeat(16 * 1024 + 1)})),
            "payload.body: is 16385 bytes long; at most 16384 are allowed"
        );
        let unknown = error(json!({"to": "a@b", "cc": "c@d"}));
        assert!(unknown.starts_with("payload.cc: unknown field `cc`"), "{unknown}");
    }
}
