//! The api function's routes and handlers, as a library so that tests and benchmarks can drive
//! the router directly. `main.rs` only wires it to Lambda.

pub mod app;
pub mod auth;
#[cfg(test)]
mod console_tests;
pub mod dashboard;
pub mod dead_letters;
pub mod docs;
pub mod error;
#[cfg(test)]
mod fast_tests;
pub mod files;
pub mod graphql;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod queue_control;
pub mod request_trace;
pub mod retail;
#[cfg(test)]
mod seed_tests;
pub mod seeds;
pub mod submissions;
pub mod view;
