//! HUMBEX ingest: authenticates webhooks, stores signals with NOTIFY in one statement (several
//! webhooks per commit when they arrive together), and serves the admin API and its OpenAPI document.

pub mod admin;
pub mod api;
pub mod app;
pub mod client_ip;
pub mod console;
pub mod docs;
pub mod error;
pub mod middleware;
pub mod rate_limit;
pub mod serve;
pub mod state;
pub mod tags;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod webhook;

pub use app::Application;
