//! HUMBEX's Bybit V5 client for USDT linear perpetuals, in layers: [`signing`] (HMAC), [`model`] and
//! [`parse`] (typed payloads from JSON), [`rest`] (signed REST calls), [`error`] (failures by what to
//! do next), [`ws`] (the private order/execution stream), [`tls`] (the trust store both use) and [`key_check`] (API-key allow-list).

pub mod error;
pub mod key_check;
mod lenient;
pub mod model;
pub mod parse;
pub mod rest;
pub mod signing;
#[cfg(any(test, feature = "test-data"))]
pub mod test_data;
pub mod tls;
pub mod ws;

pub use error::BybitError;
pub use key_check::{KeyPolicy, KeyProblem, KeyVerdict, evaluate_api_key, evaluate_api_key_for};
pub use model::*;
pub use rest::{BybitRest, BybitRestConfig, ensure_crypto_provider};
pub use signing::Credentials;
pub use ws::{PrivateStream, PrivateStreamConfig, PrivateStreamHandle, PrivateTopic, StreamEvent};
