//! The library every function of the workspace builds on.
//!
//! - [`auth`]: who is asking (the caller a verified token names), owners, and what admins may do.
//! - [`job`]: the job, its kinds and typed payloads, and the one state machine every writer uses.
//! - [`store`]: storage traits (`JobStore`, `EntryStore`) and their DynamoDB implementations;
//!   in-memory ones for fast tests (`store::memory`, feature `testing`).
//! - [`objects`]: S3 objects behind the `Objects` trait (read from an offset, copy to an archive
//!   key); `S3Objects` is the real one, `store::memory::MemoryObjects` the in-memory one.
//! - [`mail`]: mail behind the `Mailer` trait (`SesMailer`, SES v1); [`notify`]: notifications
//!   behind the `Publisher` trait (`SnsPublisher`); in-memory ones in `store::memory`.
//! - [`images`]: image-job results (the Retail Pulse store master lives with its only user, the worker).
//! - [`live`]: live job updates over the WebSocket API: the message, connections, fan-out.
//! - [`limits`]: how big anything from outside may be, and how long stored texts get.
//! - [`quota`]: limits per owner (jobs in flight, image URLs per hour, upload bytes per day).
//! - [`retry`]: bounded retries with jittered backoff, the one way anything here tries again.
//! - [`queue`]: the SQS side: priority bands, messages, delays.
//! - [`aws`]: loads `SdkConfig` once and builds the clients; endpoints come only from the environment.
//! - [`sqs_batch`]: the generic SQS batch loop that builds `batchItemFailures`.
//! - [`sweep`]: the sweeper's rules: every accepted job ends, whatever crashed or was lost.
//! - [`telemetry`]: tracing set-up shared by the three binaries.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines; the lifecycle metered in one store wrapper.
//! - [`trace`]: one trace id (X-Ray's header) from the API request through SQS to every function's logs.

pub mod auth;
pub mod aws;
pub mod clock;
pub mod error;
pub mod images;
pub mod job;
pub mod limits;
pub mod live;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod payloads;
pub mod pdf;
pub mod queue;
pub mod quota;
pub mod report;
pub mod retry;
pub mod service;
pub mod settings;
pub mod sqs_batch;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod trace;

pub use error::{Error, Result};
