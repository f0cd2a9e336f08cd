//! The worker's own settings beyond [`shared::settings::Settings`], read once at a cold start
//! from the variables `template.yaml` sets.

use shared::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The verified SES identity every mail goes out from (`EMAIL_FROM`, the `EmailFrom` parameter).
    pub email_from: String,
    /// The topic notifications are published to (`NOTIFICATIONS_TOPIC_ARN`).
    pub notifications_topic_arn: String,
    /// How long a report's link works (`REPORT_LINK_SECONDS`, default 3600; at most the
    /// signer's session, which ends with the Lambda's role credentials).
    pub report_link: std::time::Duration,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup of variables (the environment, or a test's map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let required = |name: &str| match var(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(Error::Internal(format!("environment variable {name} is not set"))),
        };
        Ok(Config {
            email_from: required("EMAIL_FROM")?,
            notifications_topic_arn: required("NOTIFICATIONS_TOPIC_ARN")?,
            report_link: std::time::Duration::from_secs(match var("REPORT_LINK_SECONDS") {
                Some(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                    Error::Internal(format!(
                        "environment variable REPORT_LINK_SECONDS={v:?} is not a valid number"
                    ))
                })?,
                _ => 3600,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn both_variables_are_required() {
        let env = HashMap::from([
            ("EMAIL_FROM", "jobs@example.com"),
            ("NOTIFICATIONS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ]);
        let config = Config::from_lookup(|n| env.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(config.email_from, "jobs@example.com");
        assert_eq!(config.report_link.as_secs(), 3600);
        let err = Config::from_lookup(|n| (n != "EMAIL_FROM").then(|| env[n].to_string())).unwrap_err();
        assert_eq!(err.to_string(), "environment variable EMAIL_FROM is not set");
    }
}
