//! HUMBEX's shared ground: configuration, database access, encryption, tokens and domain types.

pub mod api_key_store;
pub mod api_key_vault;
pub mod channels;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod hardening;
pub mod key_usage;
pub mod notify;
pub mod rewrap;
pub mod shutdown;
pub mod standard_webhooks;
pub mod store;
pub mod token;

pub use secrecy;
