//! The one error type of the `shared` crate.
//!
//! Domain failures (not found, illegal transition, invalid input) are typed variants so that each
//! entrypoint maps them to its own protocol (HTTP status, SQS batch failure) in one place.
//! Infrastructure failures keep the AWS SDK error as their source, unstringified.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use crate::limits;

/// Result alias used across `shared`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or payload is invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The state machine refuses the change (e.g. cancelling a completed job).
    #[error("{0}")]
    Conflict(String),
    /// No usable identity: a missing or unusable token subject (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this (403). Another owner's job is `NotFound`, not this.
    #[error("{0}")]
    Forbidden(String),
    /// A per-owner limit is reached (429); `limit` names it, `retry_after` is when to try again.
    #[error("{message}")]
    Limited {
        limit: &'static str,
        message: String,
        retry_after: u64,
    },
    /// A write lost a race against another writer more times than we retry.
    #[error("concurrent update of {0}, try again")]
    Contention(String),
    /// An AWS call failed. `op` names the operation; the SDK error is kept as the source, its
    /// full context in `message` (for logs), its error code in `code` (for [`Error::summary`]):
    /// the service's code, or how the call failed without an answer (dispatch failure, timeout).
    #[error("{op} failed: {message}")]
    Aws {
        op: &'static str,
        code: String,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data that does not decode (corrupt item, schema drift).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Anything else the function cannot go on from (configuration, I/O).
    #[error("{0}")]
    Internal(String),
}

/// Error codes of AWS calls that fail the same way however often they are repeated.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "AccessDenied",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "InvalidParameterValue",
    "InvalidArgument",
    "InvalidAddress",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "UnrecognizedClientException",
    "SerializationException",
    // SES SendEmail: an unverified sender (or a sandbox recipient), a sender domain or
    // configuration set that is not there, sending paused for the account.
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "ConfigurationSetDoesNotExist",
    "AccountSendingPausedException",
    // SNS Publish: no such topic, a refused parameter or caller, the topic's KMS key unusable.
    "NotFound",
    "InvalidParameter",
    "AuthorizationError",
    "KMSDisabled",
    "KMSNotFound",
];

impl Error {
    /// Wraps an AWS SDK error, keeping it as the source, its full context in the message and its
    /// error code. DynamoDB's "item size has exceeded" is the caller's input being too big: it
    /// becomes `Invalid` (a 400), never a 5xx that invites the client to try again.
    pub fn aws<E>(op: &'static str, err: E) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let message = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
        let code = err.code().map(str::to_owned);
        if code.as_deref() == Some("ValidationException")
            && err
                .message()
                .is_some_and(|m| m.to_ascii_lowercase().contains("item size"))
        {
            tracing::warn!(op, error = %message, "item too large to store");
            return Error::Invalid(format!(
                "the request is too large to store ({op}: an item would exceed DynamoDB's 400 KB)"
            ));
        }
        // Without a code the call got no answer: say how (dispatch failure, timeout...).
        let code = code.unwrap_or_else(|| err.to_string());
        Error::Aws {
            op,
            code,
            message,
            source: Box::new(err),
        }
    }

    /// True for errors a client caused (4xx); false for ours (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_)
                | Error::NotFound(_)
                | Error::Conflict(_)
                | Error::Unauthorized(_)
                | Error::Forbidden(_)
                | Error::Limited { .. }
        )
    }

    /// True when the same call may well succeed later: throttling, 5xx, timeouts, lost
    /// connections, lost races. False for bad input and errors that repeat (missing resources,
    /// access denied, corrupt data).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Contention(_) => true,
            Error::Aws { code, .. } => !PERMANENT_CODES.contains(&code.as_str()),
            _ => false,
        }
    }

    /// A short text safe to store on a job and show to its readers: no request ids, headers,
    /// response bodies or ARNs (those go to the log line), at most [`limits::JOB_ERROR`] characters.
    pub fn summary(&self) -> String {
        let text = match self {
            Error::Aws { op, code, .. } => format!("{op} failed ({code})"),
            Error::Corrupt(_) => "stored data could not be read".to_string(),
            other => other.to_string(),
        };
        limits::clip(&text, limits::JOB_ERROR)
    }
}

/// Builds `Error::Invalid` naming a field: `invalid("payload.source", "must start with s3://")`.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{field}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(op: &'static str, code: &str) -> Error {
        Error::Aws {
            op,
            code: code.into(),
            message: code.into(),
            source: Box::new(std::io::Error::other(code.to_string())),
        }
    }

    #[test]
    fn ses_rejections_fail_for_good_and_its_throttling_is_retried() {
        for code in [
            "MessageRejected",
            "InvalidParameterValue",
            "MailFromDomainNotVerifiedException",
            "ConfigurationSetDoesNotExist",
            "AccountSendingPausedException",
            "AccessDenied",
        ] {
            assert!(!aws("SendEmail", code).is_transient(), "{code}");
        }
        for code in ["Throttling", "ServiceUnavailable", "dispatch failure", "timeout"] {
            assert!(aws("SendEmail", code).is_transient(), "{code}");
        }
        assert_eq!(
            aws("SendEmail", "MessageRejected").summary(),
            "SendEmail failed (MessageRejected)"
        );
    }

    #[test]
    fn sns_refusals_fail_for_good_and_its_throttling_is_retried() {
        for code in [
            "NotFound",
            "InvalidParameter",
            "AuthorizationError",
            "KMSDisabled",
            "KMSNotFound",
        ] {
            assert!(!aws("Publish", code).is_transient(), "{code}");
        }
        for code in ["Throttled", "KMSThrottling", "InternalError", "dispatch failure"] {
            assert!(aws("Publish", code).is_transient(), "{code}");
        }
    }
}
