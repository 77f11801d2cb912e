//! Integration tests: this crate against the in-process paper exchange over real HTTP and
//! WebSocket on 127.0.0.1 (port 0).

mod common;
mod history_fallback;
mod limits;
mod parsers;
mod rest;
mod trading;
mod ws;
