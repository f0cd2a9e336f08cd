//! Live job updates over API Gateway's WebSocket API.
//!
//! - [`routes`]: the `live` function behind the WebSocket API's routes: `$connect` (the token
//!   from `?token=`, an optional `?job_id=` subscribed at once), `$disconnect`, `subscribe`,
//!   `unsubscribe` and `$default`.
//! - [`stream`]: the `notify` function, fed by the jobs table's DynamoDB stream: each change of a
//!   job to the connections subscribed to it that may see it.
//!
//! The rules (message shape, who sees what, the connections table) live in `shared::live`.

pub mod routes;
pub mod stream;
