//! HUMBEX's paper exchange: an in-memory Bybit V5 (REST and private WebSocket) that ccxt and pybit
//! accept unchanged, plus a control API under `/paper/` for accounts, prices and fault injection.
//!
//! Embed it with [`spawn`], or run it as `humbex paper-exchange`, whose flags are
//! [`PaperExchangeArgs`]. See `paper-exchange/README.md` for the control API and the fault JSON.

// Bybit's order objects have ~60 fields, more than json!'s default macro recursion allows.
#![recursion_limit = "256"]

pub mod bybit_error;
pub mod config;
mod control;
pub mod engine;
pub mod exchange;
pub mod faults;
mod rest;
mod server;
pub mod signing;
mod ws;
mod ws_public;

pub use config::{
    AccountSpec, PaperExchangeArgs, PaperExchangeConfig, PositionMode, PriceWalk, SymbolConfig, parse_symbols,
};
pub use exchange::PaperExchange;
pub use faults::Fault;
pub use server::{RunningPaperExchange, serve_until, spawn};
