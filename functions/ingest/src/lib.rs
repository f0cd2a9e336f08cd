//! The ingest function's logic, as a library so that tests and benchmarks can drive it.

#[cfg(test)]
mod fast_tests;
pub mod handler;
pub mod reader;
