//! The `humbex` command line and the `up` orchestration that runs every role in one process.

pub mod cli;
pub mod local_postgres;
pub mod maintenance;
pub mod paper_secrets;
pub mod privileges;
pub mod roles;
pub mod telemetry;
pub mod up;
