//! The local stand-in for what AWS does around our functions, driven by `template.yaml`:
//!
//! - [`template`]: reads the SAM template (short-form tags included) and evaluates intrinsics.
//! - [`provision`]: creates its tables, queues and buckets in the emulators and resolves every
//!   function's environment, event sources and HTTP routes into a [`provision::Stack`].
//! - [`invoke`]: calls a function through the Lambda Invoke API (`cargo lambda watch`) or in-process,
//!   each call bounded by the function's `Timeout`.
//! - [`sqs_source`]: SQS event source mappings: batches, partial batch failures, visibility timeout,
//!   redrive to the dead-letter queue after `maxReceiveCount`, long polling.
//! - [`event_source_mappings`]: the SQS mappings' `Enabled` flag, and Lambda's List/Get/Update
//!   event source mapping API over it (a disabled mapping stops receiving).
//! - [`s3_source`]: S3 notifications delivered to functions, with AWS's async-invoke retries.
//! - [`schedule`]: `Schedule` events (EventBridge rules with `rate(...)`).
//! - [`stream_source`]: DynamoDB stream event sources: batches, bisect on error, partial batch
//!   failures, retry limit and on-failure destination, through the DynamoDB Streams API.
//! - [`websocket_api`] and [`websocket`]: the WebSocket API as the template declares it: routes,
//!   `$connect` deciding the upgrade, route responses, and the `@connections` Management API.
//! - [`destination`]: invocation records of asynchronous invocations, to their SQS destinations.
//! - [`http_api`]: the HTTP API as the template declares it: routes, JWT authorizers, throttling, CORS.
//! - [`gateway`]: the HTTP API: plain HTTP in, API Gateway v2 events to the function, responses out;
//!   CORS, route throttling and JWT authorization as API Gateway applies them.
//! - [`auth`]: the local issuer's key, tokens like Cognito's ([`auth::mint`]), and the JWT checks.
//! - [`issuer`]: the local issuer's HTTP side, standing in for Cognito's hosted UI and token endpoint.

pub mod alarms;
pub mod auth;
pub mod destination;
pub mod emf;
pub mod event_source_mappings;
pub mod gateway;
pub mod http_api;
pub mod invoke;
pub mod issuer;
pub mod provision;
pub mod s3_source;
pub mod schedule;
pub mod sqs_source;
pub mod stream_source;
pub mod template;
pub mod testing;
pub mod websocket;
pub mod websocket_api;
