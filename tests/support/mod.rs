//! Harnesses shared by the root crate's integration tests.

pub mod services;
pub mod tcp_postgres;
