//! The sweeper function's logic, as a library so that tests can drive it in-process.
//! `main.rs` only wires it to Lambda.

pub mod handler;
