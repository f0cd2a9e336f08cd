//! The one error type of the `shared` crate.
//!
//! Domain failures (not found, illegal transition, invalid input) are typed variants so that each
//! entrypoint maps them to its own protocol (HTTP status, SQS batch failure) in one place.
//! Infrastructure failures keep the AWS SDK error as their source, unstringified.

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
    /// A write lost a race against another writer more times than we retry.
    #[error("concurrent update of {0}, try again")]
    Contention(String),
    /// An AWS call failed. `op` names the operation; the SDK error is kept as the source.
    #[error("{op} failed: {message}")]
    Aws {
        op: &'static str,
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

impl Error {
    /// Wraps an AWS SDK error, keeping it as the source and its full context in the message.
    pub fn aws<E>(op: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let message = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
        Error::Aws {
            op,
            message,
            source: Box::new(err),
        }
    }

    /// True for errors a client caused (4xx); false for ours (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::NotFound(_) | Error::Conflict(_))
    }
}

/// Builds `Error::Invalid` naming a field: `invalid("payload.source", "must start with s3://")`.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{field}: {why}"))
}
