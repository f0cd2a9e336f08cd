//! The worker function's logic, as a library so that tests and benchmarks can drive it.
//! `main.rs` only wires it to Lambda.

pub mod archive;
pub mod config;
pub mod email;
pub mod handler;
pub mod image;
pub mod notification;
pub mod report;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
