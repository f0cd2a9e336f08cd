//! Function settings, read once from environment variables that `template.yaml` sets.

use time::Duration;

use crate::error::{Error, Result};

/// Names of the resources a function works with, and its tunables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// DynamoDB table holding jobs, statistics and idempotency keys (`JOBS_TABLE`).
    pub jobs_table: String,
    /// DynamoDB table of ingested log entries (`LOG_ENTRIES_TABLE`).
    pub log_entries_table: String,
    /// Queue for priorities 4-5 (`HIGH_QUEUE_URL`).
    pub high_queue_url: String,
    /// Queue for priorities 1-3 (`NORMAL_QUEUE_URL`).
    pub normal_queue_url: String,
    /// The ingest function's queue: checkpoints, and `log_ingest` jobs to (re)start (`INGEST_QUEUE_URL`).
    pub ingest_queue_url: String,
    /// Bucket for uploads and archives (`UPLOADS_BUCKET`).
    pub uploads_bucket: String,
    /// How long a claimed job is held before another delivery may take it over (`LEASE_SECONDS`).
    /// Keep it above the function's timeout and below the queue's visibility timeout (the ingest
    /// function has its own, above its 300 s timeout).
    pub lease: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        Ok(Settings {
            jobs_table: required("JOBS_TABLE")?,
            log_entries_table: required("LOG_ENTRIES_TABLE")?,
            high_queue_url: required("HIGH_QUEUE_URL")?,
            normal_queue_url: required("NORMAL_QUEUE_URL")?,
            ingest_queue_url: required("INGEST_QUEUE_URL")?,
            uploads_bucket: required("UPLOADS_BUCKET")?,
            lease: Duration::seconds(optional("LEASE_SECONDS", 120)?),
        })
    }
}

/// Reads a required environment variable (a configuration error when unset or blank).
pub fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::Internal(format!("environment variable {name} is not set"))),
    }
}

/// Reads an optional numeric environment variable, refusing garbage rather than ignoring it.
pub fn optional<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| Error::Internal(format!("environment variable {name}={v:?} is not a valid number"))),
        _ => Ok(default),
    }
}
