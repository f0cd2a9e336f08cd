//! Seed 001's `notification` job: a message to one user on one channel, published by the worker
//! to the stack's SNS topic, where the delivery services subscribe (filtering on `channel`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::limits::{check_bytes, check_len};

/// Longest user id, in characters.
pub const NOTIFICATION_USER_ID: usize = 128;
/// Largest message, in bytes.
pub const NOTIFICATION_MESSAGE_BYTES: usize = 2048;

/// Publish `message` for `user_id` on `channel`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPayload {
    pub user_id: String,
    pub channel: Channel,
    pub message: String,
}

/// Where the subscriber delivers the notification.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Push,
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl NotificationPayload {
    pub fn validate(&self) -> Result<()> {
        if self.user_id.trim().is_empty() {
            return Err(invalid("payload.user_id", "must not be empty"));
        }
        check_len("payload.user_id", &self.user_id, NOTIFICATION_USER_ID)?;
        if self.user_id.chars().any(char::is_control) {
            return Err(invalid("payload.user_id", "must not hold control characters"));
        }
        if self.message.trim().is_empty() {
            return Err(invalid("payload.message", "must not be empty"));
        }
        check_bytes("payload.message", &self.message, NOTIFICATION_MESSAGE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::job::JobSpec;

    fn error(payload: serde_json::Value) -> String {
        JobSpec::from_json("notification", payload).unwrap_err().to_string()
    }

    #[test]
    fn a_notification_on_each_channel_is_accepted() {
        for channel in ["push", "sms", "email"] {
            let spec = JobSpec::from_json(
                "notification",
                json!({"user_id": "u-1", "channel": channel, "message": "Your order shipped"}),
            )
            .unwrap();
            let JobSpec::Notification(p) = spec else {
                panic!("{spec:?}")
            };
            assert_eq!(p.channel.as_str(), channel);
        }
    }

    #[test]
    fn every_error_names_its_field() {
        let ok = json!({"user_id": "u", "channel": "sms", "message": "m"});
        let with = |k: &str, v: serde_json::Value| {
            let mut p = ok.clone();
            p[k] = v;
            error(p)
        };
        assert_eq!(
            error(json!({"channel": "sms", "message": "m"})),
            "payload: missing field `user_id`"
        );
        assert_eq!(
            with("channel", json!("fax")),
            "payload.channel: unknown variant `fax`, expected one of `push`, `sms`, `email`"
        );
        assert_eq!(with("user_id", json!(" ")), "payload.user_id: must not be empty");
        assert_eq!(
            with("user_id", json!("u".repeat(129))),
            "payload.user_id: is 129 characters long; at most 128 are allowed"
        );
        assert_eq!(with("message", json!("")), "payload.message: must not be empty");
        assert_eq!(
            with("message", json!("m".repeat(2049))),
            "payload.message: is 2049 bytes long; at most 2048 are allowed"
        );
        let unknown = with("topic", json!("x"));
        assert!(unknown.starts_with("payload.topic: unknown field `topic`"), "{unknown}");
    }
}
