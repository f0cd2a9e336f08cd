//! The ingest function's logic, as a library so that tests and benchmarks can drive it.

pub mod handler;
pub mod reader;
