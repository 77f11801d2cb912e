//! The PostgreSQL NOTIFY channels between the roles. The SQL that sends on them (ingest's signal
//! insert, the orders trigger of migration V2) spells the same names; the tests that LISTEN through
//! these constants fail if the two ever differ.

/// A new signal was stored; the payload is its id. The executor listens.
pub const SIGNALS: &str = "humbex_signals";
/// An order changed; the payload is its id.
pub const ORDERS: &str = "humbex_orders";
/// Accounts changed hands; the payload is the executor that should look at its accounts' pending
/// orders now, or `*` for every executor (an executor joined or left, or accounts were handed
/// over: run a lease pass now). Sent by the statements of `store::account_leases`.
pub const ACCOUNTS: &str = "humbex_accounts";
/// A console session ended (signed out); the payload is the hex SHA-256 of its cookie (what
/// `console_sessions` keeps, which signs nobody in). Every ingest ends that session's open event
/// streams. Sent by `store::console_sessions::DELETE`.
pub const CONSOLE_SESSIONS: &str = "humbex_console_sessions";
